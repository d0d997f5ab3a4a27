"""Small helpers for the operations every task repeats: root-owned files and directories,
templates, and the shipped scripts (files/bin), called with quoted arguments."""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path, PurePosixPath

from pyinfra import host
from pyinfra.api.util import get_template
from pyinfra.facts.server import Home, User
from pyinfra.operations import files

from tasks.facts import FileDigests
from tasks.layout import Layout
from tasks.settings import FILES, Settings

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
SCRIPTS = FILES / "bin"
ROOT = {"user": "root", "group": "root"}


def jinja_options() -> dict:
    # A fresh dict each call: pyinfra pops keys from it.
    return {"trim_blocks": True, "lstrip_blocks": True}


def render(template: str, settings: Settings, **context) -> str:
    """A template of templates/ as text, for content checked (visudo, nginx -t) before it lands."""
    path = str(TEMPLATES / template)
    return get_template(path, jinja_env_kwargs=jinja_options()).render(
        settings=settings, layout=settings.layout, **context
    )


def root_template(
    name: str, template: str, dest: PurePosixPath | str, settings: Settings, mode: str = "644", **context
):
    return files.template(
        name=name,
        src=str(TEMPLATES / template),
        dest=str(dest),
        mode=mode,
        jinja_env_kwargs=jinja_options(),
        settings=settings,
        layout=settings.layout,
        **ROOT,
        **context,
    )


def root_file(name: str, src, dest: PurePosixPath | str, mode: str = "644", **kwargs):
    """files.put of a path on the controller or a StringIO, owned by root."""
    return files.put(
        name=name, src=src if not isinstance(src, Path) else str(src), dest=str(dest), mode=mode, **ROOT, **kwargs
    )


def root_directory(name: str, path: PurePosixPath | str, mode: str = "755", **kwargs):
    return files.directory(name=name, path=str(path), mode=mode, **ROOT, **kwargs)


def command(*argv: object) -> str:
    """One shell command line from arguments, each quoted for the shell."""
    return shlex.join(str(arg) for arg in argv)


def script(layout: Layout, name: str, *args: object, as_user: str | None = None) -> str:
    """The command line that runs the shipped script files/bin/<name> (as as_user, if given)."""
    run_as = ("runuser", "-u", as_user, "--") if as_user else ()
    return command(*run_as, layout.script(name), *args)


def ship_scripts(layout: Layout) -> None:
    """files/bin to <install root>/libexec: root-owned, run by root or the hub user.

    One fact reads what is there; only scripts that differ (content, mode, owner) are put.
    """
    root_directory(f"Install root {layout.install_root}", layout.install_root)
    root_directory(f"Deploy scripts {layout.libexec}", layout.libexec)
    shipped = host.get_fact(FileDigests, directory=str(layout.libexec))
    for path in sorted(SCRIPTS.iterdir()):
        if shipped.get(path.name) != f"{hashlib.sha256(path.read_bytes()).hexdigest()} 755 root:root":
            root_file(f"Deploy script {path.name}", path, layout.script(path.name), mode="755")


def private_transfer() -> dict:
    """Operation arguments for uploading or downloading a secret (a key, a backup archive).

    Logged in as root, pyinfra moves files straight to or from their place, which is in a
    directory only root can enter. As another user (with sudo, su or doas, from the
    inventory or the command line) it stages them as temporary files, by default in /tmp
    and readable by others: here, in a directory only the SSH user can enter.
    """
    if host.get_fact(User, _sudo=False, _su_user=None, _doas=False) == "root":
        return {}
    directory = f"{host.get_fact(Home, _sudo=False, _su_user=None, _doas=False)}/.jupyterhub-deploy-transfer"
    files.directory(
        name="Private transfer directory of the SSH user",
        path=directory,
        mode="700",
        _sudo=False,
        _su_user=None,
        _doas=False,
    )
    return {"_temp_dir": directory}
