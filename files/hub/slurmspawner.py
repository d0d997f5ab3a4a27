"""Users' servers as Slurm jobs (jh_cluster), submitted through root's helper.

batchspawner's SlurmSpawner keeps the job's state (squeue, which needs no privilege) and
learns the server's port from the job (its API handler, registered on import). What it
would run through `sudo -u USER` (sbatch, scancel) goes through the hub's one sudo rule
instead: files/bin/user-server builds the job from root's profile of this key (partition,
cores, memory, time), with the server venv in use, and checks the hub's variables as it
does for servers on the hub.

ClusterProfilesSpawner is wrapspawner's ProfilesSpawner (the spawn page's profiles, each a
UnitSpawner on the hub or a HelperSlurmSpawner of a size) that knows a running server by
its kind when its profile was removed or changed since it started.
"""

from batchspawner import SlurmSpawner
from traitlets import Dict, Unicode
from unitspawner import UnitSpawner, hub_variables, run
from wrapspawner import ProfilesSpawner


class HelperSlurmSpawner(SlurmSpawner):
    helper = Unicode(help="The root helper that submits and cancels jobs (run through sudo)").tag(config=True)
    profile = Unicode(help="The key of the job's size in the helper's profiles").tag(config=True)
    node_addresses = Dict(help="Slurm node name -> the address the proxy reaches it at").tag(config=True)
    exec_prefix = Unicode("")

    async def submit_batch_script(self):
        out = await run("sudo", "-n", self.helper, "submit", self.user.name, self.profile, stdin=hub_variables(self))
        self.job_id = self.parse_job_id(out.strip())
        self.log.info("Slurm job %s submitted for %s (profile %s)", self.job_id, self.user.name, self.profile)
        return self.job_id

    async def cancel_batch_job(self):
        if self.job_id:
            await run("sudo", "-n", self.helper, "cancel", self.user.name, self.job_id)

    def state_gethost(self):
        node = super().state_gethost()
        return self.node_addresses.get(node, node)


class ClusterProfilesSpawner(ProfilesSpawner):
    def load_child_class(self, state):
        super().load_child_class(state)
        if not state.get("profile"):
            return  # no server runs: its next start picks the class of the profile asked for
        # A server that runs is a job (batchspawner keeps its id) or a unit (no state). Loaded
        # as what its profile is now (or, removed, the first profile), a job would be taken for
        # a stopped unit and left running unseen until its time limit; a unit likewise.
        kind = HelperSlurmSpawner if "job_id" in state.get("child_state", {}) else UnitSpawner
        if not issubclass(self.child_class, kind):
            self.log.warning(
                "%s's server is a %s: its profile %r is no longer one",
                self.user.name,
                kind.__name__,
                self.child_profile,
            )
            self.child_class, self.child_config = kind, {}
