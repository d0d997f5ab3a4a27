"""People as code on a real Ubuntu 24.04 hub: groups (Unix and the hub's), shared course
folders, off-boarding of a user with a running server and files, and the inputs refused
before any host changes.

Tests run in file order on one host."""

from __future__ import annotations

import json

import pytest

from tests import harness
from tests.e2e.conftest import USERS, plain_hub, run_pyinfra, write_inventory
from tests.e2e.hub_client import HubClient

PEOPLE = {**USERS, "carol": "carol-password"}
NLP, COURSE = "/srv/data/nlp", "/srv/share/ml-2026"
SETTINGS = {
    "jh_users": [{"name": n, "password_hash": harness.password_hash(p)} for n, p in PEOPLE.items()],
    "jh_groups": {"ml-2026": ["alice", "bob"]},
    "jh_shared_dirs": [
        {"path": NLP, "mode": "read-only"},
        {"path": COURSE, "group": "ml-2026", "mode": "group-writable"},
    ],
}
ARCHIVES = "/var/backups/jupyterhub-offboard"


def deploy(host, workdir, name: str, *args: str, **overrides):
    settings = plain_hub(host, **{**SETTINGS, **overrides})
    return run_pyinfra(write_inventory(workdir / f"{name}.py", [(host.name, settings)]), *args)


def logged_in(host, name: str) -> HubClient:
    user = HubClient(f"http://{host.address}:8000")
    assert user.login(name, PEOPLE[name]).status_code == 302, host.journal()
    user.create_token()
    return user


@pytest.fixture(scope="module")
def people(start, workdir):
    host = start("noble", "jhd-test-people")
    result = deploy(host, workdir, "people")
    assert result.returncode == 0, result.stderr[-4000:]
    return host


def test_groups_are_unix_groups_and_hub_groups(people):
    assert people.sh("getent group ml-2026").strip().split(":")[3] == "alice,bob"
    group = logged_in(people, "alice").api("GET", "/hub/api/groups/ml-2026").json()
    assert sorted(group["users"]) == ["alice", "bob"]


def test_shared_folders_have_their_owners_modes_and_links(people):
    assert people.sh(f"stat -c '%U %G %a' {NLP} {COURSE}").split("\n")[:2] == ["root root 755", "root ml-2026 3770"]
    links = people.sh("for h in alice bob carol; do ls -l /home/$h | awk '/->/ {print $9, $11}'; done").split("\n")
    assert [line for line in links if line] == [
        f"ml-2026 {COURSE}",
        f"nlp {NLP}",
        f"ml-2026 {COURSE}",
        f"nlp {NLP}",
        f"nlp {NLP}",
    ]


def test_group_members_change_each_others_files_and_others_cannot_read(people):
    """Through their own servers' kernels: the umask the helper gives them makes files the group's."""
    alice, bob = logged_in(people, "alice"), logged_in(people, "bob")
    for user in (alice, bob):
        user.start_server()
    alice.run_code("open('ml-2026/notes.txt', 'w').write('from alice\\n')")
    assert bob.run_code(
        "open('ml-2026/notes.txt', 'a').write('and bob\\n'); print(open('ml-2026/notes.txt').read())"
    ) == ("from alice\nand bob\n\n")
    assert people.sh(f"stat -c '%U %G %a' {COURSE}/notes.txt").strip() == "alice ml-2026 664"
    out = people.sh(f"runuser -u carol -- cat {COURSE}/notes.txt 2>&1; echo exit=$?", check=False)
    assert "Permission denied" in out and "exit=1" in out
    for name in PEOPLE:
        out = people.sh(f"runuser -u {name} -- touch {NLP}/mine 2>&1; echo exit=$?", check=False)
        assert "exit=1" in out, (name, out)
    people.sh(f"echo corpus > {NLP}/README")
    assert people.sh("runuser -u carol -- cat /home/carol/nlp/README") == "corpus\n"


