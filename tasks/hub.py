"""The hub: its state and secrets, configuration, sudoers rule, users' servers and systemd units.

Three services: the proxy (routes), the hub, the idle culler. Users' servers are
transient units in a slice of their own (files/bin/user-server), so restarting the hub
(a changed config, an upgrade) leaves them and their routes alone; the proxy restarts
only when Node.js or configurable-http-proxy change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from io import StringIO

from pyinfra.operations import files, server, systemd

from tasks import hub_data, hub_package, layout, server_env
from tasks.facts import LoginDefs, ResourceControl
from tasks.ops import directory, render, root_file, root_template, script, service
from tasks.platform import Platform
from tasks.settings import Settings
from tasks.snapshot import UNCHANGED, Managed, children, entry, fact, is_state

# What the unit templates get besides the settings and the layout.
UNIT_CONTEXT = {
    "proxy_service": layout.PROXY_SERVICE,
    "proxy_api_port": layout.PROXY_API_PORT,
    "monitoring_gate_dir": layout.MONITORING_GATE_DIR.name,
    "proxy_metrics_port": layout.PROXY_METRICS_PORT,
}
# The memory the users' servers together leave the system: 10 %, at least this.
MIN_SYSTEM_RESERVE = 1024**3


def secrets(settings: Settings) -> dict[str, str]:
    """The secrets the hub reads (name -> the text before the value); the metrics token with jh_monitoring."""
    extra = {layout.METRICS_TOKEN: "JUPYTERHUB_API_TOKEN="} if settings.monitoring else {}
    return {**layout.SECRETS, **extra}


def missing_secrets(settings: Settings) -> list[str]:
    """The secrets the host has yet to get (as the run found it)."""
    present = children(settings.layout.state_dir, kind="f")
    return [name for name in secrets(settings) if name not in present]


def state_and_secrets(settings: Settings) -> None:
    """The state directory and the secrets, made before the config that names them is read."""
    paths = settings.layout
    directory(f"Hub state directory {paths.state_dir}", paths.state_dir, "700", settings.hub_user, settings.hub_user)
    wanted, missing = secrets(settings), missing_secrets(settings)
    if missing:
        # Generated on the host, once, by the hub user in its own directory: a re-run never
        # replaces a secret, and root never writes below the state directory.
        server.shell(
            name=f"Generate secrets {', '.join(missing)}",
            commands=[
                script(paths, "new-secret", paths.state_dir / name, wanted[name], as_user=settings.hub_user)
                for name in missing
            ],
        )


def sudoers_rule(settings: Settings) -> str:
    """The hub user's one sudo rule: root's helper, with the verbs this hub needs."""
    return render(
        "sudoers.j2",
        settings,
        creates_accounts=hub_data.creates_accounts(settings),
        helper=settings.layout.script("user-server"),
    )


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


def configure(settings: Settings, platform: Platform, node_addresses: Mapping[str, str], pending: bool) -> bool:
    """The hub's configuration: the static config file and the data it applies (hub.json, which
    root's helper reads too), and the state folder with the secrets they name. Written before a
    new venv is switched to (its upgrade-db reads it). node_addresses: a cluster's Slurm node names and their addresses (tasks/cluster_plan.py);
    pending: something else the hub runs changes too (its package).

    Returns whether the hub must restart. Then first a marker says so, removed once it has
    (apply): a run that fails in between leaves the next one to restart it, though that one
    writes nothing new."""
    paths = settings.layout
    state_and_secrets(settings)
    resources = fact(ResourceControl)
    slots = hub_data.start_slots(settings, resources["cpus"], resources["memory"])
    data = hub_data.hub_json(settings, platform, fact(LoginDefs)["UID_MIN"], dict(node_addresses), slots)
    wanted = {paths.config_file: hub_package.HUB_CONFIG.read_bytes(), paths.hub_data: data.encode()}
    changing = [
        path
        for path, content in wanted.items()
        if not is_state(path, "f", "644", "root", "root", hashlib.sha256(content).hexdigest())
    ]
    if (changing or pending) and not entry(paths.restart_marker):
        root_file("The hub restarts with what changes now (a marker until it has)", StringIO(""), paths.restart_marker)
    root_file(f"Hub configuration {paths.config_file}", hub_package.HUB_CONFIG, paths.config_file)
    root_file(f"Hub configuration data {paths.hub_data}", StringIO(data), paths.hub_data)
    return bool(changing or pending or entry(paths.restart_marker) or missing_secrets(settings))


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
        reserved_ports=layout.reserved_ports(settings, platform),
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


def services(settings: Settings, units: dict[str, object], restart: bool, new_secrets: list[str], marked: bool) -> None:
    """Proxy, hub and culler running; each restarted only when it or what it runs changed.

    A restarted proxy has lost its routes: the hub is restarted after it, which puts them back.
    marked: configure's marker of a pending restart is there, removed once the hub answers.
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
    if marked:
        files.file(
            name="The hub runs what changed: no restart pending",
            path=str(settings.layout.restart_marker),
            present=False,
        )


def managed_paths(settings: Settings, platform: Platform) -> Managed:
    """The units, the sudoers rule; the hub's state folder (its user's: listed, no file read)."""
    return Managed(hashed=(layout.UNIT_DIR, layout.SUDOERS_RULE.parent), listed=(settings.layout.state_dir,))


def apply(settings: Settings, platform: Platform, restart: bool, marked: bool) -> None:
    """State, secrets, sudoers rule, units and services; the hub restarts if restart (its config
    or venv changed) or its unit or secrets did. marked: configure's marker is there."""
    new_secrets = missing_secrets(settings)
    install_sudoers_rule(settings, sudoers_rule(settings))
    units = unit_files(settings, platform)
    services(settings, units, restart=restart or bool(new_secrets), new_secrets=new_secrets, marked=marked)
