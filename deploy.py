"""Turn a fresh Ubuntu or Debian server into a production JupyterHub.

    pyinfra inventory.py deploy.py --dry   # preview
    pyinfra inventory.py deploy.py         # apply

The order follows the server's layers: system, conda (where needed), server
environment, kernels,
hub, web front, firewall, then owners and modes. Settings and targets are
checked first, for every host: bad input stops the run before any host is changed.
"""

import sys

from pyinfra import host

from tasks import conda, firewall, hub, kernels, permissions, server_env, system, web
from tasks.platform import describe, target_platform
from tasks.preflight import check_accounts, check_limits
from tasks.settings import current_settings

settings = current_settings()
platform = target_platform(settings)
check_accounts(settings)
check_limits(settings)
print(f"--> {host.name}: {describe(platform)}", file=sys.stderr, flush=True)

system.apply(settings, platform)
conda.apply(settings, platform)
server_changed = server_env.apply(settings, platform)
kernels.apply(settings, platform)
hub.apply(settings, platform, server_changed)
web.apply(settings, platform)
firewall.apply(settings)
permissions.apply(settings)
