"""Disposable target hosts: Ubuntu/Debian containers with systemd as PID 1 and sshd.

Root filesystems are built with debootstrap and imported into Docker; the tarballs
are cached on disk, keyed by the recipe that built them. When no Docker engine
answers, Debian's dockerd is started on a private socket and stopped again (with
the host's iptables restored) when the caller is done.

Used by the test suite (tests/conftest.py) and by the README's demo command:

    python -m tests.targets demo up|down
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import docker

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("JHD_CACHE", Path.home() / ".cache" / "jupyterhub-deploy"))
LABEL = "jupyterhub-deploy.target"
PRIVATE_SOCKET = "/run/jhd-dockerd.sock"
PRIVATE_PIDFILE = Path("/run/jhd-dockerd.pid")
# The host's iptables before our dockerd changed them, for whoever stops it (make demo-down).
IPTABLES_BEFORE = CACHE / "iptables-before-dockerd.txt"

SUITES = {
    # suite: (distribution, debootstrap script to use)
    "xenial": ("ubuntu", "xenial"),
    "jammy": ("ubuntu", "jammy"),
    # Debian 12's debootstrap has no noble script; gutsy's is the generic Ubuntu one.
    "noble": ("ubuntu", "gutsy"),
    "bullseye": ("debian", "sid"),
    "bookworm": ("debian", "sid"),
    "trixie": ("debian", "sid"),
}
PACKAGES = (
    "systemd,systemd-sysv,dbus,openssh-server,sudo,python3,ca-certificates,"
    "iproute2,curl,less,gnupg,locales"
)
MASKED_UNITS = ("systemd-udevd.service", "systemd-udev-trigger.service", "getty@tty1.service")
# Bump when the image recipe changes in a way the hash below cannot see.
RECIPE_VERSION = 1


def log(message: str) -> None:
    print(f"[targets] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------- mirrors


def default_mirror(suite: str) -> str:
    """The mirror debootstrap itself would use, read from its own scripts."""
    distribution, script = SUITES[suite]
    if distribution == "debian":
        text = Path("/usr/sbin/debootstrap").read_text()
        return re.search(r'^DEF_MIRROR="([^"]+)"', text, re.M).group(1)
    probe = (
        'default_mirror() { echo "$1"; exit 0; }; '
        f". /usr/share/debootstrap/scripts/{script}"
    )
    env = dict(os.environ, ARCH="amd64", SUITE=suite)
    return subprocess.run(
        ["bash", "-c", probe], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def apt_sources(suite: str, mirror: str) -> str:
    distribution, _ = SUITES[suite]
    if distribution == "ubuntu":
        components = "main universe"
        lines = [f"deb {mirror} {suite}{pocket} {components}" for pocket in ("", "-updates", "-security")]
    else:
        lines = [
            f"deb {mirror} {suite} main",
            f"deb {mirror} {suite}-updates main",
            f"deb {mirror}-security {suite}-security main",
        ]
    return "\n".join(lines) + "\n"


def ubuntu_keyring(mirror: str) -> Path:
    """Ubuntu's archive keyring, from the Ubuntu archive itself (Debian does not ship it)."""
    target = CACHE / "ubuntu-archive-keyring.gpg"
    if target.exists():
        return target
    with urllib.request.urlopen(f"{mirror}/dists/noble/main/binary-amd64/Packages.xz") as response:
        index = lzma.decompress(response.read()).decode()
    filename = re.search(r"^Filename: (pool/\S+/ubuntu-keyring_[^/\s]+\.deb)$", index, re.M).group(1)
    with tempfile.TemporaryDirectory() as tmp:
        deb = Path(tmp) / "keyring.deb"
        with urllib.request.urlopen(f"{mirror}/{filename}") as response:
            deb.write_bytes(response.read())
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        CACHE.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(tmp) / "usr/share/keyrings/ubuntu-archive-keyring.gpg", target)
    return target


# ---------------------------------------------------------------------- images


def recipe_hash(suite: str) -> str:
    recipe = json.dumps([RECIPE_VERSION, suite, SUITES[suite], PACKAGES, MASKED_UNITS])
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def image_tag(suite: str) -> str:
    return f"jhd-target:{suite}-{recipe_hash(suite)}"


