"""People as code: the settings' rules, the host checks before off-boarding, groups and shared
folders, and the command lines the deploy builds for them."""

import json
import shlex

import pytest

from tasks import hub, hub_data, people
from tasks.preflight import account_problems, home_problems, path_problems
from tasks.settings import Settings, SettingsError
from tests.unit.test_preflight import GROUPS, USERS, account
from tests.unit.test_templates import NOBLE, hub_data_of, visudo
from tests.unit.test_user_servers import helper

SHARED = [
    {"path": "/srv/data/nlp", "mode": "read-only"},
    {"path": "/srv/share/ml-2026", "group": "ml-2026", "mode": "group-writable"},
]


def refused(data: dict) -> str:
    with pytest.raises(SettingsError) as error:
        Settings.from_data(data)
    return str(error.value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"jh_users": [{"name": "alice", "state": "absent"}], "jh_admin_users": ["alice"]},
            "jh_users: alice is in jh_admin_users and cannot be off-boarded",
        ),
        (
            {"jh_users": [{"name": "alice", "state": "gone"}]},
            "jh_users[0][state]: Input should be 'present' or 'absent'",
        ),
        (
            {"jh_users": [{"name": "alice", "state": "absent", "password_hash": "$6$a$" + "b" * 86}]},
            "alice is absent: drop its password_hash",
        ),
        ({"jh_users": [{"name": "jupyter", "state": "absent"}]}, "the hub's own account 'jupyter' cannot be"),
        (
            {"jh_users": [{"name": "carol", "state": "absent"}], "jh_groups": {"ml": ["alice", "carol"]}},
            "jh_groups: ml lists carol, off-boarded (state absent)",
        ),
        ({"jh_groups": {"sudo": ["alice"]}}, "'sudo' is a privileged group"),
        ({"jh_groups": {"ml\n": ["alice"]}}, "jh_groups"),
        ({"jh_groups": {"ml": ["alice;reboot"]}}, "jh_groups[ml][0]"),
        ({"jh_groups": {"jupyterhub-users": []}}, "is the login group, the hub's account or a user's own group"),
        ({"jh_users": [{"name": "alice"}], "jh_groups": {"alice": []}}, "a user's own group"),
        ({"jh_shared_dirs": [{"path": "/srv/x", "mode": "group-writable"}]}, "a group-writable folder needs a group"),
        ({"jh_shared_dirs": [{"path": "/srv/x", "mode": "public"}]}, "jh_shared_dirs[0][mode]"),
        ({"jh_shared_dirs": [{"path": "/home/alice/x", "mode": "read-only"}]}, "must not be /home or below it"),
        ({"jh_shared_dirs": [{"path": "/srv/x/../etc", "mode": "read-only"}]}, "must not contain '..'"),
        ({"jh_shared_dirs": [{"path": "/srv/a b", "mode": "read-only"}]}, "letters, digits"),
        (
            {
                "jh_shared_dirs": [
                    {"path": "/srv/data", "mode": "read-only"},
                    {"path": "/srv/data/x", "mode": "read-only"},
                ]
            },
            "/srv/data and /srv/data/x overlap",
        ),
        ({"jh_shared_dirs": [{"path": "/opt/jupyter/data", "mode": "read-only"}]}, "overlaps jh_install_root"),
        (
            {
                "jh_shared_dirs": [
                    {"path": "/srv/a/data", "mode": "read-only"},
                    {"path": "/srv/b/data", "mode": "read-only"},
                ]
            },
            "two folders have the same name",
        ),
        (
            {"jh_shared_dirs": [{"path": "/srv/x", "group": "ml", "mode": "read-only"}]},
            "names the group ml, which is neither in jh_groups nor jh_users_group",
        ),
        ({"jh_offboard_dir": "/home/archive"}, "jh_offboard_dir: must not be /home or below it"),
        ({"jh_offboard_dir": "/tmp/archive"}, "must not be /tmp or below it"),
        ({"jh_offboard_dir": "/var"}, "two levels down at least"),
        ({"jh_offboard_dir": "/opt/jupyter/offboard"}, "jh_offboard_dir must be outside jh_install_root"),
        ({"jh_offboard_dir": "relative/dir"}, "must be an absolute path"),
    ],
)
def test_bad_people_settings_are_refused_naming_the_setting(data, expected):
    assert expected in refused(data)


