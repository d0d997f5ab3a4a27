"""LTI 1.3 logins' settings (jh_authenticator = "lti13"): bad input refused before any change,
naming the setting; what the hub gets of good input (hub.json's login)."""

import base64
import hashlib
import json
from pathlib import PurePosixPath

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tasks import hub_data, logins
from tasks.settings import Settings, SettingsError
from tests.unit.test_templates import NOBLE

ISSUER = "https://canvas.instructure.com"


def pem(key, password: bytes | None = None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """The tool's key, and the wrong things in its place."""
    folder = tmp_path_factory.mktemp("keys")
    files = {
        "tool.pem": pem(rsa.generate_private_key(65537, 2048)),
        "small.pem": pem(rsa.generate_private_key(65537, 1024)),
        "large.pem": pem(rsa.generate_private_key(65537, 4160)),
        "ec.pem": pem(ec.generate_private_key(ec.SECP256R1())),
        "encrypted.pem": pem(rsa.generate_private_key(65537, 2048), b"passphrase"),
        "empty.pem": b"",
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


@pytest.fixture
def lti(keys):
    return {
        "jh_authenticator": "lti13",
        "jh_domain": "hub.example.org",
        "jh_users": [{"name": "prof", "account": "b7e1c2d4"}],
        "jh_admin_users": ["prof"],
        "jh_lti13": {
            "issuer": ISSUER,
            "client_id": "10000000000042",
            "deployment_ids": ["42:8f2a61c7"],
            "authorization_endpoint": "https://sso.canvaslms.com/api/lti/authorize_redirect",
            "jwks_url": "https://sso.canvaslms.com/api/lti/security/jwks",
            "token_url": "https://sso.canvaslms.com/login/oauth2/token",
            "tool_key_file": str(keys / "tool.pem"),
            "courses": {"8f2a61c7": "ml-2026", "c0ffee": "stats_101"},
        },
    }


def refused(data: dict) -> str:
    with pytest.raises(SettingsError) as error:
        Settings.from_data(data)
    message = str(error.value)
    assert message.startswith("invalid settings (no host was changed):")
    return message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"issuer": "http://canvas.instructure.com"}, "jh_lti13[issuer]: must be an https:// URL"),
        ({"issuer": "https://lms.example.org/?tenant=1"}, "jh_lti13[issuer]: must have no query"),
        ({"issuer": "https://lms.example.org\n"}, "jh_lti13[issuer]: must be an http(s) URL"),
        ({"issuer": "lms.example.org"}, "jh_lti13[issuer]: must be an https:// URL"),
        ({"jwks_url": "http://lms.example.org/jwks"}, "jh_lti13[jwks_url]: must be an https:// URL"),
        ({"token_url": "ftp://lms.example.org/token"}, "jh_lti13[token_url]"),
        ({"client_id": "tool\nimport os"}, "jh_lti13[client_id]: must be the platform's id"),
        ({"deployment_ids": []}, "jh_lti13[deployment_ids]: List should have at least 1 item"),
        ({"deployment_ids": ["1 2"]}, "jh_lti13[deployment_ids][0]: must be the platform's id"),
        ({"username_claim": "name'); import os; ('"}, "jh_lti13[username_claim]: must be a claim name"),
        # Claims the person edits at the platform would let them pick a name.
        ({"username_claim": "name"}, "jh_lti13[username_claim]: must be a custom parameter's claim (custom_NAME"),
        ({"username_claim": "email"}, "the person's to edit"),
        ({"username_claim": "given_name"}, "jh_lti13[username_claim]: must be a custom parameter's claim"),
        ({"username_claim": "custom_"}, "jh_lti13[username_claim]: must be a custom parameter's claim"),
        ({"courses": {"8f2a61c7": "ML-2026"}}, "jh_lti13[courses][8f2a61c7]: must be a course name"),
        ({"courses": {"8f2a61c7": "ml 2026"}}, "jh_lti13[courses][8f2a61c7]: must be a course name"),
        ({"courses": {"8f2a61c7": "2026-ml"}}, "jh_lti13[courses][8f2a61c7]: must be a course name"),
        ({"courses": {"8f2a61c7": "machine-learning-fall-2026"}}, "jh_lti13[courses][8f2a61c7]: must be a course"),
        ({"courses": {"8f2a61c7": "systemd"}}, "jh_lti13[courses][8f2a61c7]: 'systemd-students' is a system"),
        ({"courses": {"bad context": "ml-2026"}}, "jh_lti13[courses][bad context]"),
        ({"tool_key_file": "/nonexistent/tool.pem"}, "jh_lti13[tool_key_file]: Path does not point to a file"),
        ({"secret": "x"}, "jh_lti13[secret]: unknown key here"),
    ],
)
def test_bad_lti_settings_are_refused_naming_the_setting(lti, change, expected):
    assert expected in refused({**lti, "jh_lti13": {**lti["jh_lti13"], **change}})


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("small.pem", "must be an RSA key of 2048 to 4096 bits"),
        # Larger keys cost every signature (and parsing them) more.
        ("large.pem", "must be an RSA key of 2048 to 4096 bits"),
        ("ec.pem", "must be an RSA key of 2048 to 4096 bits"),
        ("encrypted.pem", "holds an encrypted private key: the tool needs it without a passphrase"),
        ("empty.pem", "jh_lti13[tool_key_file]"),
    ],
)
def test_the_tool_key_must_be_an_unencrypted_rsa_key(lti, keys, key, expected):
    message = refused({**lti, "jh_lti13": {**lti["jh_lti13"], "tool_key_file": str(keys / key)}})
    assert "jh_lti13[tool_key_file]" in message and expected in message
    assert "PRIVATE KEY-----\n" not in message


