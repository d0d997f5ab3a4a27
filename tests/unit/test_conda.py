"""The conda settings and scripts, as far as they can be checked without a channel: the
scripts run here against a small installer and a conda command made by the test."""

import hashlib
import os
import subprocess
from pathlib import Path

from tasks import conda
from tasks.ops import SCRIPTS
from tasks.settings import Settings


def test_condarc_names_channels_mirror_and_the_system_trust_store():
    settings = Settings.from_data(
        {"jh_conda_channels": ["conda-forge", "bioconda"], "jh_conda_channel_alias": "https://mirror.example.org/conda"}
    )
    assert conda.condarc(settings).splitlines()[1:] == [
        "channels:",
        "  - conda-forge",
        "  - bioconda",
        "channel_alias: https://mirror.example.org/conda",
        "ssl_verify: /etc/ssl/certs/ca-certificates.crt",
        "always_yes: true",
        "auto_update_conda: false",
        "notify_outdated_conda: false",
    ]
    assert "channel_alias" not in conda.condarc(Settings.from_data({}))


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_installer_is_checked_runs_unattended_then_updates_in_place(tmp_path):
    # An installer that records its arguments and makes bin/conda, as Miniforge's does.
    installer = executable(
        tmp_path / "installer.sh",
        'echo "$@" >> "$LOG"; p=${*: -1}; mkdir -p "$p/bin"; touch "$p/bin/conda"; chmod +x "$p/bin/conda"\n',
    )
    digest = hashlib.sha256(installer.read_bytes()).hexdigest()
    prefix, stamp, log = tmp_path / "conda", tmp_path / "stamp", tmp_path / "log"
    env = {**os.environ, "LOG": str(log)}
    for _ in range(2):
        copy = tmp_path / "copy.sh"
        copy.write_bytes(installer.read_bytes())
        subprocess.run([SCRIPTS / "conda-install", copy, prefix, digest, stamp], check=True, env=env)
        assert not copy.exists()
    assert log.read_text().splitlines() == [f"-b -p {prefix}", f"-b -u -p {prefix}"]
    assert stamp.read_text() == f"{digest}\n"
    # A tampered installer does not run.
    executable(tmp_path / "copy.sh", 'echo tampered >> "$LOG"\n')
    result = subprocess.run(
        [SCRIPTS / "conda-install", tmp_path / "copy.sh", prefix, digest, stamp],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "tampered" not in log.read_text()


def test_environment_is_created_once_then_updated_with_prune(tmp_path):
    fake_conda = executable(
        tmp_path / "conda", 'echo "$PIP_CERT $PIP_INDEX_URL $*" >> "$LOG"; mkdir -p "$4/conda-meta"\n'
    )
    env_dir, spec, stamp, log = tmp_path / "env", tmp_path / "python3.yml", tmp_path / "stamp", tmp_path / "log"
    spec.write_text("name: x\n")
    for _ in range(2):
        subprocess.run(
            [SCRIPTS / "conda-env", fake_conda, env_dir, spec, stamp, "/ca.crt", "https://mirror/simple"],
            check=True,
            env={**os.environ, "LOG": str(log)},
        )
    assert log.read_text().splitlines() == [
        f"/ca.crt https://mirror/simple env create --prefix {env_dir} --file {spec}",
        f"/ca.crt https://mirror/simple env update --prefix {env_dir} --file {spec} --prune",
    ]
    assert stamp.read_text() == spec.read_text()
