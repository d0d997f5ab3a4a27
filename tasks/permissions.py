"""Owners and modes of everything that matters, enforced on every run.

Runs as part of deploy.py, and alone when something on a host drifted:

    pyinfra inventory.py tasks.permissions.fix

Root fixes what root owns; inside the hub's state directory the hub user fixes its
own files (root never chowns or chmods through a path the hub account can replace).
"""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.operations import server

from tasks import layout
from tasks.facts import LooseTrees
from tasks.ops import command, directory, fix_file_mode, root_directory
from tasks.settings import Settings, current_settings
from tasks.snapshot import entry, fact


def apply(settings: Settings) -> None:
    hub, paths = settings.hub_user, settings.layout
    # The install root and the server venv belong to root: neither the hub user
    # nor hub users may change the code the hub runs as root's delegate.
    root_directory(f"{paths.install_root}: root, 0755", paths.install_root)
    # Kernel environments and specs too: users run them, only the deploy changes them.
    trees = (
        paths.server_envs,
        paths.kernels_dir,
        paths.jupyter_data_dir,
        paths.nltk_data,
        paths.libexec,
        paths.uv_tool,
    )
    loose = fact(LooseTrees, paths=[str(tree) for tree in trees])
    if loose:
        # -R does not follow links; these trees are root's alone.
        server.shell(
            name=f"{', '.join(map(str, trees))}: owned by root, writable by root only (was not: {loose[0]} ...)",
            commands=[command("chown", "-R", "root:root", *trees), command("chmod", "-R", "go-w", *trees)],
        )
    fix_file_mode(f"{paths.config_file}: root, 0644", paths.config_file, "644", "root", "root")
    # The state directory itself sits in root's install root: the hub cannot replace it.
    directory(f"{paths.state_dir}: {hub}, 0700", paths.state_dir, "700", hub, hub)
    private = (*layout.SECRETS, layout.DATABASE)
    exposed = [
        name for name in private if (found := entry(paths.state_dir / name)) and found[0] == "f" and found[1] & 0o77
    ]
    if exposed:
        server.shell(
            name=f"{paths.state_dir}: {', '.join(exposed)} private to {hub} again (0600)",
            commands=[
                command("runuser", "-u", hub, "--", "chmod", "600", "--", *(paths.state_dir / name for name in exposed))
            ],
        )
    fix_file_mode(f"{layout.SUDOERS_RULE}: root, 0440", layout.SUDOERS_RULE, "440", "root", "root")


@deploy("Fix owners and modes")
def fix() -> None:
    apply(current_settings())
