"""The hub: its state and secrets, configuration, sudoers rule and systemd units."""

from __future__ import annotations

import hashlib
import shlex
from io import StringIO

from pyinfra import host
from pyinfra.facts.files import File, Sha1File
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from tasks import server_env
from tasks.platform import Platform
from tasks.settings import Settings
from tasks.templating import jinja_options, render, template_path

SUDOERS_RULE = "/etc/sudoers.d/jupyterhub"
UNIT_DIR = "/etc/systemd/system"
# The hub's own API: loopback only, for the proxy, the culler and the deploy.
HUB_BIND_URL = "http://127.0.0.1:8081"
PROXY_API_URL = "http://127.0.0.1:8001"

# name -> how its value is written: env files for systemd's EnvironmentFile=,
# a bare hex string where JupyterHub reads the file itself.
SECRETS = {
    "jupyterhub_cookie_secret": "{}",
    "proxy.env": "CONFIGPROXY_AUTH_TOKEN={}",
    "idle_culler.env": "JUPYTERHUB_API_TOKEN={}",
}


def state_and_secrets(settings: Settings) -> None:
    files.directory(
        name=f"Hub state directory {settings.state_dir}",
        path=str(settings.state_dir),
        user=settings.hub_user, group=settings.hub_user, mode="700",
    )
    for name, form in SECRETS.items():
        path = settings.state_dir / name
        # Generated on the host, once: a re-run never replaces a secret.
        if host.get_fact(File, path=str(path)):
            continue
        generate = f"import secrets; print({form!r}.format(secrets.token_hex(32)))"
        server.shell(
            name=f"Generate secret {name}",
            commands=[
                f"(umask 077 && {settings.venv}/bin/python -c {shlex.quote(generate)} > {path}.new)",
                f"chown {settings.hub_user}:{settings.hub_user} {path}.new",
                f"mv {path}.new {path}",
            ],
        )


def install_sudoers_rule(rule: str) -> None:
    """Install the sudoers rule only after visudo accepts it: a broken rule never lands.

    Decided by comparing the live rule with the desired one (a fact), so a rule
    that failed validation is checked again on the next run.
    """
    if host.get_fact(Sha1File, path=SUDOERS_RULE) == hashlib.sha1(rule.encode()).hexdigest():
        return
    # sudo skips files in sudoers.d whose names contain a dot: the staged copy is inert.
    staged = f"{SUDOERS_RULE}.staged"
    files.put(
        name="Stage the sudoers rule for sudospawner",
        src=StringIO(rule),
        dest=staged,
        user="root", group="root", mode="440",
    )
    server.shell(
        name="Check the sudoers rule with visudo, then install it",
        commands=[
            f"visudo -c -q -f {staged} || {{ rm -f {staged}; exit 1; }}",
            f"mv -f {staged} {SUDOERS_RULE}",
            "visudo -c -q",
        ],
    )


def units(settings: Settings, restart_hub: list) -> None:
    context = dict(s=settings, hub_bind_url=HUB_BIND_URL)
    unit_ops = [
        files.template(
            name=f"systemd unit {unit}",
            src=template_path(f"{unit}.j2"),
            jinja_env_kwargs=jinja_options(),
            dest=f"{UNIT_DIR}/{unit}",
            user="root", group="root", mode="644",
            **context,
        )
        for unit in ("jupyterhub.service", "jupyterhub-idle-culler.service")
    ]
    notifier = files.template(
        name="systemd unit jupyterhub-notify-failure@.service",
        src=template_path("jupyterhub-notify-failure@.service.j2"),
        jinja_env_kwargs=jinja_options(),
        dest=f"{UNIT_DIR}/jupyterhub-notify-failure@.service",
        user="root", group="root", mode="644",
        **context,
    ) if settings.notify_on_failure else files.file(
        name="No failure notifier unit",
        path=f"{UNIT_DIR}/jupyterhub-notify-failure@.service",
        present=False,
    )
    systemd.daemon_reload(name="Reload systemd units", _if=any_changed(*unit_ops, notifier))
    hub_unit, culler_unit = unit_ops
    hub_service = systemd.service(
        name="JupyterHub running and enabled",
        service="jupyterhub.service",
        running=True,
        enabled=True,
        restarted=hub_unit.will_change or any(restart_hub),
    )
    systemd.service(
        name="Idle culler running and enabled",
        service="jupyterhub-idle-culler.service",
        running=True,
        enabled=True,
        restarted=culler_unit.will_change or any(restart_hub),
    )
    server.shell(
        name="Wait until the hub answers",
        commands=[wait_for_url(f"{settings.local_url}hub/health", settings, timeout=90)],
        _if=hub_service.did_change,
    )


def wait_for_url(url: str, settings: Settings, timeout: int) -> str:
    """A command that polls url until it answers, or fails showing the hub's last log lines."""
    poll = (
        "import sys, time, urllib.request\n"
        f"deadline = time.time() + {timeout}\n"
        "while True:\n"
        "    try:\n"
        f"        urllib.request.urlopen({url!r}, timeout=5)\n"
        "        break\n"
        "    except Exception as error:\n"
        "        if time.time() > deadline:\n"
        f"            sys.exit('no answer from {url}: %s' % error)\n"
        "        time.sleep(1)\n"
    )
    return (
        f"{settings.venv}/bin/python -c {shlex.quote(poll)}"
        " || { journalctl -u jupyterhub -n 30 --no-pager; exit 1; }"
    )


def apply(settings: Settings, platform: Platform, server_changed: bool) -> None:
    state_and_secrets(settings)
    config = files.template(
        name=f"Hub configuration {settings.config_file}",
        src=template_path("jupyterhub_config.py.j2"),
        jinja_env_kwargs=jinja_options(),
        dest=str(settings.config_file),
        user="root", group="root", mode="644",
        s=settings,
        hub_bind_url=HUB_BIND_URL,
        proxy_api_url=PROXY_API_URL,
        proxy_command=server_env.proxy_command(settings, platform),
    )
    install_sudoers_rule(render("sudoers.j2", s=settings))
    units(settings, restart_hub=[config.will_change, server_changed])
