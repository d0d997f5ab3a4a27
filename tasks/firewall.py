"""ufw, when the admin asks for it: SSH and the web ports open, other incoming traffic denied.

In a cluster the hub and its nodes let each other in (Slurm's daemons, the hub's API, the
users' servers on the nodes' ports); a node opens SSH alone to the rest of the world."""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra import host
from pyinfra.operations import server

from tasks.cluster_plan import NODES, role
from tasks.facts import UfwStatus
from tasks.ops import command, packages
from tasks.settings import Settings


def open_ports(settings: Settings, node: bool = False) -> list[int]:
    web = [] if node else [80, 443] if settings.domain else [settings.public_port]
    return [settings.firewall_ssh_port, *web]


def apply(settings: Settings, peers: Sequence[str] = ()) -> None:
    """peers: the addresses this host lets in (a cluster's other hosts)."""
    if not settings.firewall:
        return
    packages("Install ufw", ["ufw"])
    status = host.get_fact(UfwStatus) or {"active": False, "allowed": set(), "sources": set()}
    # Ports first, then enable: the SSH connection this deploy runs over stays open.
    for port in open_ports(settings, node=role() == NODES):
        if f"{port}/tcp" not in status["allowed"]:
            server.shell(name=f"Firewall: allow {port}/tcp", commands=[f"ufw allow {port}/tcp"])
    for address in peers:
        if address not in status["sources"]:
            server.shell(
                name=f"Firewall: allow the cluster's {address}", commands=[command("ufw", "allow", "from", address)]
            )
    if not status["active"]:
        server.shell(name="Firewall: deny other incoming traffic", commands=["ufw --force enable"])