def test_people_settings():
    settings = Settings.from_data(
        {
            "jh_users": [{"name": "alice"}, {"name": "bob"}, {"name": "carol", "state": "absent"}],
            "jh_groups": {"ml-2026": ["alice"]},
            "jh_shared_dirs": SHARED,
        }
    )
    assert [u.name for u in settings.present_users] == ["alice", "bob"]
    assert [u.name for u in settings.absent_users] == ["carol"]
    nlp, course = settings.shared_dirs
    assert people.readers(settings, nlp) == ["alice", "bob"]
    assert people.readers(settings, course) == ["alice"]
    assert course.link_name == "ml-2026"


HUB_HOST = {
    **USERS,
    "alice": account(1001, "alice", ["jupyterhub-users"]),
    "carol": account(1003, "carol", ["jupyterhub-users"], home="/home/carol"),
    "dave": account(1004, "dave", home="/home/dave"),
    "erin": account(1005, "erin", ["jupyterhub-users"], home="/"),
}
HUB_GROUPS = {**GROUPS, "jupyterhub-users": (1001, ["alice", "carol", "erin"]), "ml-2026": (1500, [])}


def host_problems(**data) -> list[str]:
    return account_problems(Settings.from_data(data), HUB_HOST, HUB_GROUPS, {"UID_MIN": 1000, "GID_MIN": 1000})


def test_only_hub_users_with_a_home_of_their_own_are_offboarded():
    assert host_problems(jh_users=[{"name": "carol", "state": "absent"}]) == []
    # Gone already: nothing to do, nothing to refuse.
    assert host_problems(jh_users=[{"name": "frank", "state": "absent"}]) == []
    assert host_problems(jh_users=[{"name": "dave", "state": "absent"}]) == [
        "jh_users[0]: dave is not in jupyterhub-users, so not a hub user this deploy may remove"
    ]
    assert host_problems(jh_users=[{"name": "erin", "state": "absent"}]) == [
        "jh_users[0]: erin's home is /, not a folder of its own to archive and remove"
    ]


def test_groups_hold_known_people_and_are_no_system_groups():
    assert host_problems(jh_users=[{"name": "bob"}], jh_groups={"ml-2026": ["alice", "bob"]}) == []
    assert host_problems(jh_groups={"ml-2026": ["zoe"]}) == [
        "jh_groups[ml-2026]: zoe is neither in jh_users nor an account on this host"
    ]
    # A system group the static checks do not know (a package's): the host's gid tells.
    problems = account_problems(
        Settings.from_data({"jh_groups": {"lxd-like": []}}),
        HUB_HOST,
        {**HUB_GROUPS, "lxd-like": (110, [])},
        {"UID_MIN": 1000, "GID_MIN": 1000},
    )
    assert problems == ["jh_groups: lxd-like is a system group on this host (gid 110)"]


def root_dir(mode=0o755, user="root", kind="d"):
    return (kind, mode, user, "root", None, None)


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ({"/": root_dir(), "/srv": root_dir()}, []),
        ({"/": root_dir(), "/srv": root_dir(), "/srv/share": root_dir(user="alice")}, ["/srv/share is not a folder"]),
        (
            {"/": root_dir(), "/srv": root_dir(0o777)},
            ["/srv is not a folder only root can change (d, owner root, mode 777)"],
        ),
        ({"/": root_dir(), "/srv": root_dir(kind="l")}, ["/srv is not a folder"]),
        (
            {"/": root_dir(), "/srv": root_dir(), "/srv/share": root_dir(), "/srv/share/ml-2026": root_dir(kind="f")},
            ["/srv/share/ml-2026 exists and is not a folder"],
        ),
    ],
)
def test_shared_folders_are_made_through_root_folders_only(states, expected):
    settings = Settings.from_data({"jh_groups": {"ml-2026": []}, "jh_shared_dirs": SHARED[1:]})
    problems = path_problems(settings, states)
    assert len(problems) == len(expected)
    for problem, text in zip(problems, expected, strict=True):
        assert problem.startswith("jh_shared_dirs[0]: ") and text in problem


