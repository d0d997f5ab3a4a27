"""Refuse settings that would put privileged accounts or groups into the hub, before any host changes.

tasks.settings checks names alone; whether ``jh_users`` names an account with uid 0, a
service account or a member of ``sudo`` depends on the host. The deploy would give such an
account a hub login (and a server started as that account through the sudo rule), make it the
hub's own account, or make a privileged group the group whose members may log in. So the
host's accounts and groups are read from facts and every problem for the host is reported
at once, naming the setting to change.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from pyinfra import host

from tasks.cluster_plan import NODES, role
from tasks.facts import Accounts, GroupEntries, LoginDefs, ResourceControl, SudoRights
from tasks.layout import SHADOW_GROUP
from tasks.settings import PRIVILEGED_GROUPS, Settings, SettingsError, memory_bytes
from tasks.settings.courses import grader
from tasks.snapshot import entry, fact

# The cgroup controller systemd needs to enforce each kind of per-user limit.
LIMIT_CONTROLLERS = {"memory": "memory", "cpu": "cpu", "tasks": "pids"}

# The hub's account as tasks/system.py makes it: its own system group, home and shell, in shadow.
HUB_USER_SHELLS = ("/usr/sbin/nologin", "/bin/false")
HUB_USER_GROUPS = frozenset({SHADOW_GROUP})
NOBODY_UID = 65534

Account = dict[str, Any]  # one entry of tasks.facts.Accounts
GroupTable = dict[str, tuple[int, list[str]]]  # tasks.facts.GroupEntries


def account_problems(
    settings: Settings, users: dict[str, Account], groups: GroupTable, login_defs: dict[str, int]
) -> list[str]:
    """What in the settings names a privileged account or group on a host with these facts.

    users: the Accounts fact; groups: the GroupEntries fact; login_defs: the LoginDefs fact.
    An empty list: the settings are safe on this host.
    """
    accounts = [("jh_hub_user", settings.hub_user)]
    accounts += [(f"jh_users[{index}]", user.name) for index, user in enumerate(settings.users)]
    accounts += [(f"jh_admin_users[{index}]", name) for index, name in enumerate(settings.admin_users)]
    accounts += [(f"jh_courses[{course}]", grader(course)) for course in settings.courses]
    gone = {user.name for user in settings.absent_users}
    problems = []
    for setting, name in accounts:
        hub = setting == "jh_hub_user"
        account = users.get(name)
        if account is not None:
            reasons = _system_account(settings, name, account, hub, login_defs["UID_MIN"])
            problems += [f"{setting}: {name} {why}" for why in reasons]
        privileged = _privileged_memberships(name, account, groups, HUB_USER_GROUPS if hub else frozenset())
        problems += [f"{setting}: {name} is in the privileged group {group}" for group in privileged]
        # The hub's account is made in a group of its own name, and useradd puts a new hub
        # user in one: an existing privileged group of that name would be theirs.
        if (hub or account is None) and name not in privileged and _is_privileged(name, groups) and name not in gone:
            problems.append(f"{setting}: {name} would get the privileged group {name} as its own group")
    group_problems = _users_group_problems(settings.users_group, groups, login_defs)
    problems += group_problems or _users_group_member_problems(settings, users, groups, login_defs["UID_MIN"])
    problems += _offboarding_problems(settings, users) + _group_problems(settings, users, groups, login_defs)
    return problems + _course_group_problems(settings, users, groups, login_defs)


def _course_group_problems(
    settings: Settings, users: dict[str, Account], groups: GroupTable, login_defs: dict[str, int]
) -> list[str]:
    """<course>-students enters the course's part of the exchange (its group): the deploy reuses a
    group of that name it finds, so it must be no system group and nobody's own (primary) group,
    whose account would enter the exchange whatever the group's member list says (an account of
    that name made at its first start, before the course was set up: useradd --user-group)."""
    problems = []
    for course in settings.current_courses:
        group = f"{course}-students"
        if group in groups and groups[group][0] < login_defs["GID_MIN"]:
            problems.append(f"jh_courses[{course}]: {group} is a system group on this host (gid {groups[group][0]})")
            continue
        gid = groups[group][0] if group in groups else None
        owners = sorted(
            name
            for name, account in users.items()
            if account.get("group") == group or (gid is not None and account.get("gid") == gid)
        )
        if owners:
            problems.append(
                f"jh_courses[{course}]: {group} is the own group of the account {', '.join(owners)} on this host, "
                "who would enter the course's exchange: remove that account or rename the course"
            )
    return problems


def _offboarding_problems(settings: Settings, users: dict[str, Account]) -> list[str]:
    """An account to off-board must be a hub user with a home of its own: that home is removed."""
    problems = []
    for index, user in enumerate(settings.users):
        account = users.get(user.name)
        if user.state != "absent" or account is None:
            continue
        setting = f"jh_users[{index}]"
        if settings.users_group not in account.get("groups", []):
            problems.append(
                f"{setting}: {user.name} is not in {settings.users_group}, so not a hub user this deploy may remove"
            )
        home = PurePosixPath(account.get("home") or "/")
        if home.name != user.name or len(home.parts) < 3 or settings.install_root in home.parents:
            problems.append(f"{setting}: {user.name}'s home is {home}, not a folder of its own to archive and remove")
    return problems


def _group_problems(
    settings: Settings, users: dict[str, Account], groups: GroupTable, login_defs: dict[str, int]
) -> list[str]:
    """jh_groups become Unix groups whose members the deploy sets: never a system group, only known people."""
    known = {user.name for user in settings.present_users} | set(users)
    problems = []
    for group, members in settings.groups.items():
        if group in groups and groups[group][0] < login_defs["GID_MIN"]:
            problems.append(f"jh_groups: {group} is a system group on this host (gid {groups[group][0]})")
        elif group in users:
            problems.append(
                f"jh_groups: {group} is the own group of the account {group} on this host, not a people's group"
            )
        problems += [
            f"jh_groups[{group}]: {name} is neither in jh_users nor an account on this host"
            for name in members
            if name not in known
        ]
    return problems


def _system_account(settings: Settings, name: str, account: Account, hub: bool, uid_min: int) -> list[str]:
    """Why an existing account may not be used: a system account, or for the hub any account but the one it made."""
    uid = account["uid"]
    if uid == 0:
        return ["is a system account (uid 0, root's)"]
    if uid == NOBODY_UID:
        return [f"is a system account (uid {uid}, nobody's)"]
    system = uid < uid_min
    if not hub:
        return [f"is a system account (uid {uid})"] if system else []
    if system and _made_by_deploy(settings, name, account):
        return []
    if system:
        shape = f"group {account.get('group')}, home {account.get('home')}, shell {account.get('shell')}"
        made = f"group {name}, home {settings.install_root}, shell {HUB_USER_SHELLS[0]}"
        return [f"is a system account (uid {uid}) that this deploy did not make ({shape}; the deploy's has {made})"]
    # The deploy would turn a person's login into the hub's account: home, shell, and shadow.
    return [f"is a login account (uid {uid}), not the system account this deploy makes for the hub"]


def _made_by_deploy(settings: Settings, name: str, account: Account) -> bool:
    """The hub's account as tasks/system.py makes it (a re-run finds it)."""
    home = account.get("home")
    return (
        account.get("group") == name
        and home is not None
        and PurePosixPath(home) == settings.install_root
        and account.get("shell") in HUB_USER_SHELLS
    )