def test_lti_needs_its_settings_a_domain_and_someone_to_let_in(lti):
    assert 'jh_lti13 is needed with jh_authenticator = "lti13"' in refused({"jh_authenticator": "lti13"})
    assert 'jh_lti13 is needed with jh_authenticator = "lti13", and only then' in refused(
        {**lti, "jh_authenticator": "pam"}
    )
    assert "jh_lti13 needs jh_domain" in refused({**lti, "jh_domain": None})
    nobody = {**lti, "jh_users": [], "jh_admin_users": [], "jh_lti13": {**lti["jh_lti13"], "courses": {}}}
    assert "jh_lti13: give courses or jh_users, or nobody may log in" in refused(nobody)


def test_an_admin_needs_the_platform_account_its_name_belongs_to(lti):
    message = refused({**lti, "jh_users": [{"name": "prof"}]})
    assert "jh_admin_users: prof needs its provider account in jh_users" in message


def test_a_course_s_groups_are_the_launches_not_jh_groups(lti):
    message = refused({**lti, "jh_groups": {"ml-2026-staff": ["prof"]}})
    assert "the course ml-2026 has the group ml-2026-staff" in message


def test_the_hub_gets_the_platform_the_courses_and_the_key_s_place_on_the_host(lti, keys):
    settings = Settings.from_data(lti)
    text = hub_data.hub_json(settings, NOBLE, 1000, {})
    assert "PRIVATE KEY" not in text
    data = json.loads(text)
    login = data["login"]
    assert login["kind"] == "lti13"
    options = login["options"]
    # The issuer as the launches carry it: no / added.
    assert options["issuer"] == ISSUER
    # The tool's public JWK (its kid the RFC 7638 thumbprint), not the private key or its place.
    assert "tool_key_file" not in options
    key = serialization.load_pem_private_key((keys / "tool.pem").read_bytes(), None).public_key().public_numbers()
    jwk = options["tool_jwk"]
    assert set(jwk) == {"kty", "n", "e", "kid", "alg", "use"} and jwk["alg"] == "RS256"
    assert int.from_bytes(base64.urlsafe_b64decode(jwk["n"] + "=="), "big") == key.n
    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True)
    assert jwk["kid"] == base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    assert options["courses"] == {"8f2a61c7": "ml-2026", "c0ffee": "stats_101"}
    assert options["courses_file"] == "/opt/jupyter/state/lti-courses.json"
    assert options["names_file"] == "/opt/jupyter/state/oauth-names.json"
    assert options["username_claim"] == "custom_username"
    # The platform's account is its sub within its issuer.
    assert options["bound_names"] == {"prof": f"{ISSUER} b7e1c2d4"}
    assert login["allowed_users"] == ["prof"] and login["admin_users"] == ["prof"]
    # Its people get accounts at their first start, like OpenID Connect's.
    assert data["servers"]["create_accounts"] is True


def uploads(monkeypatch, settings: Settings) -> list:
    """The files logins.apply uploads (args, kwargs), as a sudo user would have them staged."""
    made = []
    monkeypatch.setattr(logins, "directory", lambda *args, **kwargs: None)
    monkeypatch.setattr(logins, "entry", lambda path: "endpoints")
    monkeypatch.setattr(logins, "private_transfer", lambda: {"_temp_dir": "/home/deploy/.jupyterhub-deploy-transfer"})
    monkeypatch.setattr(logins, "root_file", lambda *args, **kwargs: made.append((args, kwargs)))
    logins.apply(settings, PurePosixPath("/opt/jupyter/server-env"))
    return made


def test_the_tool_key_is_root_s_alone_on_the_host(lti, monkeypatch):
    """The hub has the public JWK only: the private key is uploaded 0600 root:root."""
    settings = Settings.from_data(lti)
    [(args, kwargs)] = uploads(monkeypatch, settings)
    assert args[2] == settings.layout.lti_tool_key
    assert kwargs["mode"] == "600" and kwargs.get("group", "root") == "root" and kwargs.get("user", "root") == "root"


def test_secrets_are_never_staged_in_a_readable_temporary_file(lti, keys, monkeypatch):
    """Connected as a sudo user, pyinfra stages uploads in /tmp, readable by others, unless told a
    private folder (tasks.ops.private_transfer): the tool key and the OAuth client secret."""
    (keys / "secret").write_text("s3cret\n")
    github = {
        "jh_authenticator": "github",
        "jh_domain": "hub.example.org",
        "jh_github": {
            "client_id": "Iv1.0123",
            "client_secret_file": str(keys / "secret"),
            "allowed_organizations": ["lab"],
        },
    }
    for data in (lti, github):
        [(_, kwargs)] = uploads(monkeypatch, Settings.from_data(data))
        assert kwargs["_temp_dir"] == "/home/deploy/.jupyterhub-deploy-transfer", data["jh_authenticator"]


def test_a_tool_key_others_could_swap_is_refused(lti, keys, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o775)
    (shared / "tool.pem").write_bytes((keys / "tool.pem").read_bytes())
    lti["jh_lti13"]["tool_key_file"] = str(shared / "tool.pem")
    with pytest.raises(SettingsError, match=r"jh_lti13\[tool_key_file\]: .*shared may be changed by others"):
        Settings.from_data(lti)
