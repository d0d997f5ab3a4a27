"""The hub: its state and secrets, configuration, sudoers rule, users' servers and systemd units.

Three services: the proxy (routes), the hub, the idle culler. Users' servers are
transient units in a slice of their own (files/bin/user-server), so restarting the hub
(a changed config, an upgrade) leaves them and their routes alone; the proxy restarts
only when Node.js or configurable-http-proxy change.
"""

from __future__ import annotations

import hashlib
import json
from io import StringIO

from pyinfra.operations import files, server, systemd

from tasks import cluster, layout, server_env
from tasks.facts import LoginDefs, ResourceControl
from tasks.ops import FILES, directory, render, root_file, root_template, script, service
from tasks.platform import Platform
from tasks.settings import PRIVILEGED_GROUPS, SYSTEM_NAMES, Settings, memory_bytes
from tasks.snapshot import UNCHANGED, children, entry, fact, is_state

# What the unit templates get besides the settings and the layout.
UNIT_CONTEXT = {
    "proxy_service": layout.PROXY_SERVICE,
    "proxy_api_port": layout.PROXY_API_PORT,
}
# Login names from a directory or identity provider that may become Unix accounts: the helper's
# rule (files/bin/user-server), lower-case.
UNIX_NAME_PATTERN = r"^[a-z_][a-z0-9_-]{0,31}$"
# The memory the users' servers together leave the system: 10 %, at least this.
MIN_SYSTEM_RESERVE = 1024**3


def state_and_secrets(settings: Settings) -> list[str]:
    """The state directory and the secrets; returns the secrets (re)generated."""
    paths = settings.layout
    directory(f"Hub state directory {paths.state_dir}", paths.state_dir, "700", settings.hub_user, settings.hub_user)
    present = children(paths.state_dir, kind="f")
    missing = [name for name in layout.SECRETS if name not in present]
    if missing:
        # Generated on the host, once, by the hub user in its own directory: a re-run never
        # replaces a secret, and root never writes below the state directory.
        server.shell(
            name=f"Generate secrets {', '.join(missing)}",
            commands=[
                script(paths, "new-secret", paths.state_dir / name, layout.SECRETS[name], as_user=settings.hub_user)
                for name in missing
            ],
        )
    return missing


def install_sudoers_rule(settings: Settings, rule: str) -> None:
    """Install the sudoers rule only after visudo accepts it: a broken rule never lands.

    Decided by comparing the live rule with the desired one (a fact), so a rule
    that failed validation is checked again on the next run.
    """
    if is_state(layout.SUDOERS_RULE, "f", "440", "root", "root", hashlib.sha256(rule.encode()).hexdigest()):
        return
    # sudo skips files in sudoers.d whose names contain a dot: the staged copy is inert.
    staged = f"{layout.SUDOERS_RULE}.staged"
    root_file("Stage the sudoers rule for users' servers", StringIO(rule), staged, mode="440")
    server.shell(
        name="Check the sudoers rule with visudo, then install it",
        commands=[script(settings.layout, "install-sudoers", staged, layout.SUDOERS_RULE)],
    )


def user_servers(settings: Settings, platform: Platform) -> None:
    """What root's helper files/bin/user-server reads, and the spawner the hub imports."""
    paths = settings.layout
    root_file("Hub spawner (users' servers as systemd units)", FILES / "hub" / "unitspawner.py", paths.spawner_module)
    if settings.cluster:
        root_file("Hub spawner of Slurm jobs", FILES / "hub" / "slurmspawner.py", paths.slurm_spawner_module)
    root_file(
        f"Users' servers: units and limits ({paths.user_servers_config})",
        StringIO(user_servers_config(settings, platform, fact(LoginDefs)["UID_MIN"])),
        paths.user_servers_config,
    )