def build_rootfs_tarball(suite: str) -> Path:
    tarball = CACHE / "images" / f"{suite}-{recipe_hash(suite)}.tar"
    if tarball.exists():
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)
    distribution, script = SUITES[suite]
    mirror = default_mirror(suite)
    started = time.monotonic()
    log(f"debootstrap {suite} (about 2 minutes)")
    with tempfile.TemporaryDirectory(dir=tarball.parent) as tmp:
        root = Path(tmp) / "root"
        command = ["debootstrap", "--variant=minbase", f"--include={PACKAGES}"]
        if distribution == "ubuntu":
            command += ["--components=main,universe", f"--keyring={ubuntu_keyring(mirror)}"]
        command += [suite, str(root), mirror, f"/usr/share/debootstrap/scripts/{script}"]
        run_logged(command, Path(tmp) / "debootstrap.log")
        (root / "etc/apt/sources.list").write_text(apt_sources(suite, mirror))
        # Keep services from starting inside the chroot while packages upgrade.
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        upgrade = (
            "mount -t proc proc /proc && trap 'umount /proc' EXIT && "
            "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get -q -y dist-upgrade && apt-get clean"
        )
        run_logged(["chroot", str(root), "sh", "-c", upgrade], Path(tmp) / "upgrade.log")
        policy.unlink()
        for unit in MASKED_UNITS:
            link = root / "etc/systemd/system" / unit
            link.unlink(missing_ok=True)
            link.symlink_to("/dev/null")
        # Each container gets its own machine id on first boot.
        (root / "etc/machine-id").write_text("")
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True)
        partial.rename(tarball)
    log(f"debootstrap {suite} done in {time.monotonic() - started:.0f} s")
    return tarball


def run_logged(command: list[str], logfile: Path) -> None:
    with open(logfile, "w") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = logfile.read_text().splitlines()[-30:]
        raise RuntimeError(f"{' '.join(command[:3])} failed:\n" + "\n".join(tail))


def ensure_images(client: docker.DockerClient, suites: list[str]) -> dict[str, str]:
    """Build (or reuse) one image per suite, in parallel. The engine sets DOCKER_HOST for the CLI."""
    missing = [s for s in suites if not client.images.list(name=image_tag(s))]
    with ThreadPoolExecutor(max_workers=3) as pool:
        tarballs = dict(zip(missing, pool.map(build_rootfs_tarball, missing)))
    for suite, tarball in tarballs.items():
        subprocess.run(
            ["docker", "import", "--change", 'CMD ["/sbin/init"]', str(tarball), image_tag(suite)],
            check=True, stdout=subprocess.DEVNULL,
        )
    return {s: image_tag(s) for s in suites}


# ---------------------------------------------------------------------- engine


class Engine:
    """A Docker engine: the one that answers, or Debian's dockerd started here."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.client = self._existing() or self._start()

    @staticmethod
    def _existing() -> docker.DockerClient | None:
        for base_url in filter(None, [os.environ.get("DOCKER_HOST"), "unix:///var/run/docker.sock", f"unix://{PRIVATE_SOCKET}"]):
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
        log_file = open(CACHE / "dockerd.log", "a")
        self.process = subprocess.Popen(
            [
                "dockerd", "-H", f"unix://{PRIVATE_SOCKET}",
                "--data-root", "/var/lib/jhd-docker", "--exec-root", "/run/jhd-docker",
                "--pidfile", str(PRIVATE_PIDFILE), "--storage-driver", "overlay2",
            ],
            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
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
        """Stop the engine if we started it, and leave the host's iptables as found."""
        if self.process is None:
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
    for table, chains in (("filter", ("INPUT", "FORWARD", "OUTPUT")), ("nat", ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"))):
        if f"*{table}" not in restore:
            restore += f"*{table}\n" + "".join(f":{c} ACCEPT [0:0]\n" for c in chains) + "COMMIT\n"
    subprocess.run(["iptables-restore"], input=restore, text=True, check=True)
    IPTABLES_BEFORE.unlink(missing_ok=True)
    subprocess.run(["ip", "link", "delete", "docker0"], stderr=subprocess.DEVNULL, check=False)


# ------------------------------------------------------------------ containers


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


def start_target(client: docker.DockerClient, suite: str, name: str, workdir: Path, ports: dict | None = None) -> Target:
    """Boot a container with systemd as PID 1 and wait until sshd answers."""
    key = ssh_keypair(workdir)
    remove_container(client, name)
    container = client.containers.run(
        image_tag(suite), ["/sbin/init"], name=name, hostname=name, detach=True,
        labels={LABEL: suite},
        cap_add=["ALL"], cap_drop=["SYS_RESOURCE"], security_opt=["seccomp=unconfined"],
        environment={"container": "docker"}, stop_signal="SIGRTMIN+3",
        tmpfs={"/run": "", "/run/lock": ""},
        volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "ro"}},
        ports=ports or {},
    )
    public_key = key.with_suffix(".pub").read_text()
    setup = f"install -d -m 700 /root/.ssh && echo '{public_key.strip()}' > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys"
    exit_code, output = container.exec_run(["sh", "-c", setup])
    if exit_code != 0:
        raise RuntimeError(f"cannot install SSH key in {name}: {output.decode()}")
    container.reload()
    address = container.attrs["NetworkSettings"]["IPAddress"]
    wait_for_port(address, 22, timeout=60)
    # All targets from one image share host keys: a throwaway known_hosts per run.
    known_hosts = workdir / f"known_hosts-{name}"
    known_hosts.write_text("")
    return Target(name, suite, container.id, address, str(key), str(known_hosts))