def test_hub_people_runs_as_the_hub_user_with_its_token():
    settings = Settings.from_data({})
    argv = shlex.split(people.hub_people(settings, "sync-groups", '{"ml": ["alice"]}'))
    assert argv[:4] == ["runuser", "-u", "jupyter", "--"]
    assert argv[4:7] == ["/opt/jupyter/libexec/with-secret", "/opt/jupyter/state/deploy.env", "JUPYTERHUB_API_TOKEN"]
    assert argv[7:] == [
        "/opt/jupyter/.venv/bin/hubside-people",
        "http://127.0.0.1:8081/hub/api",
        "sync-groups",
        '{"ml": ["alice"]}',
    ]


def test_servers_of_users_with_their_own_group_make_group_writable_files(monkeypatch):
    entry = type("Entry", (), {"pw_name": "alice", "pw_gid": 1001})()
    monkeypatch.setattr(helper.grp, "getgrgid", lambda gid: type("Group", (), {"gr_name": "alice"})())
    server = "/opt/jupyter/envs/x/bin/jupyterhub-singleuser"
    assert helper.server_command(entry, "/opt/jupyter/envs/x") == [
        "/bin/sh",
        "-c",
        'umask 0002 && exec "$0" "$@"',
        server,
    ]
    # A primary group shared with others (users, an LDAP group): files stay the user's alone.
    monkeypatch.setattr(helper.grp, "getgrgid", lambda gid: type("Group", (), {"gr_name": "users"})())
    assert helper.server_command(entry, "/opt/jupyter/envs/x") == [server]


LDAP = {
    "jh_authenticator": "ldap",
    "jh_users": [{"name": "lena"}],
    "jh_admin_users": ["lena"],
    "jh_ldap": {
        "server": "ldap.example.org",
        "bind_dn_template": "uid={username},ou=people,dc=example,dc=org",
        "allowed_groups": ["cn=ml-2026,ou=groups,dc=example,dc=org"],
    },
}


@pytest.mark.parametrize(
    ("ldap", "expected"),
    [
        ({"bind_dn_template": "uid={username}"}, "jh_ldap[bind_dn_template]: must be the DN a user binds as"),
        ({"bind_dn_template": "uid=x{username},dc=org"}, "with {username} as one whole value"),
        ({"bind_dn_template": "uid={username},dc=org)(uid=*"}, "jh_ldap[bind_dn_template]"),
        ({"bind_dn_template": "uid={username},dc=org\nx"}, "jh_ldap[bind_dn_template]"),
        ({"allowed_groups": ['cn=ml,dc=org")\nimport os']}, "jh_ldap[allowed_groups][0]: must be an LDAP DN"),
        ({"server": "ldap://ldap.example.org"}, "jh_ldap[server]: must be a DNS name"),
        ({"tls": "none"}, "jh_ldap[tls]: Input should be 'starttls' or 'ldaps'"),
        ({"bind_dn_password": "x"}, "jh_ldap[bind_dn_password]: unknown key here"),
    ],
)
def test_bad_ldap_settings_are_refused(ldap, expected):
    assert expected in refused({**LDAP, "jh_ldap": {**LDAP["jh_ldap"], **ldap}})


def test_ldap_needs_its_settings_and_someone_to_let_in():
    assert 'jh_ldap is needed with jh_authenticator = "ldap"' in refused({"jh_authenticator": "ldap"})
    assert "and only then" in refused({"jh_ldap": LDAP["jh_ldap"]})
    assert "jh_authenticator: Input should be 'pam', 'ldap', 'oidc', 'github', 'lti13' or 'native'" in refused(
        {"jh_authenticator": "kerberos"}
    )
    nobody = {**LDAP, "jh_users": [], "jh_admin_users": [], "jh_ldap": {**LDAP["jh_ldap"], "allowed_groups": []}}
    assert "jh_ldap: give allowed_groups or jh_users" in refused(nobody)


