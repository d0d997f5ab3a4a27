"""What the cluster's plan reads of its hosts (tasks/cluster_plan.py): each host's layout and MUNGE
key, and what the hub's Slurm has now (nodes, partitions, jobs, associations)."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase


class ClusterHost(FactBase):
    """What Slurm and the cluster checks need of a host: its short name, architecture, CPU
    layout (lscpu, as slurmd counts it), memory, the sha256 of its MUNGE key (or None), and
    whether /home is a file system of its own."""

    def command(self) -> str:
        return (
            "hostname -s; uname -m; grep '^MemTotal:' /proc/meminfo; lscpu -p=SOCKET,CORE | grep -v '^#'; "
            "echo @munge; sha256sum /etc/munge/munge.key 2>/dev/null || true; "
            "echo @home; findmnt -n -o TARGET --target /home 2>/dev/null || true"
        )

    def process(self, output):
        lines = list(output)
        home = lines.index("@home") if "@home" in lines else len(lines)
        lines, home_mount = lines[:home], lines[home + 1 : home + 2]
        munge = lines.index("@munge") if "@munge" in lines else len(lines)
        topology = [tuple(line.split(",")) for line in lines[3:munge] if line.count(",") == 1]
        sockets = len({socket for socket, _ in topology}) or 1
        cores = len(set(topology)) or 1
        digest = lines[munge + 1].split()[0] if len(lines) > munge + 1 and lines[munge + 1].strip() else None
        return {
            "name": lines[0].strip() if lines else "",
            "arch": lines[1].strip() if len(lines) > 1 else "",
            "memory_mb": int(lines[2].split()[1]) // 1024 if len(lines) > 2 and lines[2].split()[1:2] else 0,
            "cpus": len(topology),
            "sockets": sockets,
            "cores_per_socket": max(cores // sockets, 1),
            "threads_per_core": max(len(topology) // cores, 1),
            "munge_key": digest,
            # /home a file system of its own (an NFS export of it then needs no subtree check).
            "home_mounted": [line.strip() for line in home_mount] == ["/home"],
        }


class MungeKey(FactBase):
    """The hub's MUNGE key, base64 (read only when a node's differs: it crosses the SSH channel
    to the controller's memory and on to the node, never a file)."""

    def command(self) -> str:
        return "base64 -w0 /etc/munge/munge.key; echo"

    def process(self, output):
        return "".join(output).strip()


class SlurmState(FactBase):
    """What the hub's Slurm has now: slurm.conf's nodes (name -> its NodeName line) and partitions
    (name -> node names), the nodes that run jobs and those drained (what a node leaving the
    inventory needs), and the accounting's associations of the hub's account (None where
    slurmdbd does not answer): user -> jobs, queued, cpus, memory_mb (None: no limit)."""

    def command(self, account: str) -> str:
        return (
            "grep -E '^(NodeName|PartitionName)=' /etc/slurm/slurm.conf 2>/dev/null; echo @busy; "
            "squeue -h -o %N 2>/dev/null; echo @drained; sinfo -h -N -t drain,drained,draining -o %N 2>/dev/null; "
            "echo @associations; sacctmgr -nP show assoc format=account,user,maxjobs,maxsubmit,grptres "
            f"where account={shlex.quote(account)} 2>/dev/null && echo @answered; true"
        )

    def process(self, output):
        result = {"nodes": {}, "partitions": {}, "busy": set(), "drained": set(), "associations": None}
        section, associations = "conf", {}
        for line in output:
            line = line.strip()
            if line in ("@busy", "@drained", "@associations"):
                section = line[1:]
            elif line == "@answered":
                result["associations"] = associations
            elif section == "conf" and line.startswith("NodeName="):
                result["nodes"][line.split()[0].partition("=")[2]] = line
            elif section == "conf" and line.startswith("PartitionName="):
                fields = dict(field.partition("=")[::2] for field in line.split())
                result["partitions"][fields["PartitionName"]] = [n for n in fields.get("Nodes", "").split(",") if n]
            elif section == "associations" and line.count("|") == 4:
                _, user, jobs, queued, tres = line.split("|")
                if user:
                    associations[user] = association_limits(jobs, queued, tres)
            elif line and section in ("busy", "drained"):
                result[section].add(line)
        return result


SLURM_MEMORY_UNITS = {"M": 1, "G": 1024, "T": 1024**2}


def association_limits(jobs: str, queued: str, tres: str) -> dict[str, int | None]:
    """An association's limits as sacctmgr prints them (GrpTRES such as cpu=8,mem=32G)."""
    values = dict(item.partition("=")[::2] for item in tres.split(",") if "=" in item)
    memory = values.get("mem")
    memory_mb = None
    if memory:
        number, unit = (memory[:-1], memory[-1]) if memory[-1] in SLURM_MEMORY_UNITS else (memory, "M")
        memory_mb = int(float(number) * SLURM_MEMORY_UNITS[unit])
    return {
        "jobs": int(jobs) if jobs else None,
        "queued": int(queued) if queued else None,
        "cpus": int(values["cpu"]) if values.get("cpu") else None,
        "memory_mb": memory_mb,
    }