def _privileged_memberships(
    name: str, account: Account | None, groups: GroupTable, allowed: frozenset[str] = frozenset()
) -> list[str]:
    """Privileged groups the account is in: its primary group, its other groups, and groups that list the name.

    The last catch a member left behind by a removed account, which a new account of that name inherits.
    """
    found = {group for group, (_gid, members) in groups.items() if name in members}
    primary = None
    if account is not None:
        primary = account.get("group") or str(account["gid"])
        found.add(primary)
        found.update(account.get("groups") or [])
    root_primary = account is not None and account["gid"] == 0
    return sorted(
        group for group in found - allowed if _is_privileged(group, groups) or (root_primary and group == primary)
    )


def _is_privileged(group: str, groups: GroupTable) -> bool:
    return group in PRIVILEGED_GROUPS or (group in groups and groups[group][0] == 0)


def _users_group_problems(name: str, groups: GroupTable, login_defs: dict[str, int]) -> list[str]:
    """The login group: its members get hub logins and servers, so it must be one of ordinary users."""
    if _is_privileged(name, groups):
        return [f"jh_users_group: {name} is a privileged group (its members would get hub logins)"]
    if name in groups and groups[name][0] < login_defs["GID_MIN"]:
        return [f"jh_users_group: {name} is a system group (gid {groups[name][0]})"]
    return []


