"""The tools the deploy runs with the venv's Python: archive extraction, NLTK data, name bindings,
OpenID Connect discovery, and a job's server start."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import ssl
import stat
import sys
import tarfile
import threading
import zipfile

import pytest

from hubside import extract, jobserver, names, nltk_fetch, oidc_discover


def tar_with(tmp_path, *members) -> str:
    path = tmp_path / "archive.tar"
    with tarfile.open(path, "w") as archive:
        for member, data in members:
            archive.addfile(member, io.BytesIO(data) if data is not None else None)
    return str(path)


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
def test_safe_extract_refuses_the_whole_archive(tmp_path, bad, monkeypatch, capsys):
    archive = tar_with(tmp_path, regular("state/db", b"data"), bad)
    monkeypatch.setattr(sys, "argv", ["hubside-safe-extract", archive, str(tmp_path / "out"), "state"])
    with pytest.raises(SystemExit) as refused:
        extract.main()
    assert "refusing" in str(refused.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("from_stdin", [False, True], ids=["path", "stdin"])
def test_safe_extract_writes_private_files(tmp_path, from_stdin, monkeypatch):
    archive = tar_with(tmp_path, regular("state/db", b"data"), regular("state/sub/more", b"more"))
    if from_stdin:
        with open(archive, "rb") as opened:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(opened.read()))))
        extract.extract("-", str(tmp_path / "out"), ["state"])
    else:
        extract.extract(archive, str(tmp_path / "out"), ["state"])
    extracted = tmp_path / "out" / "state" / "db"
    assert extracted.read_bytes() == b"data" and stat.S_IMODE(extracted.stat().st_mode) == 0o600
    assert (tmp_path / "out" / "state" / "sub" / "more").read_bytes() == b"more"


class Served:
    """Files served over HTTP on loopback (an NLTK index, a discovery document, the hub's API)."""

    def __init__(self, routes: dict):
        self.routes, self.posted = routes, []
        served = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.answer(served.routes.get(self.path, (404, b"")))

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                served.posted.append((self.path, dict(self.headers), body))
                self.answer(served.routes.get(("POST", self.path), (404, b"")))

            def answer(self, reply):
                status, body = reply
                self.send_response(status)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def served():
    servers = []

    def serve(routes):
        servers.append(Served(routes))
        return servers[-1]

    yield serve
    for server in servers:
        server.close()


def nltk_package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("p/README", "x")
    return buffer.getvalue()


def nltk_index(url: str, subdir: str, checksum: str) -> bytes:
    return (
        f'<nltk_data><packages><package id="p" subdir="{subdir}" url="{url}" '
        f'checksum="{checksum}" /></packages></nltk_data>'
    ).encode()


def test_nltk_fetch_unpacks_a_package_checked_against_the_index(tmp_path, served, monkeypatch):
    package = nltk_package()
    server = served({"/p.zip": (200, package)})
    server.routes["/index.xml"] = (200, nltk_index(f"{server.url}/p.zip", "corpora", hashlib.md5(package).hexdigest()))
    monkeypatch.setattr(sys, "argv", ["hubside-nltk-fetch", f"{server.url}/index.xml", str(tmp_path / "data"), "p"])
    nltk_fetch.main()
    assert (tmp_path / "data" / "corpora" / "p" / "README").read_text() == "x"


@pytest.mark.parametrize(
    ("url", "subdir", "checksum", "why"),
    [
        ("file:///etc/passwd", "corpora", None, "refuses"),
        ("{url}/p.zip", "../../etc", None, "refuses"),
        ("{url}/p.zip", "corpora", "0" * 32, "checksum mismatch"),
    ],
    ids=["file", "dotdot", "checksum"],
)
def test_nltk_fetch_trusts_the_index_no_further_than_a_plain_folder_and_http(
    tmp_path, served, url, subdir, checksum, why
):
    package = nltk_package()
    server = served({"/p.zip": (200, package)})
    index = nltk_index(url.format(url=server.url), subdir, checksum or hashlib.md5(package).hexdigest())
    server.routes["/index.xml"] = (200, index)
    with pytest.raises(SystemExit) as refused:
        nltk_fetch.fetch_packages(f"{server.url}/index.xml", str(tmp_path / "data"), ["p"])
    assert why in str(refused.value)
    assert not (tmp_path / "data" / "corpora").exists() or not any((tmp_path / "data" / "corpora").iterdir())
    with pytest.raises(SystemExit, match="is not in"):
        nltk_fetch.fetch_packages(f"{server.url}/index.xml", str(tmp_path / "data"), ["q"])


def test_merge_names_adds_the_archive_s_bindings_and_never_rebinds_a_name(tmp_path, capsys):
    restored, current = tmp_path / "restored.json", tmp_path / "state" / "oauth-names.json"
    current.parent.mkdir()
    restored.write_text(json.dumps({"olivia": "sub-olivia", "omar": "sub-omar", "zoe": "sub-old-zoe"}))
    current.write_text(json.dumps({"zoe": "sub-zoe", "yann": "sub-yann"}))
    names.merge_main([str(restored), str(current)])
    assert json.loads(current.read_text()) == {
        "olivia": "sub-olivia",
        "omar": "sub-omar",
        "yann": "sub-yann",
        "zoe": "sub-zoe",
    }
    assert "kept this hub's binding of zoe" in capsys.readouterr().err
    # A hub without bindings yet (a fresh host) takes the archive's.
    current.unlink()
    names.merge_main([str(restored), str(current)])
    assert json.loads(current.read_text()) == json.loads(restored.read_text())


@pytest.mark.parametrize("text", ['["olivia"]', '{"olivia": 7}', "not json"])
def test_merge_names_refuses_what_is_not_bindings(tmp_path, text):
    restored, current = tmp_path / "restored.json", tmp_path / "oauth-names.json"
    restored.write_text(text)
    current.write_text('{"zoe": "sub-zoe"}')
    with pytest.raises(SystemExit, match="not OAuth name bindings"):
        names.merge_main([str(restored), str(current)])
    assert json.loads(current.read_text()) == {"zoe": "sub-zoe"}


def discovery(issuer_url: str, **changes) -> bytes:
    document = {
        "issuer": issuer_url,
        "authorization_endpoint": "https://login.example.org/auth",
        "token_endpoint": "https://login.example.org/token",
        "userinfo_endpoint": "https://login.example.org/userinfo",
        **changes,
    }
    return json.dumps(document).encode()


@pytest.fixture
def plain_http(monkeypatch):
    """The discovery document over plain HTTP here (the tool asks with a TLS context, which
    urllib applies to https only): what is under test is what it accepts of the document."""
    monkeypatch.setattr(ssl, "create_default_context", lambda cafile=None: None)


def test_oidc_discover_writes_the_issuer_s_endpoints_and_drops_an_earlier_issuer_s(
    tmp_path, served, plain_http, monkeypatch
):
    server = served({})
    issuer = f"{server.url}/realms/uni"
    server.routes["/realms/uni/.well-known/openid-configuration"] = (200, discovery(issuer))
    (tmp_path / "oidc-endpoints-old.json").write_text("{}")
    output = tmp_path / "oidc-endpoints-new.json"
    monkeypatch.setattr(
        sys, "argv", ["hubside-oidc-discover", issuer, str(output), "/etc/ssl/certs/ca-certificates.crt"]
    )
    oidc_discover.main()
    assert json.loads(output.read_text())["token_endpoint"] == "https://login.example.org/token"
    assert stat.S_IMODE(output.stat().st_mode) == 0o644
    assert not (tmp_path / "oidc-endpoints-old.json").exists()


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"issuer": "https://evil.example.org"}, "is the document of"),
        ({"token_endpoint": "http://login.example.org/token"}, "not an https URL"),
        ({"userinfo_endpoint": "https://login.example.org/user info"}, "not an https URL"),
        ({"authorization_endpoint": None}, "not an https URL"),
    ],
)
def test_oidc_discover_refuses_a_document_not_the_issuer_s_or_with_plain_endpoints(
    tmp_path, served, plain_http, monkeypatch, changes, why
):
    server = served({})
    issuer = f"{server.url}/realms/uni"
    server.routes["/realms/uni/.well-known/openid-configuration"] = (200, discovery(issuer, **changes))
    output = tmp_path / "oidc-endpoints-new.json"
    monkeypatch.setattr(
        sys, "argv", ["hubside-oidc-discover", issuer, str(output), "/etc/ssl/certs/ca-certificates.crt"]
    )
    with pytest.raises(SystemExit, match=why):
        oidc_discover.main()
    assert not output.exists()