def wait_for_port(address: str, port: int, timeout: float) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=2) as sock:
                if port != 22 or sock.recv(4).startswith(b"SSH"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{address}:{port} did not answer within {timeout} s")
        time.sleep(0.5)


def remove_container(client: docker.DockerClient, name: str) -> None:
    try:
        client.containers.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass


# ------------------------------------------------------------------------ demo

DEMO_DIR = REPO / ".demo"
DEMO_NAME = "jhd-demo"
DEMO_LOGIN = ("demo", "demo")


def controller_ca_certificates() -> list[str]:
    """This machine's own extra CAs, for targets that must trust what it trusts."""
    return sorted(str(p) for p in Path("/usr/local/share/ca-certificates").rglob("*.crt"))


def password_hash(password: str) -> str:
    return subprocess.run(
        ["openssl", "passwd", "-6", password], check=True, capture_output=True, text=True
    ).stdout.strip()


def demo_host(info: dict) -> tuple[str, dict]:
    """The demo target as an inventory entry (inventory.py's `demo` group)."""
    target = Target(**info["target"])
    user, _ = DEMO_LOGIN
    return target.name, {
        **target.inventory_data(),
        # nginx with a self-signed certificate; Docker publishes 443 on 127.0.0.1:8443.
        "jh_domain": "localhost",
        "jh_certificate": "selfsigned",
        "jh_users": [{"name": user, "password_hash": info["password_hash"]}],
        "jh_admin_users": [user],
        "jh_extra_ca_certificates": controller_ca_certificates(),
    }


def demo_up(suite: str) -> Target:
    engine = Engine()
    ensure_images(engine.client, [suite])
    target = start_target(
        engine.client, suite, DEMO_NAME, DEMO_DIR,
        ports={"443/tcp": ("127.0.0.1", 8443)},
    )
    info = {"target": asdict(target), "password_hash": password_hash(DEMO_LOGIN[1])}
    (DEMO_DIR / "target.json").write_text(json.dumps(info, indent=2))
    return target


def demo_down() -> None:
    engine = Engine()
    remove_container(engine.client, DEMO_NAME)
    (DEMO_DIR / "target.json").unlink(missing_ok=True)
    engine.stop_idle_private_engine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="the local demo target")
    demo.add_argument("action", choices=["up", "down", "info"])
    demo.add_argument("--suite", default="noble", choices=sorted(SUITES))
    images = sub.add_parser("images", help="build target images ahead of time")
    images.add_argument("suites", nargs="+", choices=sorted(SUITES))
    args = parser.parse_args()
    if args.command == "images":
        ensure_images(Engine().client, args.suites)
    elif args.action == "up":
        target = demo_up(args.suite)
        log(f"demo target {target.name} ({target.suite}) at {target.address}")
    elif args.action == "info":
        user, password = DEMO_LOGIN
        print(f"\nJupyterHub demo: open https://localhost:8443/ (a self-signed certificate: accept it)"
              f" and log in as {user} / {password}")
        print("Remove it with: make demo-down\n")
    else:
        demo_down()


if __name__ == "__main__":
    main()
