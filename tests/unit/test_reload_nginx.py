"""files/bin/reload-nginx against a real nginx: it returns only once nginx's old workers stopped
taking connections. systemctl is a stand-in here whose reload signals nginx's master a moment
later, as the real reload does (it returns before the new workers serve)."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tasks.ops import SCRIPTS

NGINX = "/usr/sbin/nginx"

SYSTEMCTL = """#!/bin/sh
master=$(cat "$NGINX_PID_FILE")
case "$1" in
    show) echo "MainPID=$master" ;;
    is-active) exit 0 ;;
    reload) (sleep 0.5; kill -HUP "$master") >/dev/null 2>&1 & ;;
    *) exit 1 ;;
esac
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accepting_workers(master: int) -> set[int]:
    """Children of `master` titled exactly "nginx: worker process", read as Python reads /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            title = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").strip()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == master and title == b"nginx: worker process":
            found.add(int(stat.parent.name))
    return found


@pytest.fixture
def nginx(tmp_path):
    if not os.path.exists(NGINX):
        pytest.skip(f"{NGINX} is missing: tests/prerequisites.sh unit installs it")
    pid_file = tmp_path / "nginx.pid"
    temp = "".join(f"{kind}_temp_path {tmp_path}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {pid_file};\nerror_log {tmp_path}/error.log;\nworker_processes 2;\nevents {{}}\n"
        f"http {{ access_log off; {temp} server {{ listen 127.0.0.1:{free_port()}; return 204; }} }}\n"
    )
    subprocess.run([NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")], check=True)
    for _ in range(100):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        time.sleep(0.05)
    master = int(pid_file.read_text())
    yield tmp_path, pid_file, master
    os.kill(master, signal.SIGQUIT)


def test_reload_nginx_returns_once_the_old_workers_no_longer_accept(nginx):
    tmp_path, pid_file, master = nginx
    for _ in range(100):
        before = accepting_workers(master)
        if len(before) == 2:
            break
        time.sleep(0.05)
    assert len(before) == 2, "the test's nginx has its two workers"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(SYSTEMCTL)
    (bin_dir / "systemctl").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "NGINX_PID_FILE": str(pid_file)}
    result = subprocess.run([SCRIPTS / "reload-nginx"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    after = accepting_workers(master)
    assert after and not after & before, (before, after)