def _users_group_member_problems(
    settings: Settings, users: dict[str, Account], groups: GroupTable, uid_min: int
) -> list[str]:
    """Accounts already in the login group that the settings do not name.

    The hub's account may start servers as any member of the group (templates/sudoers.j2),
    so a privileged member there would be the hub's too.
    """
    if settings.users_group not in groups:
        return []
    gid, members = groups[settings.users_group]
    present = set(members) | {name for name, account in users.items() if account["gid"] == gid}
    named = {settings.hub_user, *(user.name for user in settings.users), *settings.admin_users}
    problems = []
    for name in sorted(present - named):
        account = users.get(name)
        reasons = _system_account(settings, name, account, False, uid_min) if account is not None else []
        reasons += [f"is in the privileged group {group}" for group in _privileged_memberships(name, account, groups)]
        prefix = f"jh_users_group: {settings.users_group} has the member {name}, who"
        problems += [f"{prefix} {why}" for why in reasons]
    return problems


def host_accounts(settings: Settings) -> dict[str, Account]:
    """The host's accounts, with the password hashes of the hub users (read once per run)."""
    return fact(Accounts, shadow_of=sorted(user.name for user in settings.present_users))


def sudo_problems(settings: Settings, rights: dict[str, list[str]]) -> list[str]:
    """Named accounts sudo lets run anything (a rule in sudoers.d counts as much as a group); the
    hub's account may hold the deploy's own rule for root's helper, and nothing else."""
    helper = str(settings.layout.script("user-server"))
    accounts = [("jh_hub_user", settings.hub_user)]
    accounts += [(f"jh_users[{index}]", user.name) for index, user in enumerate(settings.present_users)]
    accounts += [(f"jh_admin_users[{index}]", name) for index, name in enumerate(settings.admin_users)]
    accounts += [(f"jh_courses[{course}]", grader(course)) for course in settings.courses]
    problems = []
    for setting, name in accounts:
        granted = [line for line in rights.get(name, []) if not (setting == "jh_hub_user" and helper in line)]
        if granted:
            problems.append(
                f"{setting}: sudo lets {name} run {granted[0]} (sudo -l -U {name}): an account with root's rights"
            )
    return problems


def grader_problems(settings: Settings, users: dict[str, Account]) -> list[str]:
    """Grader accounts the host has for something else: the deploy would make a course folder the
    home of someone's account (and give the course's staff its server)."""
    problems = []
    for course in settings.courses:
        account, home = users.get(grader(course)), str(settings.course_root / "courses" / course)
        if account and account.get("home") != home:
            problems.append(
                f"jh_courses[{course}]: the host has an account {grader(course)} whose home is "
                f"{account.get('home')}, not {home}: not this deploy's grader; remove it or rename the course"
            )
    return problems


