"""The cluster's people: Slurm holds each to their share, reaches nodes only through their own
jobs, and leaves every host when off-boarded.

- Accounting (the hub): slurmdbd with its database in the distribution's MariaDB (loopback, the
  account slurm on the Unix socket: no password). Each hub user has an association in the account
  `jupyterhub` with the limits of jh_slurm_user_limits and their groups' (jh_slurm_group_limits),
  which slurm.conf's AccountingStorageEnforce makes Slurm hold them to: their own sbatch and srun
  as much as the servers the hub starts for them. PrivateData shows each person their own jobs.
- SSH to a node (the nodes): pam_slurm_adopt lets a person in only while a job of theirs runs
  there, and puts the session into that job (its cores, memory and end); root, the deploy's login
  and the sudo and admin groups always get in (pam_access, before it). pam_systemd is taken out
  of the nodes' sessions and logind masked, as Slurm's documentation says: it would move the
  session out of the job.
- Off-boarding (every host, before the hub archives the home): the person's Slurm jobs, all of
  them, cancelled and their association removed (the hub); their processes, crontab and at jobs
  and their account gone from each node.
"""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.facts.server import User
from pyinfra.operations import server

from tasks import layout
from tasks.cluster_plan import ClusterPlan
from tasks.facts import PresentLines
from tasks.ops import append_lines, packages, render, root_file, root_template, script, service
from tasks.settings import Settings
from tasks.snapshot import unit_state

# The groups whose members administer the hosts: they log in to a node without a job there.
ADMIN_GROUPS = ("sudo", "admin")
NO_LIMIT = -1


def accounting(settings: Settings) -> bool:
    """slurmdbd and its database, on the hub, before slurmctld; returns whether slurmdbd restarts."""
    packages("Slurm's accounting: slurmdbd and MariaDB", ["mariadb-server", "slurmdbd"])
    database_conf = root_template(
        "MariaDB for Slurm's accounting (loopback)", "mariadb-slurm.cnf.j2", layout.MARIADB_CONF, settings
    )
    service("MariaDB running and enabled", layout.MARIADB_SERVICE, restarted=database_conf.will_change)
    if unit_state(layout.SLURMDBD_SERVICE)[0] != "active":
        server.shell(
            name=f"Slurm's accounting database {layout.SLURM_ACCOUNTING_DB}",
            commands=[script(settings.layout, "slurm-accounting-db", layout.SLURM_ACCOUNTING_DB)],
        )
    conf = root_file(
        f"slurmdbd configuration {layout.SLURMDBD_CONF}",
        StringIO(render("slurmdbd.conf.j2", settings, database=layout.SLURM_ACCOUNTING_DB)),
        layout.SLURMDBD_CONF,
        mode="600",
        user="slurm",
        group="slurm",
    )
    service("Slurm's accounting daemon running and enabled", layout.SLURMDBD_SERVICE, restarted=conf.will_change)
    return conf.will_change


def limit(value: int | None) -> int:
    return NO_LIMIT if value is None else value


def associations(settings: Settings, plan: ClusterPlan) -> None:
    """Each hub user's association and limits where slurmdbd holds others (or did not answer),
    after slurmctld runs; off-boarded people's jobs cancelled and associations removed."""
    current = plan.current_associations
    changed = sorted(
        name for name, wanted in plan.associations.items() if current is None or current.get(name) != wanted
    )
    if changed:
        specs = [
            ":".join(str(limit(plan.associations[name][kind])) for kind in ("jobs", "queued", "cpus", "memory_mb"))
            for name in changed
        ]
        server.shell(
            name=f"Slurm's limits of {', '.join(changed)}",
            commands=[
                script(
                    settings.layout,
                    "slurm-associations",
                    layout.SLURM_CLUSTER_NAME,
                    layout.SLURM_ACCOUNT,
                    *(f"{name}:{spec}" for name, spec in zip(changed, specs, strict=True)),
                )
            ],
        )
    for user in settings.absent_users:
        if current is None or user.name in current:
            server.shell(
                name=f"Off-board {user.name}: Slurm jobs cancelled, association removed",
                commands=[script(settings.layout, "slurm-remove-user", layout.SLURM_ACCOUNT, user.name)],
            )


def node_access(settings: Settings) -> None:
    """SSH into a node only into one's own job there, but for the administrators."""
    packages("SSH into one's own job only (pam_slurm_adopt)", ["libpam-slurm-adopt"])
    login = host.get_fact(User, _sudo=False, _su_user=None, _doas=False)
    admins = [name for name in (login,) if name and name != "root"] + [f"({group})" for group in ADMIN_GROUPS]
    root_template(
        "Who logs in to a node without a job there", "node-access.conf.j2", layout.NODE_ACCESS, settings, admins=admins
    )
    lines = [
        f"account sufficient pam_access.so accessfile={layout.NODE_ACCESS}",
        "account required pam_slurm_adopt.so action_no_jobs=deny",
    ]
    found = host.get_fact(PresentLines, pairs=[(str(layout.SSHD_PAM), line) for line in lines])
    missing = [line for index, line in enumerate(lines) if index not in found["lines"]]
    if missing:
        # At the end of the file: after sshd's own account checks, pam_access first.
        append_lines("sshd's PAM: administrators, else a job of one's own on this node", layout.SSHD_PAM, missing)
    if found["pam_systemd"]:
        server.shell(
            name="Sessions stay in their job: pam_systemd off", commands=["pam-auth-update --package --disable systemd"]
        )
    if not found["logind_masked"]:
        server.shell(
            name="Sessions stay in their job: logind masked", commands=["systemctl mask --now systemd-logind.service"]
        )


def offboard_node(settings: Settings, plan: ClusterPlan) -> None:
    """Off-boarded people with an account on this node: their processes, crontab, at jobs and
    account gone (their home is the hub's, archived there)."""
    for name in plan.leaving.get(host.name, ()):
        server.shell(
            name=f"Off-board {name} from this node: processes, crontab, at jobs and account removed",
            commands=[script(settings.layout, "offboard-user", name, f"{layout.USER_UNIT_PREFIX}{name}.service")],
        )
