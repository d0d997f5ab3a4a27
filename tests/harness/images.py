"""Target images: debootstrap root filesystems, cached on disk, imported into Docker.

A tarball per suite is cached in CACHE/images, keyed by a hash of the recipe that
built it, so a changed recipe builds a new one and an unchanged one is reused.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("JHD_CACHE", Path.home() / ".cache" / "jupyterhub-deploy"))

SUITES = {
    # suite: (distribution, debootstrap script to use)
    "xenial": ("ubuntu", "xenial"),
    "bionic": ("ubuntu", "bionic"),
    "focal": ("ubuntu", "focal"),
    "jammy": ("ubuntu", "jammy"),
    # Debian 12's debootstrap has no noble script; gutsy's is the generic Ubuntu one.
    "noble": ("ubuntu", "gutsy"),
    "bullseye": ("debian", "sid"),
    "bookworm": ("debian", "sid"),
    "trixie": ("debian", "sid"),
}
PACKAGES = "systemd,systemd-sysv,dbus,openssh-server,sudo,python3,ca-certificates,iproute2,curl,less,gnupg,locales"
MASKED_UNITS = ("systemd-udevd.service", "systemd-udev-trigger.service", "getty@tty1.service")
# Bump when the image recipe changes in a way the hash below cannot see.
RECIPE_VERSION = 1


def log(message: str) -> None:
    print(f"[harness] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------- mirrors


def default_mirror(suite: str) -> str:
    """The mirror debootstrap itself would use, read from its own scripts."""
    distribution, script = SUITES[suite]
    if distribution == "debian":
        text = Path("/usr/sbin/debootstrap").read_text()
        return re.search(r'^DEF_MIRROR="([^"]+)"', text, re.M).group(1)
    probe = f'default_mirror() {{ echo "$1"; exit 0; }}; . /usr/share/debootstrap/scripts/{script}'
    env = dict(os.environ, ARCH="amd64", SUITE=suite)
    return subprocess.run(["bash", "-c", probe], env=env, check=True, capture_output=True, text=True).stdout.strip()


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
        tarballs = dict(zip(missing, pool.map(build_rootfs_tarball, missing), strict=True))
    for suite, tarball in tarballs.items():
        subprocess.run(
            ["docker", "import", "--change", 'CMD ["/sbin/init"]', str(tarball), image_tag(suite)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return {s: image_tag(s) for s in suites}
