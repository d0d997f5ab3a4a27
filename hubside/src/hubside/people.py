"""hubside-people: the deploy's dealings with the hub's people, through the hub's REST API, as the
hub user.

    hubside-people HUB_API groups              the deploy's groups, as JSON {name: [members]}
    hubside-people HUB_API sync-groups JSON    make the deploy's groups exactly those of JSON
    hubside-people HUB_API delete-user NAME    stop the user's server, delete the user and tokens

HUB_API is the hub's loopback API URL (http://127.0.0.1:8081/hub/api); the token is
JUPYTERHUB_API_TOKEN, the deploy's service's (admin:users, admin:groups). The deploy's
groups carry the property managed-by=jupyterhub-deploy; groups made in the hub by hand
are never changed or deleted.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request

MARK = {"managed-by": "jupyterhub-deploy"}


def call(api, method, path, body=None, allowed=()):
    request = urllib.request.Request(
        api + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"], "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as error:
        if error.code in allowed:
            return None
        raise SystemExit(f"hubside-people: {method} {path}: {error.code} {error.read().decode()[:500]}") from None
    return json.loads(text) if text.strip() else None


def all_groups(api):
    """Every group, page by page (the hub returns at most api_page_max_limit at once)."""
    groups, page = [], 200
    while True:
        batch = call(api, "GET", f"/groups?offset={len(groups)}&limit={page}")
        groups += batch
        if len(batch) < page:
            return groups


def managed_groups(groups):
    return {
        group["name"]: sorted(group["users"])
        for group in groups
        if all(group.get("properties", {}).get(key) == value for key, value in MARK.items())
    }


def sync_groups(api, wanted):
    groups = {group["name"]: group for group in all_groups(api)}
    managed = managed_groups(groups.values())
    people = sorted({name for members in wanted.values() for name in members})
    if people:
        # People not yet logged in: the hub must know them to hold them in a group (409: it knows all).
        call(api, "POST", "/users", {"usernames": people}, allowed=(409,))
    for name, members in sorted(wanted.items()):
        if name not in groups:
            call(api, "POST", "/groups/" + name)
        if name not in managed:
            call(api, "PUT", "/groups/" + name + "/properties", MARK)
        have = set(groups[name]["users"]) if name in groups else set()
        if set(members) - have:
            call(api, "POST", "/groups/" + name + "/users", {"users": sorted(set(members) - have)})
        if have - set(members):
            call(api, "DELETE", "/groups/" + name + "/users", {"users": sorted(have - set(members))})
    for name in sorted(set(managed) - set(wanted)):
        call(api, "DELETE", "/groups/" + name)


def main():
    api, command, *args = sys.argv[1:]
    if command == "groups":
        print(json.dumps(managed_groups(all_groups(api)), sort_keys=True))
    elif command == "sync-groups":
        sync_groups(api, json.loads(args[0]))
    elif command == "delete-user":
        call(api, "DELETE", "/users/" + args[0], allowed=(404,))
    else:
        raise SystemExit("hubside-people: unknown command " + command)
