"""Every knob of the deploy: one typed model, its defaults and its checks.

Settings are pyinfra host/group data whose names start with ``jh_`` (``jh_users``,
``jh_idle_timeout``, ...), so that a misspelt setting is an error rather than a
silently ignored value. ``deploy.py`` validates the settings of every host before
any operation is planned: bad input stops the run, naming the setting and what it
allows, and no host is changed.

No setting can inject into a shell line, a unit file, the sudoers rule, the nginx site
or the hub's Python config: every string is checked against a whitelist that matches the
whole value, and what is checked is what the deploy renders. Names, paths and URLs are
checked here, with the rule in the error message; what depends on a host (its existing
accounts) is checked from facts before that host changes (tasks/preflight.py).

The modules, in the order they build on each other:

- constants: where the deploy's files are, patterns, reserved names and folders, pins;
- types: the types of values (``AccountName``, ``HostPath``, ``MemorySize``, ...) and their
  checks; network: those of names on the network and URLs (``DomainName``, ``Url``, ...);
  pem: the checks of certificate and key files;
- parts: the structured values (``HubUser``, ``Kernel``, ``SpawnProfile``, ...);
- model: ``Settings``, every setting with its default and description, and ``from_data``;
  derived: what the deploy derives from them (``settings.layout``, ...);
- checks: the rules between settings, run once each is valid on its own;
- loading: every host's settings in a pyinfra run (``current_settings``, ``host_settings``);
- reference: writes docs/settings.md from the model (``make docs``).

The rest of the project imports the names below from ``tasks.settings``.
"""

from tasks.settings.constants import (
    DOMAIN,
    FILES,
    KERNEL_SETS,
    MINIFORGE_URL,
    PREFIX,
    PRIVILEGED_GROUPS,
    REPO,
    SYSTEM_NAMES,
)
from tasks.settings.loading import current_settings, host_settings
from tasks.settings.model import Settings, SettingsError
from tasks.settings.parts import HubUser, Kernel, SharedDir
from tasks.settings.types import memory_bytes

__all__ = [
    "DOMAIN",
    "FILES",
    "KERNEL_SETS",
    "MINIFORGE_URL",
    "PREFIX",
    "PRIVILEGED_GROUPS",
    "REPO",
    "SYSTEM_NAMES",
    "HubUser",
    "Kernel",
    "Settings",
    "SettingsError",
    "SharedDir",
    "current_settings",
    "host_settings",
    "memory_bytes",
]
