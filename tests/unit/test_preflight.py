"""Settings that name privileged accounts or groups on a host are refused before it changes.

The checks run on plain fact values here: the Users fact's shape, and what the deploy's own
facts (LoginDefs, GroupEntries) make of the commands' output.
"""

import subprocess
from pathlib import PurePosixPath

import pytest

from tasks import preflight, snapshot
from tasks.facts import Accounts, GroupEntries, LoginDefs, SudoRights
from tasks.preflight import account_problems, ancestors, check_accounts, home_problems, path_problems, sudo_problems
from tasks.settings import HubUser, Settings, SettingsError

DEFS = {"UID_MIN": 1000, "GID_MIN": 1000}


def account(uid, group, groups=(), home="/home/x", shell="/bin/bash", gid=None):
    """One entry of pyinfra's Users fact (the keys the checks read)."""
    return {
        "uid": uid,
        "gid": uid if gid is None else gid,
        "group": group,
        "groups": list(groups),
        "home": home,
        "shell": shell,
        "comment": None,
        "lastlog": None,
        "login_time": None,
        "password": "",
    }


# A Debian/Ubuntu host: root, a service account, nobody, the operator (Ubuntu's first user).
USERS = {
    "root": account(0, "root", home="/root"),
    "daemon": account(1, "daemon", home="/usr/sbin", shell="/usr/sbin/nologin"),
    "backup": account(34, "backup", home="/var/backups", shell="/usr/sbin/nologin"),
    "nobody": account(65534, "nogroup", home="/nonexistent", shell="/usr/sbin/nologin"),
    "ops": account(1000, "ops", ["adm", "sudo", "lxd"]),
}
GROUPS = {
    "root": (0, []),
    "daemon": (1, []),
    "sys": (3, []),
    "adm": (4, ["syslog", "ops"]),
    "disk": (6, []),
    "kmem": (15, []),
    "sudo": (27, ["ops"]),
    "backup": (34, []),
    "shadow": (42, []),
    "staff": (50, []),
    "users": (100, []),
    "lxd": (110, ["ops"]),
    "docker": (120, []),
    "nogroup": (65534, []),
    "ops": (1000, []),
}


def settings(**data):
    """Settings as the host check sees them. Built without the static checks, which refuse
    some of these names already (both layers refuse them; this tests the host's)."""
    try:
        return Settings.from_data({f"jh_{key}": value for key, value in data.items()})
    except SettingsError:
        users = [HubUser.model_construct(**user) for user in data.pop("users", [])]
        return Settings.model_construct(**data, users=users)


def problems(found=None, groups=None, defs=DEFS, **data):
    """The problems of settings ``data`` on the host above, with ``found`` accounts and ``groups`` added."""
    return account_problems(settings(**data), {**USERS, **(found or {})}, {**GROUPS, **(groups or {})}, defs)


# The hub's account as tasks/system.py makes it, found again by a re-run.
HUB = account(998, "jupyter", ["shadow"], home="/opt/jupyter", shell="/usr/sbin/nologin")
HUB_GROUPS = {"jupyter": (998, []), "shadow": (42, ["jupyter"]), "jupyterhub-users": (1001, ["alice"])}


def test_new_accounts_on_a_fresh_host_are_accepted():
    assert problems(users=[{"name": "alice"}, {"name": "bob"}], admin_users=["alice"]) == []


def test_existing_login_accounts_are_accepted():
    found = {"alice": account(1001, "alice", ["jupyterhub-users"]), "jupyter": HUB}
    assert problems(found, HUB_GROUPS, users=[{"name": "alice"}], admin_users=["alice"]) == []


def test_a_root_like_account_is_refused():
    found = {"toor": account(0, "root", home="/root")}
    assert problems(found, users=[{"name": "alice"}, {"name": "toor"}]) == [
        "jh_users[1]: toor is a system account (uid 0, root's)",
        "jh_users[1]: toor is in the privileged group root",
    ]


def test_a_service_account_below_uid_min_is_refused():
    found = {"svc": account(999, "svc", home="/var/lib/svc", shell="/usr/sbin/nologin")}
    assert problems(found, admin_users=["svc"]) == ["jh_admin_users[0]: svc is a system account (uid 999)"]


