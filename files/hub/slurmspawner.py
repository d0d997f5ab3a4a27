"""Users' servers as Slurm jobs (jh_cluster), submitted through root's helper.

batchspawner's SlurmSpawner keeps the job's state (squeue, which needs no privilege) and
learns the server's port from the job (its API handler, registered on import). What it
would run through `sudo -u USER` (sbatch, scancel) goes through the hub's one sudo rule
instead: files/bin/user-server builds the job from root's profile of this key (partition,
cores, memory, time), with the server venv in use, and checks the hub's variables as it
does for servers on the hub.
"""

from batchspawner import SlurmSpawner
from traitlets import Dict, Unicode
from unitspawner import hub_variables, run


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