def test_ldap_hub_data_checks_the_servers_certificate_and_name():
    settings = Settings.from_data({**LDAP, "jh_ldap": {**LDAP["jh_ldap"], "tls": "ldaps"}})
    login = hub_data_of(settings)["login"]
    assert login["kind"] == "ldap"
    assert login["options"] == {
        "server": "ldap.example.org",
        "port": 636,
        "tls": "ldaps",
        "bind_dn_template": "uid={username},ou=people,dc=example,dc=org",
        "allowed_groups": ["cn=ml-2026,ou=groups,dc=example,dc=org"],
        "ca_bundle": "/etc/ssl/certs/ca-certificates.crt",
        "username_pattern": "^[a-z_][a-z0-9_-]{0,31}$",
    }
    assert login["allowed_users"] == ["lena"]
    assert hub_data_of(settings)["servers"]["create_accounts"] is True
    assert hub_data_of(Settings.from_data({}))["login"]["kind"] == "pam"


def test_only_a_directory_hub_may_have_the_helper_make_accounts(tmp_path):
    helper_path = "/opt/jupyter/libexec/user-server"
    for data, create in (({}, False), (LDAP, True)):
        settings = Settings.from_data(data)
        rule = hub.sudoers_rule(settings)
        assert (f", {helper_path} create *\n" in rule) is create
        (tmp_path / "rule").write_text(rule)
        assert visudo(tmp_path / "rule").returncode == 0
        assert hub_data_of(settings)["user_servers"]["create_accounts"] is create


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("root", "no-op"),  # exists: left to start's checks
        ("sudo", "is a system name"),
        ("systemd-x", "is a system name"),
        ("Alice", "not a user name"),
        ("a;b", "not a user name"),
        ("jupyter", "is a system name"),
    ],
)
def test_the_helper_makes_no_account_of_a_system_name(monkeypatch, name, why):
    config = hub_data_of(Settings.from_data(LDAP))["user_servers"]
    monkeypatch.setattr(helper.subprocess, "call", lambda argv: pytest.fail(f"ran {argv}"))
    monkeypatch.setattr(helper.pwd, "getpwnam", lambda n: object() if n == "root" else (_ for _ in ()).throw(KeyError))
    if why == "no-op":
        assert helper.create(config, name) == 0
        return
    with pytest.raises(helper.Refused) as refusal:
        helper.create(config, name)
    assert why in str(refusal.value)
    pam = hub_data_of(Settings.from_data({}))["user_servers"]
    with pytest.raises(helper.Refused, match="accounts are made by the deploy here"):
        helper.create(pam, "newcomer")


@pytest.fixture
def oidc(tmp_path):
    secret = tmp_path / "client-secret"
    secret.write_text("s3cret-value\n")
    return {
        "jh_authenticator": "oidc",
        "jh_domain": "hub.example.org",
        "jh_users": [{"name": "olivia"}],
        "jh_oidc": {
            "issuer": "https://login.example.org/realms/uni",
            "client_id": "jupyterhub",
            "client_secret_file": str(secret),
            "allowed_groups": ["ml-2026"],
        },
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"issuer": "http://login.example.org"}, "jh_oidc[issuer]: must be an https:// URL"),
        ({"issuer": "https://user:pw@login.example.org"}, "must not hold a user name or password"),
        ({"client_id": "hub\nimport os"}, "jh_oidc[client_id]: must be letters, digits"),
        ({"client_secret_file": "/nonexistent/secret"}, "jh_oidc[client_secret_file]: Path does not point to a file"),
        ({"scopes": ["profile"]}, "scopes must include openid"),
        ({"allowed_groups": ["ml 2026"]}, "jh_oidc[allowed_groups][0]: must be a group name"),
        ({"username_claim": "name'); import os; ('"}, "jh_oidc[username_claim]: must be a claim name"),
    ],
)
def test_bad_oidc_settings_are_refused(oidc, change, expected):
    assert expected in refused({**oidc, "jh_oidc": {**oidc["jh_oidc"], **change}})