def test_nobody_is_refused_under_any_name():
    found = {"nfsnobody": account(65534, "nogroup", shell="/usr/sbin/nologin")}
    assert problems(found, users=[{"name": "nfsnobody"}]) == [
        "jh_users[0]: nfsnobody is a system account (uid 65534, nobody's)"
    ]


def test_uid_min_comes_from_the_host():
    found = {"svc": account(999, "svc")}
    assert problems(found, defs={"UID_MIN": 500, "GID_MIN": 1000}, users=[{"name": "svc"}]) == []
    assert problems(found, defs={"UID_MIN": 5000, "GID_MIN": 1000}, users=[{"name": "svc"}]) == [
        "jh_users[0]: svc is a system account (uid 999)"
    ]


def test_an_admin_in_sudo_is_refused():
    assert problems(admin_users=["ops"]) == [
        "jh_admin_users[0]: ops is in the privileged group adm",
        "jh_admin_users[0]: ops is in the privileged group lxd",
        "jh_admin_users[0]: ops is in the privileged group sudo",
    ]


def test_a_user_in_docker_is_refused():
    found = {"dave": account(1002, "dave", ["docker"])}
    assert problems(found, {"docker": (120, ["dave"])}, users=[{"name": "dave"}]) == [
        "jh_users[0]: dave is in the privileged group docker"
    ]


def test_a_privileged_primary_group_is_refused():
    found = {"erin": account(1003, "staff", gid=50)}
    assert problems(found, users=[{"name": "erin"}]) == ["jh_users[0]: erin is in the privileged group staff"]
    found = {"erin": account(1003, "wheel0", gid=0)}  # gid 0 under another name
    assert problems(found, {"wheel0": (0, [])}, users=[{"name": "erin"}]) == [
        "jh_users[0]: erin is in the privileged group wheel0"
    ]


def test_a_new_account_would_inherit_a_left_over_membership():
    # sudo still lists a removed account: useradd would give the new one its membership.
    assert problems(groups={"sudo": (27, ["ops", "frank"])}, users=[{"name": "frank"}]) == [
        "jh_users[0]: frank is in the privileged group sudo"
    ]


def test_shadow_is_for_the_hub_user_alone():
    found = {"gina": account(1004, "gina", ["shadow"])}
    assert problems(found, users=[{"name": "gina"}]) == ["jh_users[0]: gina is in the privileged group shadow"]


def test_a_new_account_named_after_a_privileged_group_is_refused():
    assert problems(hub_user="docker") == ["jh_hub_user: docker would get the privileged group docker as its own group"]
    assert problems(users=[{"name": "staff"}]) == [
        "jh_users[0]: staff would get the privileged group staff as its own group"
    ]


@pytest.mark.parametrize("group", ["sudo", "adm", "wheel", "docker", "kmem"])
def test_a_privileged_users_group_is_refused_whether_or_not_it_exists(group):
    assert problems(users_group=group) == [
        f"jh_users_group: {group} is a privileged group (its members would get hub logins)"
    ]


def test_a_system_users_group_is_refused():
    assert problems(users_group="users") == ["jh_users_group: users is a system group (gid 100)"]
    assert problems(defs={"UID_MIN": 1000, "GID_MIN": 100}, users_group="users") == []
    assert problems({"jupyter": HUB}, HUB_GROUPS) == []  # an existing login group of the deploy's


def test_privileged_members_already_in_the_users_group_are_refused():
    # The hub may start servers as any member of the group (sudoers), named in the settings or not.
    groups = {"devs": (1005, ["ops", "alice"]), "sudo": (27, ["ops"])}
    found = {"alice": account(1001, "alice", ["devs"]), "svc": account(999, "devs", gid=1005)}
    assert problems(found, groups, users_group="devs", users=[{"name": "alice"}]) == [
        "jh_users_group: devs has the member ops, who is in the privileged group adm",
        "jh_users_group: devs has the member ops, who is in the privileged group lxd",
        "jh_users_group: devs has the member ops, who is in the privileged group sudo",
        "jh_users_group: devs has the member svc, who is a system account (uid 999)",
    ]


