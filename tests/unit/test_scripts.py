"""The scripts the deploy ships (files/bin), run here on scratch directories."""

import hashlib
import io
import json
import stat
import subprocess
import tarfile
import zipfile

import pytest

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


def regular(name: str, data: bytes = b"x") -> tuple:
    member = tarfile.TarInfo(name)
    member.size = len(data)
    return member, data


def link(name: str, target: str) -> tuple:
    member = tarfile.TarInfo(name)
    member.type, member.linkname = tarfile.SYMTYPE, target
    return member, None


@pytest.mark.parametrize(
    "bad",
    [link("state/secret", "/etc/shadow"), regular("/etc/evil"), regular("state/../../evil"), regular("other")],
    ids=["link", "absolute", "dotdot", "unexpected"],
)
def test_safe_extract_refuses_the_whole_archive(tmp_path, bad):
    archive = tar_with(tmp_path, regular("state/db", b"data"), bad)
    result = run(SCRIPTS / "safe-extract", archive, tmp_path / "out", "state")
    assert result.returncode != 0 and "refusing" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("from_stdin", [False, True], ids=["path", "stdin"])
def test_safe_extract_writes_private_files(tmp_path, from_stdin):
    archive = tar_with(tmp_path, regular("state/db", b"data"))
    if from_stdin:
        with open(archive, "rb") as opened:
            assert run(SCRIPTS / "safe-extract", "-", tmp_path / "out", "state", stdin=opened).returncode == 0
    else:
        assert run(SCRIPTS / "safe-extract", archive, tmp_path / "out", "state").returncode == 0
    extracted = tmp_path / "out" / "state" / "db"
    assert extracted.read_bytes() == b"data" and stat.S_IMODE(extracted.stat().st_mode) == 0o600


def nltk_index(tmp_path, url: str, subdir: str) -> str:
    package = tmp_path / "p.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("p/README", "x")
    index = tmp_path / "index.xml"
    index.write_text(
        f'<nltk_data><packages><package id="p" subdir="{subdir}" url="{url}" '
        f'checksum="{hashlib.md5(package.read_bytes()).hexdigest()}" /></packages></nltk_data>'
    )
    return f"file://{index}"


@pytest.mark.parametrize(
    "url, subdir", [("file:///etc/passwd", "corpora"), ("https://x.test/p.zip", "../../etc")], ids=["file", "dotdot"]
)
def test_nltk_fetch_trusts_the_index_no_further_than_a_plain_folder_and_http(tmp_path, url, subdir):
    data = tmp_path / "data"
    result = run("python3", SCRIPTS / "nltk-fetch", nltk_index(tmp_path, url, subdir), data, "p")
    assert result.returncode != 0 and "refuses" in result.stderr
    assert not data.exists()


def test_merge_oauth_names_adds_the_archive_s_bindings_and_never_rebinds_a_name(tmp_path):
    restored, current = tmp_path / "restored.json", tmp_path / "state" / "oauth-names.json"
    current.parent.mkdir()
    restored.write_text(json.dumps({"olivia": "sub-olivia", "omar": "sub-omar", "zoe": "sub-old-zoe"}))
    current.write_text(json.dumps({"zoe": "sub-zoe", "yann": "sub-yann"}))
    result = run(SCRIPTS / "merge-oauth-names", restored, current)
    assert result.returncode == 0, result.stderr
    assert json.loads(current.read_text()) == {
        "olivia": "sub-olivia",
        "omar": "sub-omar",
        "yann": "sub-yann",
        "zoe": "sub-zoe",
    }
    assert "kept this hub's binding of zoe" in result.stderr
    # A hub without bindings yet (a fresh host) takes the archive's.
    current.unlink()
    assert run(SCRIPTS / "merge-oauth-names", restored, current).returncode == 0
    assert json.loads(current.read_text()) == json.loads(restored.read_text())


@pytest.mark.parametrize("text", ['["olivia"]', '{"olivia": 7}', "not json"])
def test_merge_oauth_names_refuses_what_is_not_bindings(tmp_path, text):
    restored, current = tmp_path / "restored.json", tmp_path / "oauth-names.json"
    restored.write_text(text)
    current.write_text('{"zoe": "sub-zoe"}')
    assert run(SCRIPTS / "merge-oauth-names", restored, current).returncode != 0
    assert json.loads(current.read_text()) == {"zoe": "sub-zoe"}
