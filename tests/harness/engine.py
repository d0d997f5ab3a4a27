"""The Docker engine the targets run on.

The engine that answers (DOCKER_HOST, the system socket, or our private socket from
an earlier command), or else Debian's dockerd started here on a private socket.
That one is stopped again when the caller is done, and the host's iptables are
put back as they were before it started.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import docker

from tests.harness.images import CACHE, log

PRIVATE_SOCKET = "/run/jhd-dockerd.sock"
PRIVATE_PIDFILE = Path("/run/jhd-dockerd.pid")
# The host's iptables before our dockerd changed them, for whoever stops it (make demo-down).
IPTABLES_BEFORE = CACHE / "iptables-before-dockerd.txt"


class Engine:
    """A Docker engine: the one that answers, or Debian's dockerd started here."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.client = self._existing() or self._start()

    @staticmethod
    def _existing() -> docker.DockerClient | None:
        candidates = [os.environ.get("DOCKER_HOST"), "unix:///var/run/docker.sock", f"unix://{PRIVATE_SOCKET}"]
        for base_url in filter(None, candidates):
            try:
                client = docker.DockerClient(base_url=base_url, timeout=300)
                client.ping()
                os.environ["DOCKER_HOST"] = base_url
                return client
            except Exception:
                continue
        return None

    def _start(self) -> docker.DockerClient:
        if not shutil.which("dockerd"):
            raise RuntimeError("No Docker engine answers and dockerd is not installed (apt-get install docker.io)")
        CACHE.mkdir(parents=True, exist_ok=True)
        IPTABLES_BEFORE.write_text(subprocess.run(["iptables-save"], capture_output=True, text=True).stdout)
        # dockerd keeps writing to it after we return: not closed here on purpose.
        log_file = open(CACHE / "dockerd.log", "a")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                "dockerd",
                "-H",
                f"unix://{PRIVATE_SOCKET}",
                "--data-root",
                "/var/lib/jhd-docker",
                "--exec-root",
                "/run/jhd-docker",
                "--pidfile",
                str(PRIVATE_PIDFILE),
                "--storage-driver",
                "overlay2",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        os.environ["DOCKER_HOST"] = f"unix://{PRIVATE_SOCKET}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                client = docker.DockerClient(base_url=os.environ["DOCKER_HOST"], timeout=300)
                client.ping()
                log("started dockerd on " + PRIVATE_SOCKET)
                return client
            except Exception:
                if self.process.poll() is not None:
                    break
                time.sleep(0.5)
        raise RuntimeError(f"dockerd did not start; see {CACHE / 'dockerd.log'}")

    def stop(self) -> None:
        """Stop the engine if we started it and no other session's containers run on it, and leave the
        host's iptables as found. (Another pytest session run beside this one, which found it running,
        keeps it: `python -m tests.harness engine-stop` stops it once idle.)"""
        if self.process is None:
            return
        if self.client.containers.list(all=True):
            log("left dockerd running: other sessions' containers are on it")
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.process = None
        restore_host_network()

    def stop_idle_private_engine(self) -> None:
        """Stop our private dockerd that an earlier command started (the demo's), once no container is left."""
        if os.environ.get("DOCKER_HOST") != f"unix://{PRIVATE_SOCKET}" or self.client.containers.list(all=True):
            return
        pid = int(PRIVATE_PIDFILE.read_text())
        os.kill(pid, 15)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        restore_host_network()
        log("stopped dockerd on " + PRIVATE_SOCKET)


def restore_host_network() -> None:
    """Put back the iptables found before our dockerd started, and drop its bridge."""
    restore = IPTABLES_BEFORE.read_text() if IPTABLES_BEFORE.exists() else ""
    builtin_chains = {
        "filter": ("INPUT", "FORWARD", "OUTPUT"),
        "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    }
    for table, chains in builtin_chains.items():
        if f"*{table}" not in restore:
            restore += f"*{table}\n" + "".join(f":{c} ACCEPT [0:0]\n" for c in chains) + "COMMIT\n"
    subprocess.run(["iptables-restore"], input=restore, text=True, check=True)
    IPTABLES_BEFORE.unlink(missing_ok=True)
    subprocess.run(["ip", "link", "delete", "docker0"], stderr=subprocess.DEVNULL, check=False)
