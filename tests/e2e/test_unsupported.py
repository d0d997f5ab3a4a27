"""Ubuntu 16.04 (Python 3.5, systemd 229): told to use its own python3, the deploy refuses before it
changes anything; users' servers run there as units with their limits."""

import io
import tarfile

from tasks import hub_data
from tasks.ops import SCRIPTS
from tasks.platform import Platform
from tasks.settings import Settings
from tests.e2e.conftest import run_pyinfra, write_inventory

WATCHED = ("/etc", "/opt", "/usr/local")
VOLATILE = ("/etc/machine-id", "/etc/mtab", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts")


def test_xenial_is_refused_before_any_change(start, workdir):
    host = start("xenial", "jhd-test-xenial")
    before = host.snapshot(*WATCHED, exclude=VOLATILE)
    packages_before = host.sh("dpkg-query -W | wc -l")
    inventory = write_inventory(workdir / "xenial.py", [(host.name, {**host.data, "jh_server_python": "system"})])

    result = run_pyinfra(inventory)

    assert result.returncode != 0
    assert (
        "Ubuntu 16.04 has Python 3.5, and jh_server_release jupyterhub-6 has locks for Python 3.10, 3.11, 3.12, 3.13 only"
        in result.stderr
    )
    assert "Nothing was changed. Fix:" in result.stderr
    assert host.snapshot(*WATCHED, exclude=VOLATILE) == before
    assert host.sh("dpkg-query -W | wc -l") == packages_before


def test_users_servers_run_as_units_with_limits_on_systemd_229(start):
    """Ubuntu 16.04 runs no hub here (its server Python comes from conda, out of reach), but its
    systemd 229 runs users' servers: root's helper, with the configuration the deploy writes
    for it, starts a unit with MemoryLimit=, CPUQuota= and TasksMax= and the token, and stops it."""
    host = start("xenial", "jhd-test-xenial")
    settings = Settings.from_data(
        {"jh_user_memory_limit": "256M", "jh_user_cpu_limit": 0.5, "jh_group_limits": {"ml-2026": {"tasks": 64}}}
    )
    config = hub_data.hub_json(settings, Platform("Ubuntu", "16.04", "3.5", "3.12", "conda"), 1000, {})
    # Listens on the port the hub gives it, as jupyterhub-singleuser does (root's helper waits for that).
    server = (
        "#!/usr/bin/python3\nimport os, re, socket, time\n"
        "port = int(re.search(r':([0-9]+)/', os.environ['JUPYTERHUB_SERVICE_URL']).group(1))\n"
        "s = socket.socket()\ns.bind(('127.0.0.1', port))\ns.listen(1)\ntime.sleep(300)\n"
    )
    host.sh(
        "groupadd jupyterhub-users && groupadd ml-2026 && useradd -r jupyter"
        " && useradd -m -G jupyterhub-users,ml-2026 alice && useradd -m mallory"
        " && mkdir -p /opt/jupyter/libexec /opt/jupyter/envs/fake/bin && ln -s envs/fake /opt/jupyter/.venv"
    )
    host.container.put_archive("/", archive({
        "opt/jupyter/libexec/user-server": ((SCRIPTS / "user-server").read_text(), 0o755),
        "opt/jupyter/hub.json": (config, 0o644),
        "opt/jupyter/envs/fake/bin/jupyterhub-singleuser": (server, 0o755),
    }))  # fmt: skip
    helper = "/opt/jupyter/libexec/user-server"
    variables = "JUPYTERHUB_API_TOKEN=t0ken\\nJUPYTERHUB_SERVICE_URL=http://127.0.0.1:20123/user/alice/\\n"
    started = host.sh(f"printf '{variables}' | {helper} start alice; echo exit=$?")
    assert started.strip().endswith("exit=0"), started
    unit = "jupyter-singleuser@alice.service"
    shown = dict(line.split("=", 1) for line in host.sh(f"systemctl show {unit}").splitlines() if "=" in line)
    assert shown["ActiveState"] == "active" and shown["User"] == "alice"
    assert shown["Slice"] == "jupyterhub-users.slice"
    assert (shown["MemoryLimit"], shown["CPUQuotaPerSecUSec"], shown["TasksMax"]) == (str(256 * 1024**2), "500ms", "64")
    environ = host.sh(f"tr '\\0' '\\n' < /proc/{shown['MainPID']}/environ")
    assert "JUPYTERHUB_API_TOKEN=t0ken" in environ and "MEM_LIMIT=268435456" in environ
    assert "t0ken" not in host.sh(f"systemctl show {unit}")
    for refused in ("root", "mallory", "../alice"):
        out = host.sh(f"printf 'JUPYTERHUB_API_TOKEN=x\\n' | {helper} start {refused} 2>&1; echo exit=$?")
        assert "refused" in out and "exit=1" in out, out
    host.sh(f"{helper} stop alice")
    assert host.sh(f"systemctl is-active {unit}", check=False).strip() != "active"
    assert host.sh("ls /run/jupyter-singleuser") == ""


def archive(members: dict[str, tuple[str, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, (text, mode) in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_release_the_deploy_does_not_know_is_refused_unless_allowed(start, workdir):
    """Debian 12 dressed as a Debian 14: refused before any change; allowed, planned as untested."""
    host = start("bookworm", "jhd-test-untested")
    host.sh("sed -i 's/^VERSION_ID=.*/VERSION_ID=\"14\"/' /usr/lib/os-release")
    before = host.snapshot(*WATCHED, exclude=VOLATILE)
    inventory = write_inventory(workdir / "untested.py", [(host.name, host.data)])
    result = run_pyinfra(inventory)
    assert result.returncode != 0
    assert "Debian 14 is not a release this deploy knows; supported: Ubuntu 16.04" in result.stderr
    assert "set jh_allow_untested_release = True" in result.stderr
    allowed = write_inventory(
        workdir / "untested-allowed.py", [(host.name, {**host.data, "jh_allow_untested_release": True})]
    )
    preview = run_pyinfra(allowed, "--dry")
    assert preview.returncode == 0, preview.stderr[-3000:]
    assert "server Python 3.11: python3 of Debian 14; Debian 14 is UNTESTED" in preview.stderr
    assert host.snapshot(*WATCHED, exclude=VOLATILE) == before
