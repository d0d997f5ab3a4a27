"""The privilege boundary, tested as an attacker who owns the hub account would try it.

Canaries are root-owned files and a directory outside the hub's reach. Before a step of
the deploy runs, links to them are planted (as the hub user) under the names the step
touches in the hub's state directory; after it, the canaries must be unchanged (content,
owner, mode) and no path outside the hub's own directories may belong to the hub user.
"""

from __future__ import annotations

from tasks.settings import Settings

STATE = str(Settings().layout.state_dir)
CANARY_FILE = "/etc/jhd-canary"
CANARY_DIR = "/etc/jhd-canary.d"
# Where the hub user may own files: its state, and systemd's private /tmp of its unit.
HUB_OWNED = (STATE, "/var/tmp", "/tmp")


class Canaries:
    def __init__(self, host, hub_user: str = "jupyter"):
        self.host, self.hub_user = host, hub_user
        host.sh(
            f"[ -e {CANARY_FILE} ] || (umask 077 && echo canary > {CANARY_FILE});"
            f" [ -e {CANARY_DIR} ] || (install -d -m 700 {CANARY_DIR} && echo canary > {CANARY_DIR}/inside)"
        )
        self.before = self.state()

    def plant(self, *names: str, directory: bool = False) -> None:
        """Links named names in the state directory, made by the hub user, to the canaries."""
        target = CANARY_DIR if directory else CANARY_FILE
        for name in names:
            self.host.sh(f"runuser -u {self.hub_user} -- sh -c 'rm -rf {STATE}/{name}; ln -s {target} {STATE}/{name}'")

    def remove(self, *names: str) -> None:
        for name in names:
            self.host.sh(f"runuser -u {self.hub_user} -- rm -f {STATE}/{name}")

    def state(self) -> str:
        prune = " -o ".join(f"-path {path}" for path in HUB_OWNED)
        return self.host.sh(
            f"stat -c '%n %U %G %a %s' {CANARY_FILE} {CANARY_DIR} {CANARY_DIR}/*;"
            f" sha256sum {CANARY_FILE} {CANARY_DIR}/*;"
            f" find /etc /opt /usr /var /root /srv -xdev \\( {prune} \\) -prune -o -user {self.hub_user} -print 2>/dev/null"
            " | sort || true"
        )

    def assert_unchanged(self) -> None:
        assert self.state() == self.before
