"""ufw, when the admin asks for it: SSH and the web ports open, other incoming traffic denied."""

from __future__ import annotations

from pyinfra import host
from pyinfra.operations import server

from tasks.facts import UfwStatus
from tasks.ops import packages
from tasks.settings import Settings


def open_ports(settings: Settings) -> list[int]:
    web = [80, 443] if settings.domain else [settings.public_port]
    return [settings.firewall_ssh_port, *web]


def apply(settings: Settings) -> None:
    if not settings.firewall:
        return
    packages("Install ufw", ["ufw"])
    status = host.get_fact(UfwStatus) or {"active": False, "allowed": set()}
    # Ports first, then enable: the SSH connection this deploy runs over stays open.
    for port in open_ports(settings):
        if f"{port}/tcp" not in status["allowed"]:
            server.shell(name=f"Firewall: allow {port}/tcp", commands=[f"ufw allow {port}/tcp"])
    if not status["active"]:
        server.shell(name="Firewall: deny other incoming traffic", commands=["ufw --force enable"])
