"""The scripts the deploy ships (files/bin), run here on scratch directories."""

import stat
import subprocess

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


def test_jobs_pam_access_gives_cron_and_at_installed_later_the_deploy_s_line_once(tmp_path):
    (tmp_path / "cron").write_text("@include common-account\n")
    (tmp_path / "atd").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").write_text("canary\n")
    line = "account required pam_access.so accessfile=/etc/security/access-jupyterhub-jobs.conf\n"
    for _ in range(2):
        result = run(SCRIPTS / "jobs-pam-access", "/etc/security/access-jupyterhub-jobs.conf", tmp_path)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "cron").read_text() == "@include common-account\n" + line
    assert (tmp_path / "elsewhere").read_text() == "canary\n"
    assert run(SCRIPTS / "jobs-pam-access", "/x", tmp_path / "missing").returncode == 0
