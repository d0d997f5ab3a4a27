"""Print each host's state: services, versions, certificate expiry, disk use, user servers.

    pyinfra inventory.py tasks.status.show

Reads only (a fact running files/bin/hub-status); changes nothing, with or without --dry.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import FactBase, deploy

from tasks import layout
from tasks.ops import SCRIPTS, command
from tasks.settings import current_settings


class HubStatus(FactBase):
    """files/bin/hub-status's "key: value" lines, as an ordered dict."""

    def command(self, venv: str, kernels: str, install_root: str) -> str:
        args = command(venv, kernels, install_root, layout.NGINX_SITE, *layout.SERVICES, "nginx.service")
        return f"sh -s {args} <<'STATUS'\n{(SCRIPTS / 'hub-status').read_text()}STATUS"

    def process(self, output):
        return dict(line.split(": ", 1) if ": " in line else (line, "") for line in output)


@deploy("Hub status")
def show() -> None:
    paths = current_settings().layout
    status = host.get_fact(
        HubStatus, venv=str(paths.venv), kernels=str(paths.kernels_dir), install_root=str(paths.install_root)
    )
    width = max(map(len, status), default=0) + 1
    lines = [f"  {key + ':':<{width}} {value}" for key, value in status.items()]
    print(f"--> {host.name}\n" + "\n".join(lines), flush=True)