def test_bad_people_settings_stop_the_run_before_any_change(people, workdir):
    people.sh("mkdir -p /srv/alice-owned && chown alice /srv/alice-owned && useradd -m dave")
    before = people.snapshot("/srv", "/etc/group", "/etc/passwd", "/home")
    cases = {
        "jh_users: alice is in jh_admin_users and cannot be off-boarded": {
            "jh_admin_users": ["alice"],
            "jh_users": [{"name": "alice", "state": "absent"}],
        },
        "jh_groups[ml-2026]: erin is neither in jh_users nor an account on this host": {
            "jh_groups": {"ml-2026": ["alice", "erin"]}
        },
        "jh_shared_dirs[0]: /srv/alice-owned is not a folder only root can change": {
            "jh_shared_dirs": [{"path": "/srv/alice-owned/data", "mode": "read-only"}]
        },
        "jh_users[0]: dave is not in jupyterhub-users, so not a hub user this deploy may remove": {
            "jh_users": [{"name": "dave", "state": "absent"}]
        },
        "jh_authenticator: Input should be 'pam', 'ldap', 'oidc', 'github', 'lti13' or 'native'": {
            "jh_authenticator": "kerberos"
        },
        "jh_oidc[issuer]: must be an https:// URL": {
            "jh_authenticator": "oidc",
            "jh_oidc": {"issuer": "http://idp.example.org", "client_id": "hub", "client_secret_file": "/etc/hostname"},
        },
        "jh_oidc[client_secret_file]: Path does not point to a file": {
            "jh_authenticator": "oidc",
            "jh_oidc": {"issuer": "https://idp.example.org", "client_id": "hub", "client_secret_file": "/nonexistent"},
        },
        "jh_groups: ml-2026 lists carol, off-boarded (state absent)": {
            "jh_users": [{"name": "carol", "state": "absent"}],
            "jh_groups": {"ml-2026": ["carol"]},
        },
    }
    for expected, overrides in cases.items():
        result = deploy(people, workdir, "bad-people", **overrides)
        assert result.returncode != 0 and expected in result.stderr, (expected, result.stderr[-2000:])
    assert people.snapshot("/srv", "/etc/group", "/etc/passwd", "/home") == before
    people.sh("rm -r /srv/alice-owned && userdel -r dave")


def test_offboarding_archives_the_home_and_removes_the_person(people, workdir):
    carol, alice = logged_in(people, "carol"), logged_in(people, "alice")
    carol.start_server()
    people.sh("runuser -u carol -- sh -c 'echo chapter one > /home/carol/thesis.txt'")
    alice.api("POST", "/hub/api/groups/by-hand").raise_for_status()
    leaving = {
        "jh_users": [
            *SETTINGS["jh_users"][:2],
            {"name": "carol", "state": "absent"},
        ],
        "jh_groups": {"ml-2026": ["alice"]},
    }
    before = people.snapshot("/home", "/etc/passwd", "/etc/group")
    preview = deploy(people, workdir, "offboard", "--dry", **leaving)
    assert preview.returncode == 0, preview.stderr[-3000:]
    assert "off-boarding carol (homes archived to /var/backups/jupyterhub-offboard)" in preview.stderr
    assert any(name.startswith("Off-board carol") for name in preview.planned_operations())
    assert people.snapshot("/home", "/etc/passwd", "/etc/group") == before
    assert carol.server() is not None

    result = deploy(people, workdir, "offboard", **leaving)
    assert result.returncode == 0, result.stderr[-3000:]
    [archive] = people.sh(f"ls {ARCHIVES}").split()
    assert archive.startswith("carol-") and archive.endswith(".tar.gz")
    assert people.sh(f"stat -c '%U %a' {ARCHIVES} {ARCHIVES}/{archive}").split() == ["root", "700", "root", "600"]
    assert "./thesis.txt" in people.sh(f"tar -tzf {ARCHIVES}/{archive}").split()
    assert people.sh("getent passwd carol; ls -d /home/carol 2>&1; echo", check=False).startswith("ls: cannot access")
    assert people.sh("systemctl is-active jupyter-singleuser@carol.service", check=False).strip() != "active"
    assert alice.api("GET", "/hub/api/users/carol").status_code == 404
    assert carol.api("GET", "/hub/api/user").status_code == 403
    # Groups follow the settings; a group made in the hub by hand is not the deploy's to delete.
    groups = {g["name"]: sorted(g["users"]) for g in alice.api("GET", "/hub/api/groups").json()}
    assert groups == {"ml-2026": ["alice"], "by-hand": []}
    assert people.sh("getent group ml-2026").strip().split(":")[3] == "alice"

    again = deploy(people, workdir, "offboard", **leaving)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.totals["success"] == 0, again.changed_operations()
    assert json.loads(alice.api("GET", "/hub/api/groups/ml-2026").text)["users"] == ["alice"]
