"""hubside-people: the deploy's dealings with the hub's people, through the hub's REST API, as the
hub user.

    hubside-people HUB_API groups              the deploy's groups, as JSON {name: [members]}
    hubside-people HUB_API sync-groups JSON    make the deploy's groups exactly those of JSON
    hubside-people HUB_API delete-user NAME    stop the user's server, delete the user and tokens
    hubside-people HUB_API set-course-groups JSON
                                               make the courses' groups of JSON exactly its members

HUB_API is the hub's loopback API URL (http://127.0.0.1:8081/hub/api); the token is
JUPYTERHUB_API_TOKEN, the deploy's service's (admin:users, admin:groups). The deploy's
groups carry the property managed-by=jupyterhub-deploy; groups made in the hub by hand
are never changed or deleted.

set-course-groups is roster sync's (files/bin/sync-rosters, hubside.rosters): JSON is
{"<course>-students": [names], "<course>-staff": [names]} for the learning platform's courses,
whose groups launches make (unmarked). It changes the members of the groups it names and no
other group: each name must be a Unix name ending in -students or -staff, and a group the deploy
keeps (marked: a course whose students the settings list) is refused; a missing group is made
(unmarked). It makes and deletes no user: a name the hub does not know (never logged in, or
deleted since) is left out, said on stderr. It prints what it changed.
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.request

MARK = {"managed-by": "jupyterhub-deploy"}
UNIX_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}\Z")  # hubside.oauth's (not imported: it needs the hub's packages)
COURSE_GROUP = re.compile(r"[a-z_][a-z0-9_-]{0,31}-(students|staff)\Z")
MAX_COURSE_GROUPS_INPUT = 8 * 1024 * 1024


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


def course_groups_given(text):
    """set-course-groups' JSON, checked: {course group: [Unix names]}; SystemExit otherwise."""
    if len(text) > MAX_COURSE_GROUPS_INPUT:
        raise SystemExit(f"hubside-people: set-course-groups: more than {MAX_COURSE_GROUPS_INPUT} bytes")
    try:
        wanted = json.loads(text)
    except (ValueError, RecursionError):
        raise SystemExit("hubside-people: set-course-groups: not JSON") from None
    if not isinstance(wanted, dict):
        raise SystemExit("hubside-people: set-course-groups: a JSON object of groups")
    for name, members in wanted.items():
        if not (COURSE_GROUP.match(name) and len(name) <= 32):
            raise SystemExit(
                f"hubside-people: set-course-groups: {name!r:.80} is not a course's group (-students, -staff)"
            )
        if not (isinstance(members, list) and all(isinstance(m, str) and UNIX_NAME.match(m) for m in members)):
            raise SystemExit(f"hubside-people: set-course-groups: {name}'s members must be a list of Unix names")
    return {name: sorted(set(members)) for name, members in wanted.items()}


def set_course_groups(api, wanted):
    """The groups of wanted (checked) with exactly its members that the hub knows."""
    groups = {group["name"]: group for group in all_groups(api)}
    if marked := sorted(set(wanted) & set(managed_groups(groups.values()))):
        raise SystemExit(
            f"hubside-people: set-course-groups: {', '.join(marked)}: the deploy's own groups (jh_groups, jh_courses)"
        )
    for name, members in sorted(wanted.items()):
        have = set(groups[name]["users"]) if name in groups else set()
        # Members already are users; the others are asked for, one by one.
        known = [m for m in members if m in have or call(api, "GET", "/users/" + m, allowed=(404,)) is not None]
        for unknown in sorted(set(members) - set(known)):
            print(f"{name}: {unknown} left out: not a user of the hub", file=sys.stderr)
        if name not in groups:
            call(api, "POST", "/groups/" + name)
            print(f"{name}: made")
        if added := sorted(set(known) - have):
            call(api, "POST", "/groups/" + name + "/users", {"users": added})
            print(f"{name}: added {', '.join(added)}")
        if removed := sorted(have - set(known)):
            call(api, "DELETE", "/groups/" + name + "/users", {"users": removed})
            print(f"{name}: removed {', '.join(removed)}")
        if not (added or removed):
            print(f"{name}: unchanged ({len(known)} members)")


def main():
    api, command, *args = sys.argv[1:]
    if command == "groups":
        print(json.dumps(managed_groups(all_groups(api)), sort_keys=True))
    elif command == "sync-groups":
        sync_groups(api, json.loads(args[0]))
    elif command == "set-course-groups":
        set_course_groups(api, course_groups_given(args[0]))
    elif command == "delete-user":
        call(api, "DELETE", "/users/" + args[0], allowed=(404,))
    else:
        raise SystemExit("hubside-people: unknown command " + command)