@pytest.mark.parametrize("shell", ["/usr/sbin/nologin", "/bin/false"])
def test_the_hub_user_the_deploy_made_is_accepted(shell):
    assert problems({"jupyter": {**HUB, "shell": shell}}, HUB_GROUPS) == []
    hub = account(998, "hub", ["shadow"], home="/srv/hub", shell=shell)
    groups = {"hub": (998, []), "shadow": (42, ["hub"])}
    assert problems({"hub": hub}, groups, hub_user="hub", install_root="/srv/hub/") == []


def test_the_hub_user_as_another_system_account_is_refused():
    found = {"jupyter": account(33, "www-data", home="/var/www", shell="/usr/sbin/nologin")}
    assert problems(found) == [
        "jh_hub_user: jupyter is a system account (uid 33) that this deploy did not make (group www-data, home "
        "/var/www, shell /usr/sbin/nologin; the deploy's has group jupyter, home /opt/jupyter, shell /usr/sbin/nologin)"
    ]
    # The deploy's account, but for another install root, or with a login shell.
    assert problems({"jupyter": HUB}, HUB_GROUPS, install_root="/srv/hub")[0].startswith(
        "jh_hub_user: jupyter is a system account (uid 998) that this deploy did not make"
    )
    assert len(problems({"jupyter": {**HUB, "shell": "/bin/bash"}}, HUB_GROUPS)) == 1
    assert problems(hub_user="backup")[0].startswith("jh_hub_user: backup is a system account (uid 34)")


def test_the_hub_user_as_a_login_account_or_root_is_refused():
    found = {"jupyter": account(1001, "jupyter", home="/home/jupyter")}
    assert problems(found) == [
        "jh_hub_user: jupyter is a login account (uid 1001), not the system account this deploy makes for the hub"
    ]
    root_twin = {"jupyter": {**HUB, "uid": 0}}
    assert problems(root_twin, HUB_GROUPS) == ["jh_hub_user: jupyter is a system account (uid 0, root's)"]


def test_the_hub_user_may_not_be_in_other_privileged_groups():
    hub = {**HUB, "groups": ["shadow", "sudo"]}
    assert problems({"jupyter": hub}, HUB_GROUPS) == ["jh_hub_user: jupyter is in the privileged group sudo"]


def test_every_problem_is_reported():
    found = {"toor": account(0, "root")}
    assert len(problems(found, users=[{"name": "toor"}], admin_users=["ops"], users_group="adm")) == 6


class FakeHost:
    name = "hub1.example.org"

    def __init__(self, users, groups, rights=None):
        self.facts = {Accounts: users, GroupEntries: groups, LoginDefs: DEFS, SudoRights: rights or {}}

    def get_fact(self, fact, **kwargs):
        return self.facts[fact]


def test_check_accounts_raises_one_error_naming_the_host(monkeypatch):
    fake = FakeHost(USERS, GROUPS)
    monkeypatch.setattr(snapshot, "host", fake)
    monkeypatch.setattr(preflight, "host", fake)
    monkeypatch.setattr(snapshot, "_FACTS", {})
    with pytest.raises(SettingsError) as error:
        check_accounts(settings(admin_users=["ops"], users_group="sudo"))
    lines = str(error.value).splitlines()
    assert lines[0] == (
        "host hub1.example.org: settings name privileged accounts or groups on this host (no host was changed):"
    )
    assert "  jh_admin_users[0]: ops is in the privileged group sudo" in lines
    assert "  jh_users_group: sudo is a privileged group (its members would get hub logins)" in lines
    monkeypatch.setattr(snapshot, "_FACTS", {})
    assert check_accounts(settings(users=[{"name": "alice"}])) is None


