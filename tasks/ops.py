"""Small helpers for the operations every task repeats: root-owned files and directories,
templates, services, packages, and the shipped scripts (files/bin), called with quoted
arguments. Each plans its pyinfra operation only where the host differs (tasks.snapshot)."""

from __future__ import annotations

import hashlib
import shlex
from io import StringIO
from pathlib import Path, PurePosixPath

from pyinfra import host, state
from pyinfra.api import FileUploadCommand, QuoteString, StringCommand, operation
from pyinfra.api.util import get_template
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.server import Home, User
from pyinfra.operations import apt, files, server, systemd

from tasks.layout import OBSOLETE_LIBEXEC, Layout, layout_env
from tasks.settings import FILES, Settings
from tasks.snapshot import UNCHANGED, children, entry, fact, is_state, unit_state

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
SCRIPTS = FILES / "bin"


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
    """A template of templates/ rendered here and put as a root-owned file."""
    return root_file(name, StringIO(render(template, settings, **context)), dest, mode=mode)


def root_file(
    name: str, src, dest: PurePosixPath | str, mode: str = "644", group: str = "root", user: str = "root", **kwargs
):
    """A path on the controller or a StringIO put as a file (root's unless a daemon must own it, as
    slurmdbd its configuration); not planned if the host has it.

    Where the host's file differs or is missing, it is uploaded without pyinfra's facts
    (the snapshot already read it), unless --diff asks for pyinfra's diff.
    """
    content = src.getvalue().encode() if isinstance(src, StringIO) else Path(src).read_bytes()
    if is_state(dest, "f", mode, user, group, hashlib.sha256(content).hexdigest()):
        return UNCHANGED
    src = src if not isinstance(src, Path) else str(src)
    found = entry(dest)
    if state.config.DIFF or (found is not None and found[0] != "f"):
        return files.put(name=name, src=src, dest=str(dest), mode=mode, user=user, group=group, **kwargs)
    parent = PurePosixPath(dest).parent
    make_parent = entry(parent) is None
    return upload(
        name=name, src=src, dest=str(dest), mode=mode, user=user, group=group, make_parent=make_parent, **kwargs
    )


def directory(name: str, path: PurePosixPath | str, mode: str, user: str, group: str):
    """A directory with this owner and mode; not planned if the host has it so, and made
    without pyinfra's facts where it is missing or a directory (anything else: pyinfra's
    files.directory, which stops on it)."""
    if is_state(path, "d", mode, user, group):
        return UNCHANGED
    found = entry(path)
    if found is not None and found[0] != "d":
        return files.directory(name=name, path=str(path), mode=mode, user=user, group=group)
    return make_directory(name=name, path=str(path), mode=mode, user=user, group=group)


@operation()
def upload(src, dest: str, mode: str, user: str, group: str, make_parent: bool):
    """Upload a file the snapshot found missing or different, with this owner and mode."""
    if make_parent:
        yield StringCommand("mkdir", "-p", QuoteString(str(PurePosixPath(dest).parent)))
    temp_dir = (host.current_op_global_arguments or {}).get("_temp_dir")
    yield FileUploadCommand(src, dest, remote_temp_filename=host.get_temp_filename(dest, temp_directory=temp_dir))
    yield StringCommand("chown", f"{user}:{group}", QuoteString(dest), "&&", "chmod", mode, QuoteString(dest))


@operation()
def make_directory(path: str, mode: str, user: str, group: str):
    """A directory the snapshot found missing or with another owner or mode."""
    quoted = QuoteString(path)
    yield StringCommand("mkdir", "-p", quoted, "&&", "chown", f"{user}:{group}", quoted, "&&", "chmod", mode, quoted)


def root_directory(name: str, path: PurePosixPath | str, mode: str = "755"):
    return directory(name, path, mode, "root", "root")