def check_accounts(settings: Settings) -> None:
    """Stop the run for the current host if its settings name privileged accounts or groups there.

    Called before any operation, so no host has been changed yet.
    """
    users = host_accounts(settings)
    graders = {grader(course) for course in settings.courses}
    named = {settings.hub_user, *(u.name for u in settings.present_users), *settings.admin_users, *graders}
    problems = account_problems(settings, users, fact(GroupEntries), fact(LoginDefs))
    problems += sudo_problems(settings, fact(SudoRights, names=sorted(named & set(users))))
    problems += grader_problems(settings, users)
    if problems:
        lines = [f"host {host.name}: settings name privileged accounts or groups on this host (no host was changed):"]
        lines += [f"  {problem}" for problem in problems]
        lines.append("  Fix: choose other names in these settings; the hub needs no privileged account or group.")
        raise SettingsError("\n".join(lines))


def limit_problems(settings: Settings, controllers: set[str], groups: GroupTable, memory: int = 0) -> list[str]:
    """Per-user limits this host cannot enforce, and group limits for groups it does not have.

    controllers, memory: ResourceControl's; a limit the admin set is refused, not ignored, where
    the kernel lacks its controller (the default process limit is then left to systemd), and a
    memory limit above the host's memory is refused as the slip it is ("64G" for "64M"): it
    would never hold anyone back.
    """
    problems = []
    memory_limits = [("jh_user_memory_limit", settings.user_memory_limit)]
    memory_limits += [(f"jh_group_limits[{g}][memory]", limit.memory) for g, limit in settings.group_limits.items()]
    for setting, value in memory_limits:
        if memory and value and memory_bytes(value) > memory:
            problems.append(
                f"{setting}: {value} is more than this host's memory ({memory // 1024**2} MiB), so it never "
                "applies; give a limit a server can reach"
            )
    for kind, controller in LIMIT_CONTROLLERS.items():
        given = [f"jh_user_{kind}_limit"] if f"user_{kind}_limit" in settings.model_fields_set else []
        given += [
            f"jh_group_limits[{group}][{kind}]"
            for group, limit in settings.group_limits.items()
            if getattr(limit, kind) is not None
        ]
        if controller not in controllers:
            problems += [
                f"{setting}: this host's kernel has the {controller} cgroup controller disabled, so systemd "
                "cannot enforce it; unset it, or enable the controller (kernel command line)"
                for setting in given
            ]
    for group in settings.group_limits:
        if group != settings.users_group and group not in groups and group not in settings.groups:
            problems.append(f"jh_group_limits[{group}]: there is no group {group} on this host; create it first")
    return problems


def check_limits(settings: Settings) -> None:
    """Stop the run for the current host if it cannot enforce the per-user limits as set."""
    resources = fact(ResourceControl)
    # A node's servers are Slurm jobs, held to their profiles: the per-user limits are the hub's.
    memory = 0 if role() == NODES else resources["memory"]
    problems = limit_problems(settings, resources["controllers"], fact(GroupEntries), memory)
    if problems:
        lines = [f"host {host.name}: per-user limits this host cannot apply (no host was changed):"]
        raise SettingsError("\n".join(lines + [f"  {problem}" for problem in problems]))


def ancestors(path: PurePosixPath) -> list[PurePosixPath]:
    """The folders above path, from / down."""
    return list(reversed(path.parents))


def root_paths(settings: Settings) -> list[tuple[str, PurePosixPath]]:
    """Where root runs programs from, by setting: the install root, conda, the notifier."""
    paths = [("jh_install_root", settings.install_root), ("jh_conda_prefix", settings.conda_prefix)]
    if settings.notify_command:
        paths.append(("jh_notify_command", PurePosixPath(settings.notify_command.split(" ")[0])))
    return paths


def _through_others(setting: str, path: PurePosixPath, states: dict[str, tuple | None], why: str) -> list[str]:
    """The first folder above path that someone but root could change (until one is absent)."""
    for above in ancestors(path):
        found = states.get(str(above))
        if found is None:
            return []
        kind, mode, user = found[:3]
        if kind != "d" or user != "root" or mode & 0o022:
            return [
                f"{setting}: {above} is not a folder only root can change ({kind}, owner {user}, mode {mode:o}); {why}"
            ]
    return []


