"""Turn a fresh Ubuntu or Debian server into a production JupyterHub.

    pyinfra inventory.py deploy.py --dry   # preview
    pyinfra inventory.py deploy.py         # apply

The order follows the server's layers: system, conda (where needed), server
environment, kernels, the Slurm cluster (jh_cluster: the hub and the inventory's `nodes`),
logins (an identity provider's files), the database (PostgreSQL, with jh_db_url), hub, people
(groups, shared folders, off-boarding), web front, owners and modes (these seven on the hub
server only), then the firewall. Settings and targets are checked first, for every host, and
a cluster is planned once for all its hosts: bad input stops the run before any host is changed.
"""

import sys

from pyinfra import host

from tasks import (
    cluster,
    conda,
    database,
    firewall,
    hub,
    kernels,
    layout,
    logins,
    people,
    permissions,
    server_env,
    system,
    web,
)
from tasks.cluster_plan import plan_cluster
from tasks.platform import Platform, describe, target_platform
from tasks.preflight import ancestors, check_accounts, check_limits, check_paths
from tasks.settings import Settings, current_settings
from tasks.snapshot import prefetch


def read_managed_directories(settings: Settings, platform: Platform) -> None:
    """Every directory the tasks below look into, read in one command (tasks.snapshot).

    Only a matter of speed: a directory missing here is read when a task first needs it.
    """
    paths, env = settings.layout, server_env.env_dir(settings, platform)
    kernels_envs = [paths.kernels_dir / k.name for k in settings.kernels]
    kernel_specs = [paths.jupyter_data_dir / "kernels" / k.name for k in settings.kernels]
    root_owned = [
        paths.install_root.parent,
        paths.install_root,
        paths.libexec,
        paths.install_root / "share",
        paths.jupyter_data_dir / "kernels",
        *kernel_specs,
        paths.server_envs,
        env,
        env / "share" / "jupyter" / "lab" / "settings",
        env / paths.proxy_dir.relative_to(paths.venv),
        env / paths.proxy_dir.relative_to(paths.venv) / "node_modules",
        paths.kernels_dir,
        *kernels_envs,
        paths.uv_tool.parent,
        paths.uv_tool,
        layout.UNIT_DIR,
        layout.SUDOERS_RULE.parent,
        layout.PAM_SERVICE.parent,
        layout.CA_DIR,
        layout.NGINX_SITE.parent,
        layout.NGINX_SITE_ENABLED.parent,
        layout.ACME_WEBROOT.parent,
        layout.RENEW_HOOK.parent,
    ]
    # Not root's alone (or private keys): listed, no file is read.
    listed = [paths.state_dir, "/home"]
    if settings.domain:
        certificate, key = web.certificate_paths(settings)
        root_owned += [layout.TLS_DIR.parent, layout.TLS_DIR, certificate.parent]
        listed.append(key.parent)
    # Shared folders, the folders above them, and the homes that get links to them.
    for shared in settings.shared_dirs:
        listed += [*ancestors(shared.path), shared.path.parent]
        listed += [people.home_of(settings, name) for name in people.readers(settings, shared)]
    if settings.oauth:
        root_owned.append(paths.auth_dir)
    if conda.needed(settings, platform):
        root_owned += [paths.conda_prefix, paths.conda_environment_files, paths.conda_server_env]
    prefetch(hashed=root_owned, listed=listed, deep=[paths.nltk_data])


settings = current_settings()
platform = target_platform(settings)
read_managed_directories(settings, platform)
check_accounts(settings)
check_limits(settings)
check_paths(settings)
# The whole cluster's plan, made once for every host (tasks/cluster_plan.py); empty without one.
cluster_plan = plan_cluster(settings)
print(f"--> {host.name}: {describe(platform)}", file=sys.stderr, flush=True)

system.apply(settings, platform, cluster_plan)
conda.apply(settings, platform)
server_changed = server_env.apply(settings, platform)
kernels.apply(settings, platform)
# A cluster's nodes get the same accounts, server venv and kernels as the hub, and slurmd;
# the hub, its web front and its people are the hub server's alone.
cluster.apply(settings, cluster_plan)
if cluster.role() != cluster.NODES:
    logins.apply(settings)
    database.apply(settings)
    hub.apply(settings, platform, server_changed, cluster_plan.node_addresses)
    people.apply(settings)
    web.apply(settings, platform)
    permissions.apply(settings)
firewall.apply(settings, cluster_plan.peers.get(host.name, ()))
