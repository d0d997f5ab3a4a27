"""People as code: groups (Unix and the hub's), shared data folders, off-boarding.

Runs after the hub is up (tasks/hub.py): the hub's groups and its deletions go through its
REST API (hubside-people), as the hub user with the deploy's own token, never as root.
Root makes the shared folders (through parents only root can change, checked before any
host changes: tasks/preflight.py) and archives off-boarded homes (files/bin/offboard-user);
links in users' homes are made by the users themselves.
"""

from __future__ import annotations

import json
import sys
from io import StringIO
from pathlib import PurePosixPath

from pyinfra import host
from pyinfra.operations import files, server

from tasks import layout
from tasks.facts import GroupEntries, HubGroups
from tasks.ops import command, directory, root_file, script
from tasks.platform import Platform
from tasks.preflight import ancestors, host_accounts
from tasks.settings import Settings, SharedDir
from tasks.snapshot import Managed, entry, fact

# jh_shared_dirs modes -> the folder's mode with a group, and without one (then root's group).
# group-writable: setgid (new files are the group's) and sticky (a member cannot rename or delete
# another's file, only change it).
SHARED_MODES = {"read-only": ("750", "755"), "group-writable": ("3770", None)}


def hub_people(settings: Settings, *args: str) -> str:
    """The command line of hubside-people, run as the hub user with the deploy's token."""
    paths = settings.layout
    return script(
        paths,
        "with-secret",
        paths.state_dir / layout.DEPLOY_TOKEN,
        "JUPYTERHUB_API_TOKEN",
        paths.venv / "bin" / "hubside-people",
        settings.hub_api,
        *args,
        as_user=settings.hub_user,
    )


def unix_groups(settings: Settings) -> None:
    """Each of jh_groups a Unix group with exactly its listed members (for limits and shared folders)."""
    existing = fact(GroupEntries)
    for group, members in sorted(settings.groups.items()):
        if group not in existing:
            server.group(name=f"Group {group}", group=group)
        if group not in existing or sorted(existing[group][1]) != sorted(members):
            server.shell(
                name=f"Members of group {group}: {', '.join(sorted(members)) or 'none'}",
                commands=[command("gpasswd", "-M", ",".join(sorted(members)), group)],
            )


def hub_groups(settings: Settings) -> None:
    """The hub's groups as jh_groups says; a group the deploy made and the settings dropped is deleted.

    The hub is asked (one API call as the hub user) where jh_groups is set, or was: a marker in
    libexec says the deploy has made groups there. Hubs that never had any are not asked.
    """
    wanted = {group: sorted(members) for group, members in settings.groups.items()}
    wanted |= settings.course_hub_groups(settings.groups)
    marker = settings.layout.libexec / layout.HUB_GROUPS_MARKER
    if not wanted and entry(marker) is None:
        return
    if fact(HubGroups, command_line=hub_people(settings, "groups")) != wanted:
        server.shell(
            name=f"Hub groups: {', '.join(sorted(wanted)) or 'none'}",
            commands=[hub_people(settings, "sync-groups", json.dumps(wanted, sort_keys=True))],
        )
    if wanted:
        root_file("Marker: the deploy keeps the hub's groups", StringIO("jh_groups are kept in the hub\n"), marker)
    else:
        files.file(name="No hub groups left to keep", path=str(marker), present=False)


def readers(settings: Settings, shared: SharedDir) -> list[str]:
    """The managed users whose homes get a link to a shared folder."""
    users = [user.name for user in settings.present_users]
    if shared.group in (None, settings.users_group):
        return users
    return [name for name in users if name in settings.groups[shared.group]]


def home_of(settings: Settings, name: str) -> PurePosixPath:
    account = host_accounts(settings).get(name)
    return PurePosixPath(account["home"] if account and account.get("home") else f"/home/{name}")


def shared_dirs(settings: Settings) -> None:
    for shared in settings.shared_dirs:
        with_group, without = SHARED_MODES[shared.mode]
        mode, group = (with_group, shared.group) if shared.group else (without, "root")
        directory(f"Shared folder {shared.path} ({shared.mode}, group {group})", shared.path, mode, "root", group)
        for name in readers(settings, shared):
            link = home_of(settings, name) / shared.link_name
            found = entry(link)
            if found is None:
                # By the user, in their own home: root writes nothing there.
                server.shell(
                    name=f"Link {link} -> {shared.path}",
                    commands=[command("runuser", "-u", name, "--", "ln", "-sT", shared.path, link)],
                )
            elif found[:1] != ("l",) or found[4] != str(shared.path):
                print(
                    f"--> {host.name}: {link} is the user's own, not a link to {shared.path}: left alone",
                    file=sys.stderr,
                )


def offboard(settings: Settings) -> None:
    """Users set absent who still have an account: out of the hub, home archived, account removed."""
    accounts = host_accounts(settings)
    leaving = [user.name for user in settings.absent_users if user.name in accounts]
    if not leaving:
        return
    print(
        f"--> {host.name}: off-boarding {', '.join(leaving)} (homes archived to {settings.offboard_dir})",
        file=sys.stderr,
    )
    for name in leaving:
        home = home_of(settings, name)
        server.shell(
            name=f"Off-board {name}: server stopped, hub user and tokens deleted",
            commands=[hub_people(settings, "delete-user", name)],
        )
        server.shell(
            name=f"Off-board {name}: {home} archived to {settings.offboard_dir}, home and account removed",
            commands=[
                script(
                    settings.layout,
                    "offboard-user",
                    name,
                    f"{layout.USER_UNIT_PREFIX}{name}.service",
                    home,
                    settings.offboard_dir,
                )
            ],
        )


def managed_paths(settings: Settings, platform: Platform) -> Managed:
    """The shared folders' parents, the folders above them, and the homes that get links to them
    (listed, no file read)."""
    listed = []
    for shared in settings.shared_dirs:
        listed += [*ancestors(shared.path), shared.path.parent]
        listed += [home_of(settings, name) for name in readers(settings, shared)]
    return Managed(listed=tuple(listed))


def apply(settings: Settings) -> None:
    offboard(settings)
    unix_groups(settings)
    hub_groups(settings)
    shared_dirs(settings)
