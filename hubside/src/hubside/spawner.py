"""The hub's spawner for a hub that is not root: each user's server is a systemd unit on the
hub server, or (with a cluster) a Slurm job on a node, as the profile the user picks says.

Whatever needs root goes through root's helper (files/bin/user-server, the hub's one sudo rule),
with argv only, never a shell: start/stop a unit, submit/cancel/query a job as the user. The
helper checks the user and the variables and takes each job's size from root's own
configuration: the hub names a profile by its key, nothing more. Servers are not the hub's
children: they keep running while it restarts or is upgraded, and it finds them again (a unit
by its state, a job by its id).

What the spawner keeps in the hub's database (get_state) is what it decided itself: the profile's
key and the job's id, nothing from a request. A job reports its port once, through the hub's
API, with its own server's token (hubside.jobs).
"""

from __future__ import annotations

import asyncio
import html
import itertools
import os
import re
from urllib.parse import quote, urlsplit

from jupyterhub.spawner import Spawner
from jupyterhub.utils import wait_for_http_server
from traitlets import Bool, Dict, Float, Integer, List, Unicode, observe

from hubside.admission import ADMISSION
from hubside.ports import free_port

# A unit still stopping counts as running: the helper cannot start its successor yet.
UNIT_RUNNING = {"active", "activating", "reloading", "deactivating"}
JOB_ID = re.compile(r"[1-9][0-9]{0,18}\Z")
# What the helper's `status` prints of a job: RUNNING <node>, PENDING, GONE or UNKNOWN (the
# controller did not answer: the job is taken to be where it was).
JOB_ALIVE = {"RUNNING", "PENDING", "UNKNOWN"}


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


def starting_on_ports() -> list[ServerSpawner]:
    """The servers starting now on ports of this hub (their port is not bound yet)."""
    return [s for s in list(ServerSpawner.starting) if s.port]


