"""Print each host's state: services, versions, certificate expiry, disk use, user servers.

    pyinfra inventory.py tasks.status.show

Reads only (a fact); changes nothing, with or without --dry.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import FactBase, deploy

from tasks.settings import FILES, current_settings
from tasks.web import SITE


class HubStatus(FactBase):
    """files/status.sh's "key: value" lines, as an ordered dict."""

    def command(self, install_root: str, site: str) -> str:
        return f"sh -s {install_root} {site} <<'STATUS'\n{(FILES / 'status.sh').read_text()}STATUS"

    def process(self, output):
        return dict(line.split(": ", 1) if ": " in line else (line, "") for line in output)


@deploy("Hub status")
def show() -> None:
    settings = current_settings()
    status = host.get_fact(HubStatus, install_root=str(settings.install_root), site=SITE)
    width = max(map(len, status), default=0) + 1
    lines = [f"  {key + ':':<{width}} {value}" for key, value in status.items()]
    print(f"--> {host.name}\n" + "\n".join(lines), flush=True)
