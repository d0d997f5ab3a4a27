"""Alerts to jh_notify_command (with jh_monitoring): Alertmanager posts them to a socket of systemd's
on loopback, whose service (files/bin/notify-alerts.py, root's) runs the command once per alert, as
the hub's units' failures run it (jupyterhub-notify-failure@.service)."""

from __future__ import annotations

from pyinfra.operations import files, systemd

from tasks import layout
from tasks.ops import root_template, service
from tasks.settings import Settings
from tasks.snapshot import entry

UNITS = (layout.NOTIFY_ALERTS_SOCKET, layout.NOTIFY_ALERTS_SERVICE)


def url(settings: Settings) -> str | None:
    """Where Alertmanager posts for the command, if there is one."""
    return f"http://127.0.0.1:{layout.NOTIFY_ALERTS_PORT}/" if settings.notify_command else None


def apply(settings: Settings) -> None:
    if not settings.notify_command:
        remove()
        return
    units = [
        root_template(
            f"systemd unit {unit}", f"{unit}.j2", layout.UNIT_DIR / unit, settings, port=layout.NOTIFY_ALERTS_PORT
        )
        for unit in UNITS
    ]
    if any(op.will_change for op in units):
        systemd.daemon_reload(name="Reload systemd units")
    service("Alerts to jh_notify_command", layout.NOTIFY_ALERTS_SOCKET, restarted=units[0].will_change)


def remove() -> None:
    if not entry(layout.UNIT_DIR / layout.NOTIFY_ALERTS_SOCKET):
        return
    systemd.service(name="No alerts to a command", service=layout.NOTIFY_ALERTS_SOCKET, running=False, enabled=False)
    for unit in UNITS:
        files.file(name=f"No unit {unit}", path=str(layout.UNIT_DIR / unit), present=False)
    systemd.daemon_reload(name="Reload systemd units")