class ServerSpawner(Spawner):
    # The instances that are starting a server (start_unit), across users.
    starting: set[ServerSpawner] = set()

    helper = Unicode(help="The root helper that starts and stops servers (run through sudo)").tag(config=True)
    unit_prefix = Unicode(help="Unit names are <prefix><user>.service").tag(config=True)
    create_accounts = Bool(False, help="Have the helper make a missing account before the first start").tag(config=True)
    course_groups = List(
        Unicode(),
        help="The hub's groups of the learning platform's courses' students, which the helper makes the "
        "user's Unix groups at each start (hubside.courses)",
    ).tag(config=True)
    ports = List(
        Integer(), [20000, 30000], minlen=2, maxlen=2, help="The servers' ports [first, last): the proxy's alone"
    ).tag(config=True)
    sockets_dir = Unicode(
        "", help="Where servers listen on Unix sockets (<dir>/<user>/server.sock); empty: on ports"
    ).tag(config=True)
    profiles = List(
        Dict(),
        help="The spawn page's choices, {key, display, where: hub|cluster}; none: every server on the hub",
    ).tag(config=True)
    node_addresses = Dict(help="Slurm node name -> the address the proxy reaches it at").tag(config=True)
    job_hub_url = Unicode(
        None, allow_none=True, help="Where a job's server reaches the hub's API (the hub's own is loopback)"
    ).tag(config=True)
    start_slots = Integer(1, help="Servers starting on the hub server at once; the others wait their turn").tag(
        config=True
    )
    server_start_timeout = Integer(120, help="Seconds a server on the hub server has to start, once its turn came").tag(
        config=True
    )
    job_start_timeout = Integer(300, help="Seconds a job may wait for a node and start").tag(config=True)
    job_poll_interval = Float(1.0, help="Seconds between queries of a starting job").tag(config=True)

    # Decided by the spawner, kept in its state.
    profile_key = Unicode("")
    job_id = Unicode("")
    # Set by the job's report (hubside.jobs) while it starts; never from the state.
    reported_port = Integer(0)

    # The spawn page: the profiles' names only (settings-checked text, escaped all the same).
    def _options_form_default(self):
        if not self.profiles:
            return ""
        choices = "".join(
            f'<option value="{html.escape(p["key"])}"{" selected" if i == 0 else ""}>{html.escape(p["display"])}</option>'
            for i, p in enumerate(self.profiles)
        )
        return f'<label for="profile">Where your server runs:</label><select class="form-control" name="profile" id="profile">{choices}</select>'

    def options_from_form(self, formdata):
        return {"profile": (formdata.get("profile") or [""])[0]}

    def chosen_profile(self) -> dict:
        """The profile the user asked for; the first when none or an unknown one was named."""
        wanted = (self.user_options or {}).get("profile")
        profiles = self.profiles or [{"key": "hub", "where": "hub"}]
        return next((p for p in profiles if p["key"] == wanted), profiles[0])

    @observe("user_options")
    def _job_start_timeout(self, change):
        if self.chosen_profile()["where"] == "cluster":
            self.start_timeout = max(self.start_timeout, self.job_start_timeout)

    @property
    def unit(self) -> str:
        return f"{self.unit_prefix}{self.user.name}.service"

    def helper_command(self, verb: str, *args: str) -> list[str]:
        return ["sudo", "-n", self.helper, verb, self.user.name, *args]

    def hub_variables(self, socket_url: str = "") -> bytes:
        """The hub's variables for the server, as KEY=VALUE lines for the helper's standard input
        (with socket_url, the server's URL is on that Unix socket)."""
        variables = {
            key: value
            for key, value in self.get_env().items()
            if key.startswith("JUPYTERHUB_") or key == "JPY_API_TOKEN"
        }
        if socket_url and "JUPYTERHUB_SERVICE_URL" in variables:
            path = urlsplit(variables["JUPYTERHUB_SERVICE_URL"]).path
            variables["JUPYTERHUB_SERVICE_URL"] = socket_url + path
        return "".join(f"{key}={value}\n" for key, value in variables.items()).encode()

    # State: the profile and the job, as this spawner decided them.
    def get_state(self):
        state = super().get_state()
        if self.profile_key:
            state["profile"] = self.profile_key
        if self.job_id:
            state["job_id"] = self.job_id
        return state

    def load_state(self, state):
        super().load_state(state)
        profile = state.get("profile")
        self.profile_key = profile if isinstance(profile, str) else ""
        # A job started by the deploy's earlier, wrapspawner-based spawner kept its id one level
        # down; what else that state held (its child_conf) is never read.
        job_id = state.get("job_id") or (state.get("child_state") or {}).get("job_id") or ""
        self.job_id = job_id if isinstance(job_id, str) and JOB_ID.match(job_id) else ""

    def clear_state(self):
        super().clear_state()
        self.profile_key = ""
        self.job_id = ""
        self.reported_port = 0

    async def start(self):
        profile = self.chosen_profile()
        self.profile_key = profile["key"] if self.profiles else ""
        if profile["where"] == "cluster":
            return await self.start_job(profile["key"])
        # JupyterHub's start_timeout covers the wait for a turn too: the start itself has its own.
        ADMISSION.slots = self.start_slots
        async with ADMISSION.turn(self.user.name):
            return await asyncio.wait_for(self.start_unit(), self.server_start_timeout)

    async def start_unit(self):
        """The unit started by the helper, and answering: a turn lasts as long as the start's work."""
        ServerSpawner.starting.add(self)
        try:
            return await self._start_unit()
        finally:
            ServerSpawner.starting.discard(self)

    def start_command(self) -> list[str]:
        """The helper's start, with the user's courses of the learning platform where there are any."""
        if not self.course_groups:
            return self.helper_command("start")
        groups = sorted({group.name for group in self.user.groups} & set(self.course_groups))
        return self.helper_command("start", ",".join(groups))

    async def _start_unit(self):
        if self.create_accounts:
            await run(*self.helper_command("create"))
        self.hub_connect_url, self.ip = None, "127.0.0.1"
        path = self.server.base_url if self.server else self.user.url
        if not self.sockets_dir:
            # Not a port handed to a server still starting: two starts at once could pick the same
            # free port, and the hub would take the other's server for this one's.
            self.port = free_port(*self.ports, taken={s.port for s in starting_on_ports()})
            await run(*self.start_command(), stdin=self.hub_variables())
            await wait_for_http_server(f"http://{self.ip}:{self.port}{path}api", timeout=self.http_timeout)
            return self.ip, self.port
        # On a Unix socket in a folder of the user's own (root's helper makes it): nobody else
        # connects to the server, nor takes its place.
        socket = f"{self.sockets_dir}/{self.user.name}/server.sock"
        socket_url = "http+unix://" + quote(socket, safe="")
        await run(*self.start_command(), stdin=self.hub_variables(socket_url))
        # Until the server makes its socket, asking it would only log failures; a server that ends
        # first (its person's own configuration raised, say) fails the start now, not at the timeout.
        for waited in itertools.count(1):
            if os.path.exists(socket):
                break
            if waited % 5 == 0 and await self.poll() is not None:
                raise RuntimeError(f"The server ended before it listened (journalctl -u {self.unit})")
            await asyncio.sleep(0.2)
        await wait_for_http_server(f"{socket_url}{path}api", timeout=self.http_timeout)
        return socket_url

    async def progress(self):
        """The progress page: the place in the queue while waiting for a turn."""
        shown = None
        while place := ADMISSION.place(self.user.name):
            if place != shown:
                ahead = "nobody" if place == 1 else f"{place - 1} {'person' if place == 2 else 'people'}"
                message = f"Many people are starting their servers: {ahead} ahead of you, first come, first served"
                yield {"progress": 10, "message": message}
                shown = place
            await asyncio.sleep(0.5)
        if shown is not None:
            yield {"progress": 50, "message": "Your turn: your server is starting"}

    async def start_job(self, profile_key: str):
        self.reported_port = 0
        # On a node: the hub's API on the cluster's network, and a server listening there.
        self.hub_connect_url, self.ip = self.job_hub_url, "0.0.0.0"
        out = await run(*self.helper_command("submit", profile_key), stdin=self.hub_variables())
        job_id = out.strip().splitlines()[-1].split(";")[0] if out.strip() else ""
        if not JOB_ID.match(job_id):
            raise RuntimeError(f"the job was not submitted: sbatch said {out.strip()!r}")
        self.job_id = job_id
        self.log.info("Slurm job %s submitted for %s (profile %s)", job_id, self.user.name, profile_key)
        while True:
            state, node = await self.job_state()
            if state == "RUNNING":
                break
            if state == "GONE":
                self.job_id = ""
                raise RuntimeError(
                    f"The server's job {job_id} ended before the server started (see ~/.jupyterhub-slurm.log)"
                )
            await asyncio.sleep(self.job_poll_interval)
        # The job's server reports its port through the hub's API (hubside.jobs) as it starts.
        while not self.reported_port:
            await asyncio.sleep(self.job_poll_interval)
        self.port = self.reported_port
        self.log.info("Slurm job %s of %s serves on %s:%s", job_id, self.user.name, node, self.port)
        return self.node_addresses.get(node, node), self.port

    async def job_state(self) -> tuple[str, str]:
        """(RUNNING|PENDING|GONE|UNKNOWN, node) of the job, queried as its user by the helper."""
        try:
            out = await run(*self.helper_command("status", self.job_id))
        except RuntimeError as error:
            self.log.warning("Job %s of %s: %s", self.job_id, self.user.name, error)
            return "UNKNOWN", ""
        state, _, node = out.strip().partition(" ")
        return state, node

    async def poll(self):
        if self.job_id:
            state, _ = await self.job_state()
            if state in JOB_ALIVE:
                return None
            self.job_id = ""
            return 1
        state = await run("systemctl", "show", "--property=ActiveState", self.unit)
        return None if state.strip().partition("=")[2] in UNIT_RUNNING else 0

    async def stop(self, now=False):
        if not self.job_id:
            await run(*self.helper_command("stop"))
            return
        await run(*self.helper_command("cancel", self.job_id))
        if now:
            return
        for _ in range(10):
            state, _ = await self.job_state()
            if state not in {"RUNNING", "UNKNOWN"}:
                return
            await asyncio.sleep(self.job_poll_interval)
        self.log.warning("Job %s of %s is still running after its cancel", self.job_id, self.user.name)