def fix_file_mode(name: str, path: PurePosixPath | str, mode: str, user: str, group: str):
    """An existing regular file's owner and mode (a missing one is left to the task that makes it)."""
    found = entry(path)
    if found is None or found[:4] == ("f", int(mode, 8), user, group):
        return UNCHANGED
    return files.file(name=name, path=str(path), user=user, group=group, mode=mode)


def service(name: str, unit: str, restarted: bool = False, reloaded: bool = False):
    """A unit running and enabled (restarted or reloaded if asked); not planned if it already is and
    needs neither."""
    if not restarted and not reloaded and unit_state(unit) == ("active", "enabled"):
        return UNCHANGED
    return systemd.service(name=name, service=unit, running=True, enabled=True, restarted=restarted, reloaded=reloaded)


def packages(name: str, names: list[str]):
    """Distribution packages installed (apt's lists refreshed when older than a day), if any is missing."""
    installed = fact(DebPackages)
    if all(package in installed for package in names):
        return UNCHANGED
    return apt.packages(name=name, packages=names, no_recommends=True, update=True, cache_time=24 * 3600)


def command(*argv: object) -> str:
    """One shell command line from arguments, each quoted for the shell."""
    return shlex.join(str(arg) for arg in argv)


def script(layout: Layout, name: str, *args: object, as_user: str | None = None) -> str:
    """The command line that runs the shipped script files/bin/<name> (as as_user, if given)."""
    run_as = ("runuser", "-u", as_user, "--") if as_user else ()
    return command(*run_as, layout.script(name), *args)


def ship_scripts(settings: Settings) -> None:
    """files/bin to <install root>/libexec: root-owned, run by root or the hub user; the
    library they source (*.sh) not executable. And first, beside them, the layout the state
    scripts read (tasks.layout.layout_env): every entry point that ships scripts writes it, so
    a day-2 entry point on a host an older version deployed finds it too.

    Only files that differ (content, mode, owner) are put.
    """
    paths = settings.layout
    root_directory(f"Install root {paths.install_root}", paths.install_root)
    root_directory(f"Deploy scripts {paths.libexec}", paths.libexec)
    root_file(
        f"Layout of the deploy scripts {paths.layout_env_file}",
        StringIO(layout_env(settings, host.name)),
        paths.layout_env_file,
    )
    for path in sorted(SCRIPTS.iterdir()):
        mode = "644" if path.suffix == ".sh" else "755"
        root_file(f"Deploy script {path.name}", path, paths.script(path.name), mode=mode)
    for name in sorted(set(OBSOLETE_LIBEXEC).intersection(children(paths.libexec))):
        files.file(
            name=f"No more {name} in {paths.libexec} (the hub's package has it now)",
            path=str(paths.script(name)),
            present=False,
        )


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


def install_nginx_site(
    settings: Settings, config: str, site: PurePosixPath, enabled: PurePosixPath, stage: str
) -> bool:
    """Put an nginx site in place and reload nginx, unless `nginx -t` rejects it.

    A rejected config is replaced by the previous one (or removed, if there was none) before
    nginx ever loads it, and the run fails showing nginx's error. Compared with the live site at
    plan time, so a rejected change is retried. Returns whether the site changes.
    """
    desired = hashlib.sha256(config.encode()).hexdigest()
    link = entry(enabled)
    if is_state(site, "f", "644", "root", "root", desired) and link and link[0] == "l":
        return False
    staged = f"{site}.new"
    root_file(f"Stage the nginx site ({stage})", StringIO(config), staged)
    server.shell(
        name=f"Check the nginx site with nginx -t, then reload ({stage})",
        commands=[script(settings.layout, "install-nginx-site", staged, site, enabled)],
    )
    return True


def append_lines(name: str, path: PurePosixPath | str, lines: list[str]):
    """Lines added at the end of a file of the system's (a PAM service, a deny list), made if missing."""
    return server.shell(
        name=name, commands=[command("sh", "-c", 'f=$1; shift; printf "%s\\n" "$@" >>"$f"', "append", path, *lines)]
    )
