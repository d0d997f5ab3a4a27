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


def fake_tools(tmp_path, rosters: str, code: int = 0):
    """A server venv whose hubside-course-rosters prints rosters and exits with code, whose
    hubside-people records its arguments and token; a runuser that records whom it runs as."""
    venv, bin_dir = tmp_path / "venv", tmp_path / "fake-bin"
    (venv / "bin").mkdir(parents=True)
    bin_dir.mkdir()
    tools = {
        venv / "bin" / "hubside-course-rosters": f"printf '%s\\n' \"$*\" > {tmp_path}/rosters-args\n"
        f"printf '%s\\n' '{rosters}'\nexit {code}\n",
        venv / "bin" / "hubside-people": f'printf \'%s\\n\' "$JUPYTERHUB_API_TOKEN" "$@" > {tmp_path}/people-args\n',
        bin_dir / "runuser": f'printf "%s\\n" "$2" > {tmp_path}/runuser-user\nshift 3\nexec "$@"\n',
    }
    for path, body in tools.items():
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)
    (tmp_path / "deploy.env").write_text("JUPYTERHUB_API_TOKEN=deploy-token\n")
    return venv, bin_dir


def test_sync_rosters_sets_the_listed_groups_as_the_hub_user_with_the_deploy_s_token(tmp_path):
    wanted = '{"ml-staff": ["prof"], "ml-students": ["lena", "otto"]}'
    venv, bin_dir = fake_tools(tmp_path, wanted)
    argv = ["settings.json", venv, "jupyterhub", tmp_path / "deploy.env", "http://127.0.0.1:8081/hub/api", "ml", "art"]
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    result = run(SCRIPTS / "sync-rosters", *argv, env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "rosters-args").read_text() == "--settings settings.json ml art\n"
    assert (tmp_path / "runuser-user").read_text() == "jupyterhub\n"
    # The JSON is one argument, as it was printed.
    assert (tmp_path / "people-args").read_text().splitlines() == [
        "deploy-token",
        "http://127.0.0.1:8081/hub/api",
        "set-course-groups",
        wanted,
    ]


def test_sync_rosters_sets_what_was_read_when_a_course_failed_and_nothing_when_all_did(tmp_path):
    venv, bin_dir = fake_tools(tmp_path, '{"ml-students": ["lena"]}', code=3)
    argv = ["settings.json", venv, "jupyterhub", tmp_path / "deploy.env", "http://127.0.0.1:8081/hub/api", "ml", "art"]
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    assert run(SCRIPTS / "sync-rosters", *argv, env=env).returncode == 3
    assert (tmp_path / "people-args").read_text().splitlines()[-1] == '{"ml-students": ["lena"]}'
    again = tmp_path / "again"
    venv, bin_dir = fake_tools(again, "", code=1)
    argv[1], env = venv, {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    assert run(SCRIPTS / "sync-rosters", *argv, env=env).returncode == 1
    assert (again / "rosters-args").exists() and not (again / "people-args").exists()