def test_oidc_discover_says_when_there_is_no_document(tmp_path, served, plain_http, monkeypatch):
    server = served({})
    monkeypatch.setattr(
        sys, "argv", ["hubside-oidc-discover", f"{server.url}/x", str(tmp_path / "e.json"), "/dev/null"]
    )
    with pytest.raises(SystemExit, match="no discovery document"):
        oidc_discover.main()


def test_a_job_s_server_reports_its_port_then_becomes_jupyterhub_singleuser(served, monkeypatch):
    server = served({("POST", "/hub/api/job-port"): (201, b"{}")})
    monkeypatch.setenv("JUPYTERHUB_API_URL", f"{server.url}/hub/api")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")
    monkeypatch.setenv("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:0/user/alice/")
    monkeypatch.setattr(sys, "argv", ["hubside-job-server", "--debug"])
    executed = []
    monkeypatch.setattr(os, "execv", lambda path, argv: executed.append((path, argv)))
    jobserver.main()
    ((path, headers, body),) = server.posted
    port = json.loads(body)["port"]
    assert path == "/hub/api/job-port" and headers["Authorization"] == "token server-token"
    assert json.loads(body) == {"port": port} and 1024 <= port < 65536
    assert os.environ["JUPYTERHUB_SERVICE_URL"] == f"http://0.0.0.0:{port}/user/alice/"
    ((program, argv),) = executed
    assert program == os.path.join(os.path.dirname(sys.executable), "jupyterhub-singleuser")
    assert argv == [program, "--debug"]


