"""A JupyterHub spawner for a hub that is not root: each user's server is a systemd unit.

The hub asks root's helper (files/bin/user-server, through its one sudo rule) to start
or stop a server; the helper checks the user and the variables, and starts the server
as a transient unit in the users' slice, with the user's limits. The server is not the
hub's child: it keeps running while the hub restarts or is upgraded, and the hub finds
it again (poll reads the unit's state, which needs no privilege).
"""

import asyncio

from jupyterhub.spawner import Spawner
from jupyterhub.utils import random_port
from traitlets import Bool, Unicode

# A unit still stopping counts as running: the helper cannot start its successor yet.
RUNNING = {"active", "activating", "reloading", "deactivating"}


async def run(*argv: str, stdin: bytes = b"") -> str:
    """A command's standard output; RuntimeError with its standard error when it fails."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin)
    if process.returncode:
        raise RuntimeError(f"{' '.join(argv)}: exit {process.returncode}: {err.decode().strip()}")
    return out.decode()


def hub_variables(spawner: Spawner) -> bytes:
    """The hub's variables for a server, as KEY=VALUE lines for the helper's standard input."""
    variables = {
        key: value
        for key, value in spawner.get_env().items()
        if key.startswith("JUPYTERHUB_") or key == "JPY_API_TOKEN"
    }
    return "".join(f"{key}={value}\n" for key, value in variables.items()).encode()


class UnitSpawner(Spawner):
    helper = Unicode(help="The root helper that starts and stops servers (run through sudo)").tag(config=True)
    unit_prefix = Unicode(help="Unit names are <prefix><user>.service").tag(config=True)
    create_accounts = Bool(False, help="Have the helper make a missing account before the first start").tag(config=True)

    @property
    def unit(self) -> str:
        return f"{self.unit_prefix}{self.user.name}.service"

    async def start(self):
        if self.create_accounts:
            await run("sudo", "-n", self.helper, "create", self.user.name)
        self.port = random_port()
        await run("sudo", "-n", self.helper, "start", self.user.name, stdin=hub_variables(self))
        return self.ip or "127.0.0.1", self.port

    async def poll(self):
        state = await run("systemctl", "show", "--property=ActiveState", self.unit)
        return None if state.strip().partition("=")[2] in RUNNING else 0

    async def stop(self, now=False):
        await run("sudo", "-n", self.helper, "stop", self.user.name)