def test_accounts_fact_has_the_shape_the_checks_read():
    output = [
        "root:x:0:0:root:/root:/bin/bash",
        "jupyter:x:998:998::/opt/jupyter:/usr/sbin/nologin",
        "ops:x:1000:1000:Ops:/home/ops:/bin/bash",
        "@group",
        "root:x:0:",
        "adm:x:4:ops",
        "shadow:x:42:jupyter",
        "sudo:x:27:ops",
        "lxd:x:110:ops",
        "jupyter:x:998:",
        "ops:x:1000:",
        "@shadow",
        "ops:$6$x:19000:0:99999:7:::",
    ]
    users = Accounts().process(output)
    assert users["jupyter"]["groups"] == ["shadow"]
    assert users["jupyter"]["group"] == "jupyter" and users["jupyter"]["password"] is None
    assert users["ops"]["password"] == "$6$x" and users["ops"]["home"] == "/home/ops"
    assert Accounts().command(shadow_of=["ops", "a b"]).count("getent shadow ops 'a b'") == 1
    defs = LoginDefs().default()
    assert account_problems(settings(), users, {**GROUPS, **HUB_GROUPS}, defs) == []
    assert account_problems(settings(admin_users=["ops"]), users, GROUPS, defs) == [
        "jh_admin_users[0]: ops is in the privileged group adm",
        "jh_admin_users[0]: ops is in the privileged group lxd",
        "jh_admin_users[0]: ops is in the privileged group sudo",
    ]


@pytest.mark.parametrize("names", [[], ["root"], ["root", "no such user"]])
def test_accounts_fact_runs_here(names):
    fact = Accounts()
    output = subprocess.run(["sh", "-c", fact.command(shadow_of=names)], capture_output=True, text=True, check=True)
    accounts = fact.process(output.stdout.splitlines())
    assert accounts["root"]["uid"] == 0 and accounts["root"]["group"] == "root"
    assert (accounts["root"]["password"] is not None) == ("root" in names)


def test_login_defs_fact():
    output = ["UID_MIN\t\t\t 1000", "GID_MIN   500  # local policy", "  UID_MIN 2000"]
    assert LoginDefs().process(output) == {"UID_MIN": 2000, "GID_MIN": 500}
    assert LoginDefs().process(["UID_MIN 0x3e8", "GID_MIN"]) == {"UID_MIN": 1000, "GID_MIN": 1000}
    assert LoginDefs().default() == {"UID_MIN": 1000, "GID_MIN": 1000}
    assert "/etc/login.defs" in LoginDefs().command()


def test_group_entries_fact():
    output = [
        "root:x:0:",
        "adm:x:4:syslog,ops",
        "sudo:x:27:ops",
        "jupyterhub-users:x:1001:alice, bob,",
        "sudo:*:5000:mallory",  # a second NSS source: getent lists the first
        "broken line",
        "bad:x:notanumber:eve",
    ]
    assert GroupEntries().process(output) == {
        "root": (0, []),
        "adm": (4, ["syslog", "ops"]),
        "sudo": (27, ["ops"]),
        "jupyterhub-users": (1001, ["alice", "bob"]),
    }
    assert GroupEntries().default() == {}


def test_fact_commands_are_constant():
    assert GroupEntries().command() == "getent group 2>/dev/null || cat /etc/group"


def test_an_account_sudo_lets_run_anything_is_refused_whatever_grants_it(monkeypatch):
    """The deploy's own SSH login with NOPASSWD in /etc/sudoers.d (no sudo group): sudo says so."""
    users = {
        **USERS,
        "deployer": {"uid": 1005, "gid": 1005, "group": "deployer", "groups": [], "home": "/home/deployer"},
    }
    rights = {
        "deployer": ["(ALL) NOPASSWD: ALL"],
        "jupyter": ["(root) NOPASSWD: /opt/jupyter/libexec/user-server start *"],
    }
    fake = FakeHost(users, GROUPS, rights)
    monkeypatch.setattr(snapshot, "host", fake)
    monkeypatch.setattr(preflight, "host", fake)
    monkeypatch.setattr(snapshot, "_FACTS", {})
    with pytest.raises(SettingsError) as error:
        check_accounts(settings(users=[{"name": "deployer"}]))
    assert "jh_users[0]: sudo lets deployer run (ALL) NOPASSWD: ALL (sudo -l -U deployer)" in str(error.value)
    # The hub's account may hold the deploy's rule for root's helper, nothing else.
    assert sudo_problems(settings(), rights) == []
    assert sudo_problems(settings(), {"jupyter": ["(ALL) ALL"]}) == [
        "jh_hub_user: sudo lets jupyter run (ALL) ALL (sudo -l -U jupyter): an account with root's rights"
    ]


