"""Every process of a hub user runs in their server's unit, held to its limits and ended with it;
their server is the proxy's alone to reach.

- SSH: members of jh_users_group (and the hub's account) are refused at sshd's account check
  (pam_access), unless jh_users_ssh lets them in: their sessions' user slices then get the limits
  of their servers.
- cron and at: nothing runs for them or for the hub's account (pam_access in the daemons' PAM
  services, where the daemons are installed, and from apt's hook as soon as one is installed
  later), and the listed people and the hub's account cannot even submit (cron.deny, at.deny,
  where installed). Off-boarding removes crontabs and at jobs (offboard-user).
- The servers' ports (layout.SERVER_PORTS): connections to them from this host are the proxy's
  (the hub's account) and root's alone (files/bin/server-ports-firewall, from a unit at boot). Root's
  helper makes sure a server got its own port before the hub routes to it (user-server start).
"""

from __future__ import annotations

from pathlib import PurePosixPath

from pyinfra import host
from pyinfra.operations import systemd

from tasks import layout
from tasks.facts import PresentLines
from tasks.ops import append_lines, packages, root_template, service
from tasks.platform import Platform
from tasks.preflight import host_accounts
from tasks.settings import Settings, memory_bytes
from tasks.settings.courses import grader
from tasks.snapshot import Managed

ACCESS_JOBS = PurePosixPath("/etc/security/access-jupyterhub-jobs.conf")
ACCESS_SSH = PurePosixPath("/etc/security/access-jupyterhub-ssh.conf")
PORTS_SERVICE = layout.SERVER_PORTS_SERVICE


def managed_paths(settings: Settings, platform: Platform) -> Managed:
    """The pam_access rules and apt's hook."""
    return Managed(hashed=(ACCESS_JOBS.parent, layout.APT_JOBS_HOOK.parent))


def pam_lines(settings: Settings, ssh: bool) -> list[tuple[str, str]]:
    """(PAM service file, account line) the host needs."""
    lines = [
        (f"/etc/pam.d/{name}", f"account required pam_access.so accessfile={ACCESS_JOBS}") for name in ("cron", "atd")
    ]
    if ssh:
        lines.append((str(layout.SSHD_PAM), f"account required pam_access.so accessfile={ACCESS_SSH}"))
    return lines


# The deny list of each daemon, by its PAM service (the file that says it is installed).
DENY_LISTS = {"/etc/pam.d/cron": "/etc/cron.deny", "/etc/pam.d/atd": "/etc/at.deny"}


def course_graders(settings: Settings) -> list[str]:
    """Every course's grader account, archived or not (its staff run code as it)."""
    return sorted(grader(name) for name in settings.courses)


def jobs_people(settings: Settings) -> list[str]:
    """Who runs no cron or at job (pam_access): the hub's users and account, and every course's
    grader: one leaves the users' group when its course is archived, and a job its staff left
    would run from then on (archive-course also removes its crontab and at jobs)."""
    return [f"({settings.users_group})", settings.hub_user, *course_graders(settings)]


def ssh_people(settings: Settings) -> list[str]:
    """Who logs in over SSH by no means (pam_access): as for jobs, but for jh_users_ssh's people.
    A grader never: its home is the course folder, where its staff may leave authorized_keys."""
    if settings.users_ssh:
        return [settings.hub_user, *course_graders(settings)]
    return jobs_people(settings)


def deny_lists(settings: Settings, installed: set[str]) -> list[tuple[str, str]]:
    """Made only where the daemon is installed: at's package brings at.deny as a configuration
    file, and one already there would stop an unattended installation of at at dpkg's question."""
    names = [settings.hub_user, *sorted(u.name for u in settings.present_users), *course_graders(settings)]
    return [(deny, name) for pam, deny in DENY_LISTS.items() if pam in installed for name in names]


