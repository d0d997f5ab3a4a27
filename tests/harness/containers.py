"""Target containers: systemd as PID 1 and sshd, reached by pyinfra over SSH as root."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import docker

from tests.harness.images import image_tag

LABEL = "jupyterhub-deploy.target"


@dataclass
class Target:
    """A running target container, as an inventory needs it."""

    name: str
    suite: str
    container_id: str
    address: str
    ssh_key: str
    known_hosts: str

    def inventory_data(self) -> dict:
        return {
            "ssh_hostname": self.address,
            "ssh_user": "root",
            "ssh_key": self.ssh_key,
            "ssh_known_hosts_file": self.known_hosts,
            "ssh_strict_host_key_checking": "accept-new",
        }


_KEYGEN = threading.Lock()


def ssh_keypair(directory: Path) -> Path:
    key = directory / "id_ed25519"
    with _KEYGEN:
        if not key.exists():
            directory.mkdir(parents=True, exist_ok=True)
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def start_target(
    client: docker.DockerClient,
    suite: str,
    name: str,
    workdir: Path,
    ports: dict | None = None,
    volumes: dict | None = None,
) -> Target:
    """Boot a container with systemd as PID 1 and wait until sshd answers (volumes: host path -> path)."""
    key = ssh_keypair(workdir)
    public_key = key.with_suffix(".pub").read_text().strip()
    enough_inotify_instances()
    container = boot(client, suite, name, ports, volumes)
    address = wait_for_ssh(container, public_key)
    # All targets from one image share host keys: a throwaway known_hosts per run.
    known_hosts = workdir / f"known_hosts-{name}"
    known_hosts.write_text("")
    return Target(name, suite, container.id, address, str(key), str(known_hosts))


INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
# Each target's systemd, journald, udevd, logind... hold inotify instances, counted against root
# on this host (no user namespaces): the kernel's default of 128 runs out at about 25 targets
# (the e2e sessions together), and a target's systemd then fails to start, saying nothing.
WANTED_INOTIFY_INSTANCES = 2048


def enough_inotify_instances() -> None:
    if int(INOTIFY_INSTANCES.read_text()) >= WANTED_INOTIFY_INSTANCES:
        return
    try:
        INOTIFY_INSTANCES.write_text(str(WANTED_INOTIFY_INSTANCES))
    except OSError as error:
        print(
            f"fs.inotify.max_user_instances stays below {WANTED_INOTIFY_INSTANCES} ({error}):"
            " targets may fail to boot past about 25",
            file=sys.stderr,
        )


def boot(client: docker.DockerClient, suite: str, name: str, ports: dict | None, volumes: dict | None):
    remove_container(client, name)
    return client.containers.run(
        image_tag(suite),
        ["/sbin/init"],
        name=name,
        hostname=name,
        detach=True,
        labels={LABEL: suite},
        cap_add=["ALL"],
        cap_drop=["SYS_RESOURCE"],
        security_opt=["seccomp=unconfined"],
        environment={"container": "docker"},
        stop_signal="SIGRTMIN+3",
        tmpfs={"/run": "", "/run/lock": ""},
        volumes={
            "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "ro"},
            **{source: {"bind": target, "mode": "rw"} for source, target in (volumes or {}).items()},
        },
        ports=ports or {},
    )


class ContainerEnded(RuntimeError):
    """The container stopped before sshd answered."""


def ended(container) -> ContainerEnded | None:
    container.reload()
    if container.status in ("created", "running"):
        return None
    state = container.attrs["State"]
    log = container.logs(tail=20).decode(errors="replace").strip()
    return ContainerEnded(
        f"status {container.status}, exit code {state.get('ExitCode')}, OOM-killed {state.get('OOMKilled')},"
        f" error {state.get('Error')!r}; its last output: {log!r}"
    )


def wait_for_ssh(container, public_key: str) -> str:
    """Install the test's SSH key and wait until sshd answers; the container's address. A container
    that ends, or whose sshd never answers, fails saying what Docker and systemd report."""
    setup = (
        f"install -d -m 700 /root/.ssh && echo '{public_key}' > /root/.ssh/authorized_keys"
        " && chmod 600 /root/.ssh/authorized_keys"
    )
    try:
        exit_code, output = container.exec_run(["sh", "-c", setup])
    except docker.errors.APIError:
        exit_code, output = None, b""
    problem = ended(container)
    if problem:
        raise problem
    if exit_code != 0:
        raise RuntimeError(f"cannot install SSH key in {container.name}: {output.decode()}")
    address = container.attrs["NetworkSettings"]["IPAddress"]
    deadline = time.monotonic() + 120
    while not answers(address, 22):
        problem = ended(container)
        if problem:
            raise problem
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{address}:22 did not answer within 120 s; in {container.name}:\n{boot_report(container)}"
            )
        time.sleep(0.5)
    return address


def boot_report(container) -> str:
    """What systemd says about the boot and sshd, for a target whose sshd never answered."""
    command = "systemctl is-system-running; systemctl list-jobs --no-pager; systemctl status --no-pager ssh"
    _, output = container.exec_run(["sh", "-c", command])
    return output.decode(errors="replace")[-4000:]


def answers(address: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=2) as sock:
        return port != 22 or sock.recv(4).startswith(b"SSH")
    return False


def remove_container(client: docker.DockerClient, name: str) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(name).remove(force=True)


def controller_ca_certificates() -> list[str]:
    """This machine's own extra CAs, for targets that must trust what it trusts."""
    return sorted(str(p) for p in Path("/usr/local/share/ca-certificates").rglob("*.crt"))


def password_hash(password: str) -> str:
    return subprocess.run(
        ["openssl", "passwd", "-6", password], check=True, capture_output=True, text=True
    ).stdout.strip()