def test_the_sudo_rights_fact_reads_what_sudo_lists():
    output = [
        "@alice",
        "User alice is not allowed to run sudo on hub.",
        "@deployer",
        "Matching Defaults entries for deployer on hub:",
        "    env_reset, mail_badpass",
        "",
        "User deployer may run the following commands on hub:",
        "    (ALL) NOPASSWD: ALL",
    ]
    assert SudoRights().process(output) == {"alice": [], "deployer": ["(ALL) NOPASSWD: ALL"]}


@pytest.mark.parametrize(
    ("home", "why"),
    [
        ("/", "alice's home is /, not a folder of their own"),
        ("/srv", "alice's home is /srv, not a folder of their own"),
        ("/home/bob", "alice's home is /home/bob, not a folder of their own"),
        ("/home/ops", "alice's home is /home/ops, not a folder of their own"),
    ],
)
def test_an_existing_account_with_an_odd_home_is_refused(home, why):
    users = {**USERS, "alice": {"uid": 1010, "gid": 1010, "group": "alice", "groups": [], "home": home}}
    problems = home_problems(settings(users=[{"name": "alice"}]), users, {})
    assert problems and problems[0].startswith(f"jh_users[0]: {why}"), problems


def test_a_people_s_group_may_not_be_someone_s_own():
    users = {**USERS, "carol": {"uid": 1011, "gid": 1011, "group": "carol", "groups": [], "home": "/home/carol"}}
    problems = account_problems(settings(groups={"carol": []}), users, GROUPS, DEFS)
    assert "jh_groups: carol is the own group of the account carol on this host, not a people's group" in problems


@pytest.mark.parametrize(
    ("data", "path", "state"),
    [
        ({"jh_install_root": "/scratch/jupyter"}, "/scratch", ("d", 0o1777, "root", "root", None, None)),
        ({"jh_conda_prefix": "/srv/team/conda"}, "/srv/team", ("d", 0o775, "root", "team", None, None)),
        (
            {"jh_notify_on_failure": True, "jh_notify_command": "/srv/bin/page"},
            "/srv/bin",
            ("d", 0o755, "ops", "ops", None, None),
        ),
    ],
    ids=["hpc-scratch-install-root", "group-writable-conda-parent", "notifier-in-someone-s-folder"],
)
def test_root_runs_no_program_from_under_a_folder_others_can_change(data, path, state):
    states = {"/": ("d", 0o755, "root", "root", None, None), path: state}
    for parent in ancestors(PurePosixPath(path))[1:]:
        states[str(parent)] = ("d", 0o755, "root", "root", None, None)
    problems = path_problems(Settings.from_data(data), states)
    assert problems and f"{path} is not a folder only root can change" in problems[0], problems


COURSES = {
    "users": [{"name": n} for n in ("prof", "alice")],
    "groups": {"ml": ["alice"]},
    "courses": {"ml-2026": {"instructors": ["prof"], "students": "ml"}},
}


@pytest.mark.parametrize(
    ("found", "groups", "why"),
    [
        # Someone let in by the directory as ml-2026-students before the course was set up:
        # useradd --user-group made the group the deploy would then take as the course's.
        (
            {"ml-2026-students": account(1012, "ml-2026-students", home="/home/ml-2026-students")},
            {"ml-2026-students": (1012, [])},
            "ml-2026-students is the own group of the account ml-2026-students",
        ),
        (
            {"mallory": account(1013, "ml-2026-students", home="/home/mallory")},
            {"ml-2026-students": (1013, [])},
            "ml-2026-students is the own group of the account mallory",
        ),
        ({}, {"ml-2026-students": (120, [])}, "ml-2026-students is a system group on this host (gid 120)"),
    ],
)
def test_a_course_s_students_group_may_not_be_someone_s_own_nor_the_system_s(found, groups, why):
    found = account_problems(settings(**COURSES), {**USERS, **found}, {**GROUPS, **groups}, DEFS)
    assert any(why in problem for problem in found), found


def test_a_course_s_students_group_the_deploy_made_is_fine():
    groups = {**GROUPS, "ml-2026-students": (1020, ["alice", "grader-ml-2026"])}
    assert not [p for p in account_problems(settings(**COURSES), USERS, groups, DEFS) if "ml-2026-students" in p]
