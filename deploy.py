"""Turn a fresh Ubuntu or Debian server into a production JupyterHub.

    pyinfra inventory.py deploy.py --dry   # preview
    pyinfra inventory.py deploy.py         # apply

The order follows the server's layers: system, conda (where needed), the venv kernels' installs
started (they run beside the rest and are waited for at the end), the server environment
(built beside the one in use), then on the hub server its logins (an identity provider's files),
database (PostgreSQL, with jh_db_url) and configuration, which the switch to the new server
environment reads; the other kernels and every kernel's spec, the Slurm cluster (jh_cluster: the hub and the inventory's `nodes`),
then on the hub server the hub's services, people (groups, shared folders, off-boarding), courses,
web front, nightly backup, monitoring, owners and modes; then the firewall, and the kernels' installs. Each task module names the host directories it manages
(`managed_paths`), read first in one command; settings and targets are checked next, for every
host, and a cluster is planned once for all its hosts: bad input stops the run before any host is
changed. This file only orders the work.
"""

import sys

from pyinfra import host

from tasks import (
    cluster,
    conda,
    confinement,
    courses,
    database,
    firewall,
    hub,
    kernels,
    logins,
    monitoring,
    nightly_backup,
    node_monitoring,
    people,
    permissions,
    server_env,
    system,
    web,
)
from tasks.cluster_plan import plan_cluster
from tasks.platform import describe, target_platform
from tasks.preflight import check_accounts, check_limits, check_paths
from tasks.settings import current_settings
from tasks.snapshot import prefetch_managed

# The modules whose host directories are read up front, in one command (tasks.snapshot).
MANAGING = (
    system,
    conda,
    server_env,
    kernels,
    logins,
    hub,
    people,
    courses,
    web,
    confinement,
    nightly_backup,
    monitoring,
)

settings = current_settings()
platform = target_platform(settings)
prefetch_managed(task.managed_paths(settings, platform) for task in MANAGING)
check_accounts(settings)
check_limits(settings)
check_paths(settings)
nightly_backup.check(settings, platform)
monitoring.check(settings, platform)
web.check(settings, platform)
# The whole cluster's plan, made once for every host (tasks/cluster_plan.py); empty without one.
cluster_plan = plan_cluster(settings)
print(f"--> {host.name}: {describe(platform)}", file=sys.stderr, flush=True)

system.apply(settings, platform, cluster_plan)
conda.apply(settings, platform)
kernels.start(settings, platform)
env, package_changed = server_env.prepare(settings, platform)
# The hub, its web front and its people are the hub server's alone; a cluster's nodes get the
# same accounts, server venv and kernels as the hub, and slurmd.
hub_server = cluster.role() != cluster.NODES
config_changed = False
if hub_server:
    logins.apply(settings, env)
    database.apply(settings)
    config_changed = hub.configure(settings, platform, cluster_plan.node_addresses, pending=package_changed)
server_changed = server_env.switch(settings, platform, env)
kernels.apply(settings, platform)
cluster.apply(settings, cluster_plan)
confinement.apply(settings, platform, hub_server)
if hub_server:
    hub.apply(settings, platform, restart=server_changed or config_changed, marked=config_changed)
    people.apply(settings)
    courses.apply(settings)
    web.apply(settings, platform)
    nightly_backup.apply(settings)
    monitoring.apply(settings, cluster_plan)
    permissions.apply(settings)
else:
    node_monitoring.apply(settings, cluster_plan)
firewall.apply(settings, cluster_plan.peers.get(host.name, ()))
kernels.finish(settings, platform)
