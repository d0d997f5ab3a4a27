"""Conda (Miniforge by default): the installer, its channels, and environments from files.

Installed only where something needs it: a kernel with an environment file, or a
target whose python3 is too old for the hub (the server's Python and Node.js then
come from files/conda/server-python.yml). The installer is pinned by sha256 and
run again only when the pin changes (`-u` updates the installation in place).
"""

from __future__ import annotations

import hashlib
from io import StringIO
from pathlib import Path, PurePosixPath

from pyinfra import host
from pyinfra.facts.files import Sha256File
from pyinfra.operations import files, server

from tasks.locks import install_from_lock
from tasks.platform import Platform
from tasks.server_env import SYSTEM_CA_BUNDLE
from tasks.settings import FILES, Settings

SERVER_PYTHON_FILE = FILES / "conda" / "server-python.yml"
INSTALLER_CACHE = PurePosixPath("/var/cache/jupyterhub-deploy")


def needed(settings: Settings, platform: Platform) -> bool:
    return platform.conda_server or any(kernel.conda for kernel in settings.kernels)


def conda(settings: Settings) -> PurePosixPath:
    return settings.conda_prefix / "bin" / "conda"


def installer_stamp(settings: Settings) -> PurePosixPath:
    """Holds the sha256 of the installer that made (or last updated) the installation."""
    return settings.conda_prefix / ".installed-installer-sha256"


def condarc(settings: Settings) -> str:
    """The installation's own .condarc: channels, mirror, and the system's CA store
    (so a TLS-intercepting proxy trusted through jh_extra_ca_certificates works)."""
    lines = ["# Written by the deploy (jh_conda_* settings).", "channels:"]
    lines += [f"  - {channel}" for channel in settings.conda_channels]
    if settings.conda_channel_alias:
        lines.append(f"channel_alias: {settings.conda_channel_alias}")
    lines += [
        f"ssl_verify: {SYSTEM_CA_BUNDLE}",
        "always_yes: true",
        "auto_update_conda: false",
        "notify_outdated_conda: false",
        "",
    ]
    return "\n".join(lines)


def install_command(settings: Settings, installer: PurePosixPath) -> str:
    """Run the installer unattended: a fresh install, or an update (-u) of an existing one."""
    prefix = settings.conda_prefix
    return (
        f"if [ -x {conda(settings)} ]; then update=-u; else update=; fi && "
        f"bash {installer} -b $update -p {prefix} && "
        f"echo {settings.conda_installer_sha256} > {installer_stamp(settings)} && "
        f"rm -f {installer}"
    )


def env_command(settings: Settings, env: PurePosixPath, environment_file: str) -> str:
    """Create the environment, or bring an existing one to the file (removing what it dropped)."""
    tool = conda(settings)
    # conda's pip (for an environment file's pip: section) trusts the system store too.
    pip_env = f"PIP_CERT={SYSTEM_CA_BUNDLE}" + (f" PIP_INDEX_URL={settings.pip_index_url}" if settings.pip_index_url else "")
    return (
        f"if [ -d {env}/conda-meta ]; then "
        f"{pip_env} {tool} env update --prefix {env} --file {environment_file} --prune; "
        f"else rm -rf {env} && {pip_env} {tool} env create --prefix {env} --file {environment_file}; fi"
    )


def install(settings: Settings) -> None:
    """The conda installation itself, at the pinned installer version."""
    files.put(
        name=f"Conda channels and trust store {settings.conda_prefix}/.condarc",
        src=StringIO(condarc(settings)),
        dest=str(settings.conda_prefix / ".condarc"),
        user="root", group="root", mode="644",
    )
    desired = hashlib.sha256(f"{settings.conda_installer_sha256}\n".encode()).hexdigest()
    if host.get_fact(Sha256File, path=str(installer_stamp(settings))) == desired:
        return
    installer = INSTALLER_CACHE / f"conda-installer-{settings.conda_installer_sha256[:16]}.sh"
    files.directory(name=f"Installer cache {INSTALLER_CACHE}", path=str(INSTALLER_CACHE),
                    user="root", group="root", mode="700")
    if settings.conda_installer_file:
        # Checked against the pinned sha256 on the controller, before any host was touched.
        files.put(name=f"Conda installer: upload {settings.conda_installer_file.name}",
                  src=str(settings.conda_installer_file), dest=str(installer),
                  user="root", group="root", mode="600")
    else:
        files.download(name=f"Conda installer: download {settings.conda_installer_url}",
                       src=str(settings.conda_installer_url), dest=str(installer),
                       sha256sum=settings.conda_installer_sha256,
                       user="root", group="root", mode="600")
    server.shell(name=f"Conda: install into {settings.conda_prefix}",
                 commands=[install_command(settings, installer)])


def environment(settings: Settings, name: str, env: PurePosixPath, environment_file: Path) -> bool:
    """A conda environment at env from environment_file, remade only when the file changes."""
    definitions = settings.conda_prefix / "deploy-environments"
    files.directory(name=f"{name}: environment files {definitions}", path=str(definitions),
                    user="root", group="root", mode="755")
    return install_from_lock(
        name=f"{name}: conda environment {env} from {environment_file.name}",
        lock=environment_file,
        remote_dir=definitions,
        upload_as=f"{env.name}.yml",
        stamp=env / ".installed-environment.yml",
        commands=[env_command(settings, env, f"{env.name}.yml")],
    )


def apply(settings: Settings, platform: Platform) -> None:
    if not needed(settings, platform):
        return
    files.directory(name=f"Conda prefix {settings.conda_prefix}", path=str(settings.conda_prefix),
                    user="root", group="root", mode="755")
    install(settings)
    if platform.conda_server:
        environment(settings, "Server Python and Node.js", settings.conda_server_env, SERVER_PYTHON_FILE)