def test_the_state_archive_holds_a_copy_of_the_database_the_secrets_and_the_bindings(tmp_path):
    import sqlite3

    from hubside import state_archive

    state = tmp_path / "state"
    state.mkdir()
    with sqlite3.connect(state / "jupyterhub.sqlite") as db:
        db.execute("create table t (v text)")
        db.execute("insert into t values ('kept')")
    (state / "jupyterhub_cookie_secret").write_text("cookie\n")
    (state / "oauth-names.json").write_text("{}")
    out = io.BytesIO()
    state_archive.archive_state(
        out, str(state), str(state / "jupyterhub.sqlite"), "oauth-names.json", ["jupyterhub_cookie_secret"]
    )
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as archive:
        assert sorted(archive.getnames()) == ["jupyterhub.sqlite", "jupyterhub_cookie_secret", "oauth-names.json"]
        archive.extract("jupyterhub.sqlite", tmp_path / "out")
    with sqlite3.connect(tmp_path / "out" / "jupyterhub.sqlite") as db:
        assert db.execute("select v from t").fetchall() == [("kept",)]
    assert sorted(p.name for p in state.iterdir()) == [
        "jupyterhub.sqlite",
        "jupyterhub_cookie_secret",
        "oauth-names.json",
    ]
    # With PostgreSQL, postgres dumps the database: the secrets alone.
    out = io.BytesIO()
    state_archive.archive_state(out, str(state), "postgresql:hub", "none.json", ["jupyterhub_cookie_secret"])
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as archive:
        assert archive.getnames() == ["jupyterhub_cookie_secret"]