def path_problems(settings: Settings, states: dict[str, tuple | None]) -> list[str]:
    """Folders root creates for the settings, through folders someone else could change.

    states: path -> PathStates entry (None: absent) for jh_shared_dirs and every folder above them.
    """
    problems = []
    for setting, path in root_paths(settings):
        problems += _through_others(setting, path, states, f"root runs programs from {path}")
    nightly = settings.nightly_backup
    if nightly and not nightly.sftp_target:
        why = f"root writes the backups to {nightly.folder} through it"
        problems += _through_others("jh_nightly_backup.repository", nightly.folder, states, why)
        found = states.get(str(nightly.folder))
        if found is not None and (found[0] != "d" or found[2] != "root" or found[1] & 0o022):
            problems.append(
                f"jh_nightly_backup.repository: {nightly.folder} is not a folder only root can change ({found[0]}, owner "
                f"{found[2]}, mode {found[1]:o}); anyone who can change it can delete the backups"
            )
    if settings.courses:
        root = settings.course_root
        problems += _through_others("jh_course_root", root, states, f"root would make {root} through it")
        found = states.get(str(root))
        if found is not None and (found[0] != "d" or found[2] != "root" or found[1] & 0o022):
            problems.append(f"jh_course_root: {root} is not a folder only root can change; its courses would be")
    for index, shared in enumerate(settings.shared_dirs):
        setting = f"jh_shared_dirs[{index}]"
        problems += _through_others(setting, shared.path, states, f"root would make {shared.path} through it")
        found = states.get(str(shared.path))
        if found is not None and found[0] != "d":
            problems.append(f"{setting}: {shared.path} exists and is not a folder")
    return problems


def home_problems(settings: Settings, users: dict[str, Account], states: dict[str, tuple | None]) -> list[str]:
    """Homes that are not their person's own folders: the deploy makes a hub user's home private
    and theirs (it would chown / or another person's folder), and off-boarding archives and
    removes it."""
    problems = []
    for index, user in enumerate(settings.users):
        account = users.get(user.name)
        if account is None or not account.get("home"):
            continue
        home = PurePosixPath(account["home"])
        owners = {other["home"]: name for name, other in users.items() if other.get("home") and name != user.name}
        if home.name != user.name or len(home.parts) < 3 or str(home) in owners:
            problems.append(
                f"jh_users[{index}]: {user.name}'s home is {home}, not a folder of their own"
                + (f" ({owners[str(home)]}'s)" if str(home) in owners else "")
            )
            continue
        if user.state != "absent":
            continue
        found = states.get(account["home"])
        if found is not None and (found[0] != "d" or found[2] != user.name):
            problems.append(
                f"jh_users[{index}]: {user.name}'s home {account['home']} is not their own folder "
                f"({found[0]}, owner {found[2]}); archive and remove it by hand"
            )
    return problems


def check_paths(settings: Settings) -> None:
    """Stop the run for the current host if root would make a shared folder through another's
    folder, or archive and remove a home that is not its person's."""
    paths = [p for shared in settings.shared_dirs for p in (*ancestors(shared.path), shared.path)]
    paths += [above for _, path in root_paths(settings) for above in ancestors(path)]
    if settings.courses:
        paths += [*ancestors(settings.course_root), settings.course_root]
    if settings.nightly_backup and not settings.nightly_backup.sftp_target:
        paths += [*ancestors(settings.nightly_backup.folder), settings.nightly_backup.folder]
    users = host_accounts(settings)
    homes = [users[u.name]["home"] for u in settings.absent_users if u.name in users and users[u.name].get("home")]
    states = {str(path): entry(path) for path in [*paths, *homes]}
    problems = path_problems(settings, states) + home_problems(settings, users, states)
    if problems:
        lines = [f"host {host.name}: folders root cannot make safely (no host was changed):"]
        raise SettingsError("\n".join(lines + [f"  {problem}" for problem in problems]))