def user_servers_config(settings: Settings, platform: Platform, uid_min: int) -> str:
    """user-servers.json: everything the helper needs that the hub must not be able to change."""

    def limits(memory, cpu, tasks) -> dict:
        values = {"memory": memory_bytes(memory) if memory else None, "cpu": cpu, "tasks": tasks}
        return {kind: value for kind, value in values.items() if value is not None}

    paths = settings.layout
    config = {
        "hub_user": settings.hub_user,
        "users_group": settings.users_group,
        "privileged_groups": sorted(PRIVILEGED_GROUPS),
        "min_uid": uid_min,
        "server_env_link": str(paths.venv),
        "slice": layout.USERS_SLICE,
        "unit_prefix": layout.USER_UNIT_PREFIX,
        "env_dir": str(layout.USER_ENV_DIR),
        # With a directory's logins, its new members get accounts at their first start (in homes/).
        "create_accounts": settings.authenticator != "pam",
        "homes": str(layout.HOMES),
        "reserved_names": sorted(SYSTEM_NAMES | PRIVILEGED_GROUPS | {settings.hub_user, settings.users_group}),
        # Kernel specs outside the server venv, NLTK data shared by every kernel; how often the
        # server tells the hub it is in use (the culler decides on that).
        "environment": {
            "JUPYTER_PATH": str(paths.jupyter_data_dir),
            "NLTK_DATA": str(paths.nltk_data),
            "JUPYTERHUB_ACTIVITY_INTERVAL": str(settings.activity_interval),
        },
        "memory_property": platform.memory_property,
        "oom_policy": platform.oom_policy,
        "limits": {
            "default": limits(settings.user_memory_limit, settings.user_cpu_limit, settings.user_tasks_limit),
            "groups": {
                group: limits(limit.memory, limit.cpu, limit.tasks) for group, limit in settings.group_limits.items()
            },
        },
    }
    if settings.cluster:
        # Users' servers as Slurm jobs (submit): each profile's size, by its key (the hub names one).
        config["job_name_prefix"] = "jupyterhub-"
        config["job_log"] = layout.SLURM_JOB_LOG
        config["profiles"] = {
            profile.key: {
                "partition": profile.partition or settings.partitions[0],
                "cpus": profile.cpus,
                "memory_mb": profile.memory_mb,
                "minutes": profile.minutes,
            }
            for profile in settings.spawn_profiles
            if profile.where == "cluster"
        }
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def slice_memory(total_bytes: int) -> tuple[int, int]:
    """The users' slice's memory limit on a host with this much memory, and the reserve it leaves."""
    reserve = max(MIN_SYSTEM_RESERVE, total_bytes // 10)
    return max(total_bytes - reserve, 0), reserve


def unit_files(settings: Settings, platform: Platform) -> dict[str, object]:
    """The units; returns their file operations by unit name (restarts follow them)."""
    context = {**UNIT_CONTEXT, "proxy_command": server_env.proxy_command(settings, platform)}
    context["proxy_digest"] = server_env.proxy_digest(platform)
    units = {
        unit: root_template(f"systemd unit {unit}", f"{unit}.j2", layout.UNIT_DIR / unit, settings, **context)
        for unit in layout.SERVICES
    }
    limit, reserve = None, None
    resources = fact(ResourceControl)
    if "memory" in resources["controllers"]:
        limit, reserve = slice_memory(resources["memory"])
    units[layout.USERS_SLICE] = root_template(
        f"systemd slice {layout.USERS_SLICE}",
        f"{layout.USERS_SLICE}.j2",
        layout.UNIT_DIR / layout.USERS_SLICE,
        settings,
        slice_memory=limit,
        reserve=f"{(reserve or 0) // 1024**2} MiB",
        memory_property=platform.memory_property,
    )
    notifier_path = layout.UNIT_DIR / layout.NOTIFY_UNIT
    if settings.notify_on_failure:
        notifier = root_template(
            f"systemd unit {layout.NOTIFY_UNIT}", f"{layout.NOTIFY_UNIT}.j2", notifier_path, settings, **UNIT_CONTEXT
        )
    elif entry(notifier_path):
        notifier = files.file(name="No failure notifier unit", path=str(notifier_path), present=False)
    else:
        notifier = UNCHANGED
    if any(op.will_change for op in (notifier, *units.values())):
        systemd.daemon_reload(name="Reload systemd units")
    return units


def services(settings: Settings, units: dict[str, object], restart: bool, new_secrets: list[str]) -> None:
    """Proxy, hub and culler running; each restarted only when it or what it runs changed.

    A restarted proxy has lost its routes: the hub is restarted after it, which puts them back.
    """
    proxy_changed = units[layout.PROXY_SERVICE].will_change or "proxy.env" in new_secrets
    service("JupyterHub proxy running and enabled", layout.PROXY_SERVICE, restarted=proxy_changed)
    hub = service(
        "JupyterHub running and enabled",
        layout.HUB_SERVICE,
        restarted=units[layout.HUB_SERVICE].will_change or restart or proxy_changed,
    )
    service(
        "Idle culler running and enabled",
        layout.CULLER_SERVICE,
        restarted=units[layout.CULLER_SERVICE].will_change or restart,
    )
    if hub.will_change:
        server.shell(
            name="Wait until the hub answers",
            commands=[script(settings.layout, "wait-healthy", 90)],
            _if=hub.did_change,
        )


def config_context(settings: Settings, platform: Platform) -> dict:
    """What templates/jupyterhub_config.py.j2 gets besides the settings and the layout."""
    return {
        "proxy_api_url": layout.PROXY_API_URL,
        "database": layout.DATABASE,
        "postgresql_socket_dir": str(layout.POSTGRESQL_SOCKET_DIR),
        "pam_service": layout.PAM_SERVICE_NAME,
        "user_unit_prefix": layout.USER_UNIT_PREFIX,
        "deploy_token": layout.DEPLOY_TOKEN,
        "ca_bundle": str(layout.SYSTEM_CA_BUNDLE),
        "unix_name_pattern": UNIX_NAME_PATTERN,
        "node_addresses": cluster.node_addresses(settings) if settings.cluster else {},
        **oauth_context(settings),
    }


def oauth_context(settings: Settings) -> dict:
    if settings.oauth is None:
        return {}
    context = {
        "oauth_client_secret": str(settings.layout.oauth_client_secret),
        "oauth_callback_url": f"https://{settings.domain}{settings.base_url}hub/oauth_callback",
        "oauth_names": layout.OAUTH_NAMES,
    }
    if settings.oidc:
        context["oidc_endpoints"] = str(settings.layout.oidc_endpoints(str(settings.oidc.issuer)))
    return context


def apply(settings: Settings, platform: Platform, server_changed: bool) -> None:
    new_secrets = state_and_secrets(settings)
    config = root_template(
        f"Hub configuration {settings.layout.config_file}",
        "jupyterhub_config.py.j2",
        settings.layout.config_file,
        settings,
        **config_context(settings, platform),
    )
    user_servers(settings, platform)
    install_sudoers_rule(settings, render("sudoers.j2", settings))
    units = unit_files(settings, platform)
    services(
        settings, units, restart=config.will_change or server_changed or bool(new_secrets), new_secrets=new_secrets
    )