def test_oidc_needs_a_domain_and_a_secret_file_that_holds_a_secret(oidc, tmp_path):
    assert "jh_oidc needs jh_domain" in refused({**oidc, "jh_domain": None})
    (tmp_path / "client-secret").write_text("line one\nline two\n")
    assert "must hold the secret alone" in refused(oidc)
    (tmp_path / "client-secret").write_text("")
    assert "must hold the secret alone" in refused(oidc)


def test_oidc_hub_data_names_the_secret_and_endpoints_files_on_the_host(oidc):
    settings = Settings.from_data(oidc)
    text = hub_data.hub_json(settings, NOBLE, 1000, {})
    assert "s3cret-value" not in text
    login = json.loads(text)["login"]
    assert login["kind"] == "oidc"
    assert login["options"]["endpoints_file"] == str(
        settings.layout.oidc_endpoints("https://login.example.org/realms/uni")
    )
    assert login["options"]["client_secret_file"] == "/opt/jupyter/auth/oauth-client-secret"
    assert login["options"]["callback_url"] == "https://hub.example.org/hub/oauth_callback"
    assert login["options"]["names_file"] == "/opt/jupyter/state/oauth-names.json"
    assert login["options"]["allowed_groups"] == ["ml-2026"]
    assert json.loads(text)["servers"]["create_accounts"] is True


def test_a_home_that_is_not_its_persons_own_folder_is_not_offboarded():
    settings = Settings.from_data({"jh_users": [{"name": "carol", "state": "absent"}]})
    mine = {"/home/carol": ("d", 0o700, "carol", "carol", None, None)}
    assert home_problems(settings, HUB_HOST, mine) == []
    assert home_problems(settings, HUB_HOST, {}) == []  # no home left: the account alone goes
    shared = {"/home/carol": ("d", 0o755, "root", "root", None, None)}
    assert home_problems(settings, HUB_HOST, shared) == [
        "jh_users[0]: carol's home /home/carol is not their own folder (d, owner root); archive and remove it by hand"
    ]
    link = {"/home/carol": ("l", 0o777, "carol", "carol", "/srv", None)}
    assert "(l, owner carol)" in home_problems(settings, HUB_HOST, link)[0]


def test_native_sign_up_needs_the_release_that_has_it(tmp_path):
    assert 'jh_authenticator = "native" needs jupyterhub-nativeauthenticator' in refused({"jh_authenticator": "native"})
    settings = Settings.from_data({"jh_authenticator": "native", "jh_server_release": "jupyterhub-5"})
    data = hub_data_of(settings)
    assert data["login"] == {
        "kind": "native",
        "options": {"username_pattern": "^[a-z_][a-z0-9_-]{0,31}$"},
        "allowed_users": None,
        "admin_users": [],
    }
    assert data["servers"]["create_accounts"] is True


def test_github_logins(oidc, tmp_path):
    github = {
        "jh_authenticator": "github",
        "jh_domain": "hub.example.org",
        "jh_github": {
            "client_id": "Iv1.0123abcd",
            "client_secret_file": oidc["jh_oidc"]["client_secret_file"],
            "allowed_organizations": ["my-lab"],
        },
    }
    text = hub_data.hub_json(Settings.from_data(github), NOBLE, 1000, {})
    login = json.loads(text)["login"]
    assert login["kind"] == "github" and login["options"]["allowed_organizations"] == ["my-lab"]
    assert login["options"]["client_secret_file"] == "/opt/jupyter/auth/oauth-client-secret"
    assert "s3cret-value" not in text and "endpoints_file" not in login["options"]
    bad = {**github, "jh_github": {**github["jh_github"], "allowed_organizations": ["-lab"]}}
    assert "jh_github[allowed_organizations][0]: must be a GitHub organization name" in refused(bad)
    assert "jh_github needs jh_domain" in refused({**github, "jh_domain": None})
    assert 'jh_github is needed with jh_authenticator = "github"' in refused({"jh_authenticator": "github"})
    nobody = {**github, "jh_github": {**github["jh_github"], "allowed_organizations": []}}
    assert "jh_github: give allowed_organizations or jh_users" in refused(nobody)
