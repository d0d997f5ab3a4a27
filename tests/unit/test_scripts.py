"""The scripts the deploy ships (files/bin), run here on scratch directories."""

import io
import stat
import subprocess
import tarfile
import time
from pathlib import Path

from tasks.ops import SCRIPTS


def run(*argv, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kwargs)


def test_new_secret_is_private_made_once_and_never_written_through_a_link(tmp_path):
    secret = tmp_path / "proxy.env"
    assert run(SCRIPTS / "new-secret", secret, "TOKEN=").returncode == 0
    first = secret.read_text()
    assert first.startswith("TOKEN=") and len(first.strip()) == len("TOKEN=") + 64
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert run(SCRIPTS / "new-secret", secret, "TOKEN=").returncode == 0
    assert secret.read_text() == first
    # A link in its place (to a file that exists) is left alone, and so is its target.
    target, planted = tmp_path / "target", tmp_path / "planted"
    target.write_text("canary\n")
    planted.symlink_to(target)
    assert run(SCRIPTS / "new-secret", planted).returncode == 0
    assert target.read_text() == "canary\n" and planted.is_symlink()


def test_with_secret_passes_the_value_in_the_environment_only(tmp_path):
    env_file = tmp_path / "culler.env"
    env_file.write_text("JUPYTERHUB_API_TOKEN=abc123\n")
    result = run(SCRIPTS / "with-secret", env_file, "JUPYTERHUB_API_TOKEN", "sh", "-c", 'echo "$JUPYTERHUB_API_TOKEN"')
    assert result.stdout == "abc123\n"
    env_file.write_text("OTHER=1\n")
    assert run(SCRIPTS / "with-secret", env_file, "JUPYTERHUB_API_TOKEN", "true").returncode != 0


def tar_with(tmp_path, *members) -> str:
    path = tmp_path / "archive.tar"
    with tarfile.open(path, "w") as archive:
        for member, data in members:
            archive.addfile(member, io.BytesIO(data) if data is not None else None)
    return path


def test_wait_healthy_gives_up_after_its_time(tmp_path):
    result = run(SCRIPTS / "wait-healthy", "http://127.0.0.1:9/hub/health", "1")
    assert result.returncode != 0 and "no answer from http://127.0.0.1:9/hub/health within 1 s" in result.stderr


def test_prune_server_envs_keeps_the_kept_and_those_a_process_runs(tmp_path):
    envs = tmp_path / "envs"
    for name in ("current", "previous", "running", "stale-1", "stale-2"):
        (envs / name / "bin").mkdir(parents=True)
    (envs / "running" / "bin" / "server").write_text("")
    # A user's server still running on an old venv: its path is in the process's arguments.
    server = subprocess.Popen(
        ["python3", "-c", "import time; time.sleep(60)", str(envs / "running" / "bin" / "server")]
    )
    try:
        # Until it has exec'd, the child's arguments are still pytest's.
        cmdline = Path(f"/proc/{server.pid}/cmdline")
        deadline = time.monotonic() + 10
        while b"/envs/running/" not in cmdline.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.01)
        keep = [envs / "current", envs / "previous"]
        listed = run(SCRIPTS / "prune-server-envs", "--list", envs, *keep)
        assert listed.stdout.split() == [str(envs / "stale-1"), str(envs / "stale-2")]
        assert all((envs / name).is_dir() for name in ("stale-1", "stale-2"))
        assert run(SCRIPTS / "prune-server-envs", envs, *keep).returncode == 0
        assert sorted(p.name for p in envs.iterdir()) == ["current", "previous", "running"]
    finally:
        server.kill()
        server.wait()
    # Once it stops, its venv goes too.
    run(SCRIPTS / "prune-server-envs", envs, envs / "current", envs / "previous")
    assert sorted(p.name for p in envs.iterdir()) == ["current", "previous"]