def no_jobs_or_logins(settings: Settings, ssh: bool) -> None:
    """pam_access for cron, atd (and sshd on a hub server); the deny lists."""
    people = jobs_people(settings)
    root_template(
        "Who runs no cron or at jobs",
        "access-jupyterhub.conf.j2",
        ACCESS_JOBS,
        settings,
        what="cron and at jobs",
        who=people,
    )
    if ssh:
        who = ssh_people(settings)
        root_template(
            "Who logs in over SSH", "access-jupyterhub.conf.j2", ACCESS_SSH, settings, what="SSH logins", who=who
        )
    root_template(
        "cron or at installed later runs no hub user's jobs either",
        "apt-jobs-pam-access.conf.j2",
        layout.APT_JOBS_HOOK,
        settings,
        script=settings.layout.script("jobs-pam-access"),
        access_file=ACCESS_JOBS,
    )
    wanted = pam_lines(settings, ssh) + deny_lists(settings, set(DENY_LISTS))
    found = host.get_fact(PresentLines, pairs=wanted)
    needed = set(pam_lines(settings, ssh) + deny_lists(settings, found["files"]))
    missing: dict[str, list[str]] = {}
    for index, (path, line) in enumerate(wanted):
        # Only where the daemon is installed (the hook above covers those installed later).
        installed = not path.startswith("/etc/pam.d/") or path in found["files"]
        if index not in found["lines"] and installed and (path, line) in needed:
            missing.setdefault(path, []).append(line)
    for path, lines in sorted(missing.items()):
        append_lines(f"{path}: no jobs or logins outside their servers for hub users", path, lines)


def slice_limits(settings: Settings, groups: set[str]) -> dict:
    """A user's limits, as root's helper gives their server: the most generous of their groups'."""
    limits = {"memory": settings.user_memory_limit, "cpu": settings.user_cpu_limit, "tasks": settings.user_tasks_limit}
    sizes = {"memory": memory_bytes, "cpu": float, "tasks": int}
    for group, limit in sorted(settings.group_limits.items()):
        for kind in limits:
            value = getattr(limit, kind)
            if group in groups and value is not None:
                current = limits[kind]
                if current is None or sizes[kind](value) > sizes[kind](current):
                    limits[kind] = value
    if limits["memory"]:
        limits["memory"] = memory_bytes(limits["memory"])
    return limits


def ssh_session_limits(settings: Settings, platform: Platform) -> None:
    """With jh_users_ssh, each present hub user's slice (their SSH sessions) gets their limits."""
    accounts = host_accounts(settings)
    changed = []
    for user in settings.present_users:
        account = accounts.get(user.name)
        if account is None:
            continue
        groups = {account.get("group"), *account.get("groups", [])}
        op = root_template(
            f"SSH sessions of {user.name} held to their limits",
            "user-slice-limits.conf.j2",
            layout.UNIT_DIR / f"user-{account['uid']}.slice.d" / "jupyterhub-limits.conf",
            settings,
            limits=slice_limits(settings, groups),
            memory_property=platform.memory_property,
            reserved_ports=layout.reserved_ports(settings, platform),
        )
        changed.append(op.will_change)
    if any(changed):
        systemd.daemon_reload(name="Reload systemd units")


def server_ports(settings: Settings, proxy_user: str) -> None:
    """The servers' ports, the proxy's and root's alone to connect to from this host (a node's
    servers are reached from the hub: root's alone there)."""
    packages("iptables (the servers' ports)", ["iptables"])
    first, last = layout.SERVER_PORTS
    unit = root_template(
        f"systemd unit {PORTS_SERVICE}",
        f"{PORTS_SERVICE}.j2",
        layout.UNIT_DIR / PORTS_SERVICE,
        settings,
        first=first,
        last=last - 1,
        proxy_user=proxy_user,
    )
    if unit.will_change:
        systemd.daemon_reload(name="Reload systemd units")
    service("Users' servers reachable by the proxy alone", PORTS_SERVICE, restarted=unit.will_change)


def apply(settings: Settings, platform: Platform, hub_server: bool) -> None:
    """hub_server: SSH is the hub server's matter (a cluster's nodes let people in through their jobs)."""
    no_jobs_or_logins(settings, ssh=hub_server)
    if hub_server and settings.users_ssh:
        ssh_session_limits(settings, platform)
    server_ports(settings, settings.hub_user if hub_server else "root")
