"""The hub: its state and secrets, configuration, sudoers rule and systemd units."""

from __future__ import annotations

import hashlib
from io import StringIO

from pyinfra import host
from pyinfra.facts.files import File, Sha1File
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from tasks import layout, server_env
from tasks.ops import render, root_file, root_template, script
from tasks.platform import Platform
from tasks.settings import Settings

# What the unit templates get besides the settings and the layout.
UNIT_CONTEXT = {"hub_bind_url": layout.HUB_BIND_URL}


def state_and_secrets(settings: Settings) -> bool:
    """The state directory and the secrets; returns whether a secret is (re)generated."""
    paths = settings.layout
    files.directory(
        name=f"Hub state directory {paths.state_dir}",
        path=str(paths.state_dir),
        user=settings.hub_user,
        group=settings.hub_user,
        mode="700",
    )
    missing = [name for name in layout.SECRETS if not host.get_fact(File, path=str(paths.state_dir / name))]
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
    return bool(missing)


def install_sudoers_rule(settings: Settings, rule: str) -> None:
    """Install the sudoers rule only after visudo accepts it: a broken rule never lands.

    Decided by comparing the live rule with the desired one (a fact), so a rule
    that failed validation is checked again on the next run.
    """
    if host.get_fact(Sha1File, path=str(layout.SUDOERS_RULE)) == hashlib.sha1(rule.encode()).hexdigest():
        return
    # sudo skips files in sudoers.d whose names contain a dot: the staged copy is inert.
    staged = f"{layout.SUDOERS_RULE}.staged"
    root_file("Stage the sudoers rule for sudospawner", StringIO(rule), staged, mode="440")
    server.shell(
        name="Check the sudoers rule with visudo, then install it",
        commands=[script(settings.layout, "install-sudoers", staged, layout.SUDOERS_RULE)],
    )


def unit_files(settings: Settings) -> tuple[object, object]:
    """The units; returns the hub's and the culler's file operations (restarts follow them)."""
    hub_unit, culler_unit = (
        root_template(f"systemd unit {unit}", f"{unit}.j2", layout.UNIT_DIR / unit, settings, **UNIT_CONTEXT)
        for unit in layout.SERVICES
    )
    notifier_path = layout.UNIT_DIR / layout.NOTIFY_UNIT
    if settings.notify_on_failure:
        notifier = root_template(
            f"systemd unit {layout.NOTIFY_UNIT}", f"{layout.NOTIFY_UNIT}.j2", notifier_path, settings, **UNIT_CONTEXT
        )
    else:
        notifier = files.file(name="No failure notifier unit", path=str(notifier_path), present=False)
    systemd.daemon_reload(name="Reload systemd units", _if=any_changed(hub_unit, culler_unit, notifier))
    return hub_unit, culler_unit


def services(settings: Settings, hub_unit, culler_unit, restart: bool) -> None:
    """Hub and culler running; restarted when their unit or what they run changed."""
    hub = systemd.service(
        name="JupyterHub running and enabled",
        service=layout.HUB_SERVICE,
        running=True,
        enabled=True,
        restarted=hub_unit.will_change or restart,
    )
    systemd.service(
        name="Idle culler running and enabled",
        service=layout.CULLER_SERVICE,
        running=True,
        enabled=True,
        restarted=culler_unit.will_change or restart,
    )
    server.shell(
        name="Wait until the hub answers",
        commands=[script(settings.layout, "wait-healthy", f"{settings.local_url}hub/health", 90)],
        _if=hub.did_change,
    )


def config_context(settings: Settings, platform: Platform) -> dict:
    """What templates/jupyterhub_config.py.j2 gets besides the settings and the layout."""
    return {
        "hub_bind_url": layout.HUB_BIND_URL,
        "proxy_api_url": layout.PROXY_API_URL,
        "proxy_command": server_env.proxy_command(settings, platform),
        "database": layout.DATABASE,
        "proxy_pid_file": layout.PROXY_PID_FILE,
        "pam_service": layout.PAM_SERVICE_NAME,
    }


def apply(settings: Settings, platform: Platform, server_changed: bool) -> None:
    new_secrets = state_and_secrets(settings)
    config = root_template(
        f"Hub configuration {settings.layout.config_file}",
        "jupyterhub_config.py.j2",
        settings.layout.config_file,
        settings,
        **config_context(settings, platform),
    )
    install_sudoers_rule(settings, render("sudoers.j2", settings))
    hub_unit, culler_unit = unit_files(settings)
    services(settings, hub_unit, culler_unit, restart=config.will_change or server_changed or new_secrets)
