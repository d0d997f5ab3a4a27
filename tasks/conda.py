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

from pyinfra.operations import files, server

from tasks import layout
from tasks.locks import install_from_lock
from tasks.ops import root_directory, root_file, script
from tasks.platform import Platform
from tasks.settings import FILES, Settings
from tasks.snapshot import Managed, entry

SERVER_PYTHON_FILE = FILES / "conda" / "server-python.yml"


def needed(settings: Settings, platform: Platform) -> bool:
    return platform.conda_server or any(kernel.conda for kernel in settings.kernels)


def condarc(settings: Settings) -> str:
    """The installation's own .condarc: channels, mirror, and the system's CA store
    (so a TLS-intercepting proxy trusted through jh_extra_ca_certificates works)."""
    lines = ["# Written by the deploy (jh_conda_* settings).", "channels:"]
    lines += [f"  - {channel}" for channel in settings.conda_channels]
    if settings.conda_channel_alias:
        lines.append(f"channel_alias: {settings.conda_channel_alias}")
    lines += [
        f"ssl_verify: {layout.SYSTEM_CA_BUNDLE}",
        "always_yes: true",
        "auto_update_conda: false",
        "notify_outdated_conda: false",
        "",
    ]
    return "\n".join(lines)


def install(settings: Settings) -> None:
    """The conda installation itself, at the pinned installer version."""
    paths = settings.layout
    root_file(
        f"Conda channels and trust store {paths.conda_prefix}/.condarc",
        StringIO(condarc(settings)),
        paths.conda_prefix / ".condarc",
    )
    desired = hashlib.sha256(f"{settings.conda_installer_sha256}\n".encode()).hexdigest()
    stamp = entry(paths.conda_installer_stamp, hashed=True)
    if stamp and stamp[5] == desired:
        return
    installer = layout.INSTALLER_CACHE / f"conda-installer-{settings.conda_installer_sha256[:16]}.sh"
    root_directory(f"Installer cache {layout.INSTALLER_CACHE}", layout.INSTALLER_CACHE, mode="700")
    if settings.conda_installer_file:
        # Checked against the pinned sha256 on the controller, before any host was touched.
        root_file(
            f"Conda installer: upload {settings.conda_installer_file.name}",
            settings.conda_installer_file,
            installer,
            mode="600",
        )
    else:
        files.download(
            name=f"Conda installer: download {settings.conda_installer_url}",
            src=str(settings.conda_installer_url),
            dest=str(installer),
            sha256sum=settings.conda_installer_sha256,
            user="root",
            group="root",
            mode="600",
        )
    server.shell(
        name=f"Conda: install into {paths.conda_prefix}",
        commands=[
            script(
                paths,
                "conda-install",
                installer,
                paths.conda_prefix,
                settings.conda_installer_sha256,
                paths.conda_installer_stamp,
            )
        ],
    )


def environment(settings: Settings, name: str, env: PurePosixPath, environment_file: Path) -> bool:
    """A conda environment at env from environment_file, remade only when the file changes."""
    paths = settings.layout
    definitions = paths.conda_environment_files
    root_directory(f"{name}: environment files {definitions}", definitions)
    uploaded = definitions / f"{env.name}.yml"
    stamp = env / ".installed-environment.yml"
    return install_from_lock(
        f"{name}: conda environment {env} from {environment_file.name}",
        settings,
        environment_file,
        uploaded,
        stamp,
        "conda-env",
        paths.conda,
        env,
        uploaded,
        stamp,
        layout.SYSTEM_CA_BUNDLE,
        settings.pip_index_url or "",
    )


def managed_paths(settings: Settings, platform: Platform) -> Managed:
    """The conda prefix, its environment files and the server's environment, where conda is needed."""
    if not needed(settings, platform):
        return Managed()
    paths = settings.layout
    return Managed(hashed=(paths.conda_prefix, paths.conda_environment_files, paths.conda_server_env))


def apply(settings: Settings, platform: Platform) -> None:
    if not needed(settings, platform):
        return
    root_directory(f"Conda prefix {settings.layout.conda_prefix}", settings.layout.conda_prefix)
    install(settings)
    if platform.conda_server:
        environment(settings, "Server Python and Node.js", settings.layout.conda_server_env, SERVER_PYTHON_FILE)
