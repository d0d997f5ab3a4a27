"""Disposable target hosts: Ubuntu/Debian containers with systemd as PID 1 and sshd.

- images.py: root filesystems built with debootstrap, cached on disk keyed by the
  recipe that built them, and imported into Docker;
- engine.py: the Docker engine that answers, or Debian's dockerd started on a
  private socket and stopped again (with the host's iptables restored);
- containers.py: booting a target and reaching it over SSH;
- demo.py: the local demo (`make demo`) and the command line, `python -m tests.harness`.

Used by the end-to-end tests (tests/e2e/conftest.py), which take the names below from here.
"""

from tests.harness.containers import (
    LABEL,
    Target,
    controller_ca_certificates,
    password_hash,
    remove_container,
    ssh_keypair,
    start_target,
)
from tests.harness.demo import DEMO_DIR, DEMO_INVENTORY, DEMO_LOGIN, DEMO_NAME, demo_down, demo_host, demo_up
from tests.harness.engine import IPTABLES_BEFORE, PRIVATE_PIDFILE, PRIVATE_SOCKET, Engine, restore_host_network
from tests.harness.images import (
    CACHE,
    MASKED_UNITS,
    PACKAGES,
    RECIPE_VERSION,
    REPO,
    SUITES,
    build_rootfs_tarball,
    ensure_images,
    image_tag,
    log,
    recipe_hash,
)

__all__ = [
    "CACHE",
    "DEMO_DIR",
    "DEMO_INVENTORY",
    "DEMO_LOGIN",
    "DEMO_NAME",
    "IPTABLES_BEFORE",
    "LABEL",
    "MASKED_UNITS",
    "PACKAGES",
    "PRIVATE_PIDFILE",
    "PRIVATE_SOCKET",
    "RECIPE_VERSION",
    "REPO",
    "SUITES",
    "Engine",
    "Target",
    "build_rootfs_tarball",
    "controller_ca_certificates",
    "demo_down",
    "demo_host",
    "demo_up",
    "ensure_images",
    "image_tag",
    "log",
    "password_hash",
    "recipe_hash",
    "remove_container",
    "restore_host_network",
    "ssh_keypair",
    "start_target",
]
