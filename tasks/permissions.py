"""Owners and modes of everything that matters, enforced on every run.

Runs as part of deploy.py, and alone when something on a host drifted:

    pyinfra inventory.py tasks.permissions.fix

Root fixes what root owns; inside the hub's state directory the hub user fixes its
own files (root never chowns or chmods through a path the hub account can replace).
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import files, server

from tasks import layout
from tasks.facts import ExposedFiles, LooseOwnership
from tasks.ops import command, root_directory
from tasks.settings import Settings, current_settings


def apply(settings: Settings) -> None:
    hub, paths = settings.hub_user, settings.layout
    # The install root and the server venv belong to root: neither the hub user
    # nor hub users may change the code the hub runs as root's delegate.
    root_directory(f"{paths.install_root}: root, 0755", paths.install_root)
    # Kernel environments and specs too: users run them, only the deploy changes them.
    for tree in (paths.server_envs, paths.kernels_dir, paths.jupyter_data_dir, paths.nltk_data, paths.libexec):
        loose = host.get_fact(LooseOwnership, path=str(tree), user="root", group="root")
        if loose:
            # -R does not follow links; these trees are root's alone.
            server.shell(
                name=f"{tree}: owned by root, writable by root only (was not: {loose[0]} ...)",
                commands=[command("chown", "-R", "root:root", tree), command("chmod", "-R", "go-w", tree)],
            )
    files.file(
        name=f"{paths.config_file}: root, 0644", path=str(paths.config_file), user="root", group="root", mode="644"
    )
    # The state directory itself sits in root's install root: the hub cannot replace it.
    files.directory(name=f"{paths.state_dir}: {hub}, 0700", path=str(paths.state_dir), user=hub, group=hub, mode="700")
    private = (*layout.SECRETS, layout.DATABASE)
    exposed = host.get_fact(ExposedFiles, directory=str(paths.state_dir), names=private)
    if exposed:
        server.shell(
            name=f"{paths.state_dir}: {', '.join(exposed)} private to {hub} again (0600)",
            commands=[
                command("runuser", "-u", hub, "--", "chmod", "600", "--", *(paths.state_dir / name for name in exposed))
            ],
        )
    if host.get_fact(File, path=str(layout.SUDOERS_RULE)):
        files.file(
            name=f"{layout.SUDOERS_RULE}: root, 0440",
            path=str(layout.SUDOERS_RULE),
            user="root",
            group="root",
            mode="440",
        )


@deploy("Fix owners and modes")
def fix() -> None:
    apply(current_settings())
