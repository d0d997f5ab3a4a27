"""Owners and modes of everything that matters, enforced on every run.

Runs as part of deploy.py, and alone when something on a host drifted:

    pyinfra inventory.py tasks.permissions.fix
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import files, server

from tasks.facts import LooseOwnership
from tasks.hub import SECRETS, SUDOERS_RULE
from tasks.settings import Settings, current_settings


def apply(settings: Settings) -> None:
    hub = settings.hub_user
    # The install root and the server venv belong to root: neither the hub user
    # nor hub users may change the code the hub runs as root's delegate.
    files.directory(
        name=f"{settings.install_root}: root, 0755",
        path=str(settings.install_root),
        user="root", group="root", mode="755",
    )
    # Kernel environments and specs too: users run them, only the deploy changes them.
    for tree in (settings.server_envs, settings.kernels_dir, settings.jupyter_data_dir, settings.nltk_data):
        loose = host.get_fact(LooseOwnership, path=str(tree), user="root", group="root")
        if loose:
            server.shell(
                name=f"{tree}: owned by root, writable by root only (was not: {loose[0]} ...)",
                commands=[f"chown -R root:root {tree}", f"chmod -R go-w {tree}"],
            )
    files.file(
        name=f"{settings.config_file}: root, 0644",
        path=str(settings.config_file),
        user="root", group="root", mode="644",
    )
    files.directory(
        name=f"{settings.state_dir}: {hub}, 0700",
        path=str(settings.state_dir),
        user=hub, group=hub, mode="700",
    )
    private = [*SECRETS, "jupyterhub.sqlite"]
    for name in private:
        path = str(settings.state_dir / name)
        # Only files that exist: the hub creates its database on first start.
        if host.get_fact(File, path=path):
            files.file(name=f"{path}: {hub}, 0600", path=path, user=hub, group=hub, mode="600")
    if host.get_fact(File, path=SUDOERS_RULE):
        files.file(
            name=f"{SUDOERS_RULE}: root, 0440",
            path=SUDOERS_RULE,
            user="root", group="root", mode="440",
        )


@deploy("Fix owners and modes")
def fix() -> None:
    apply(current_settings())
