"""Courses (jh_courses): the settings refused before any host changes, the hub's data for the
graders' servers, nbgrader's configuration data, and the helper's course groups."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tasks import courses, hub_data
from tasks.platform import Platform
from tasks.settings import Settings, SettingsError
from tests.unit.test_lti_settings import pem
from tests.unit.test_user_servers import helper

NOBLE = Platform("Ubuntu", "24.04", "3.12", "3.12")
PEOPLE = [{"name": name} for name in ("prof", "ta1", "alice", "bob", "carol")]
BASE = {
    "jh_users": PEOPLE,
    "jh_groups": {"ml-2026": ["alice", "bob"], "nlp": ["carol"]},
    "jh_courses": {
        "ml-2026": {"instructors": ["prof"], "tas": ["ta1"], "students": "ml-2026"},
        "nlp": {"instructors": ["prof"], "students": "nlp"},
        "old": {"instructors": ["prof"], "students": "nlp", "archived": True},
    },
}
LTI = {
    "jh_domain": "hub.example.org",
    "jh_authenticator": "lti13",
    "jh_users": [{"name": "prof", "account": "sub-prof"}],
    "jh_admin_users": ["prof"],
    "jh_lti13": {
        "issuer": "https://lms.example.org",
        "client_id": "tool-1",
        "deployment_ids": ["dep-1"],
        "authorization_endpoint": "https://lms.example.org/authorize",
        "jwks_url": "https://lms.example.org/jwks",
        "token_url": "https://lms.example.org/token",
        "tool_key_file": "KEY",
        "courses": {"ctx-ml": "ml-2026"},
    },
    "jh_courses": {"ml-2026": {}},
}


def with_course(**course) -> dict:
    return {**BASE, "jh_courses": {**BASE["jh_courses"], "ml-2026": course}}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (with_course(instructors=["prof"], students="ml2026"), "students group ml2026 is not in jh_groups"),
        (with_course(instructors=["dave"], students="ml-2026"), "names dave, not in jh_users"),
        (with_course(instructors=["alice"], students="ml-2026"), "alice both student and staff of ml-2026"),
        (with_course(instructors=["prof"], tas=["prof"], students="ml-2026"), "prof both instructor and TA"),
        (with_course(instructors=["prof"]), "names no students group, and no context of jh_lti13"),
        (with_course(instructors=["prof"], students="ml-2026", archived="yes"), "valid boolean"),
        (with_course(instructors=["prof"], students="ml-2026", graders=["x"]), "unknown key"),
        ({**BASE, "jh_courses": {"ML 2026": {"students": "nlp"}}}, "course name"),
        ({**BASE, "jh_courses": {"ml\n2026": {"students": "nlp"}}}, "course name"),
        ({**BASE, "jh_courses": {"ml;rm": {"students": "nlp"}}}, "course name"),
        ({**BASE, "jh_courses": {"a" * 24: {"students": "nlp"}}}, "course name"),
        ({**BASE, "jh_groups": {**BASE["jh_groups"], "nlp-students": []}}, "has the group nlp-students"),
        ({**BASE, "jh_groups": {**BASE["jh_groups"], "grader-nlp": []}}, "grader account grader-nlp is already"),
        ({**BASE, "jh_users": [*PEOPLE, {"name": "grader-nlp"}]}, "grader account grader-nlp is already"),
        ({**BASE, "jh_users": [*PEOPLE, {"name": "nlp-students"}]}, "group nlp-students is the name of an account"),
        ({**BASE, "jh_cluster": True, "jh_cluster_address": "10.0.0.1"}, "not with jh_cluster yet"),
        ({**BASE, "jh_course_root": "/opt/jupyter/courses"}, "jh_course_root /opt/jupyter/courses and jh_install_root"),
        ({**BASE, "jh_offboard_dir": "/srv/nbgrader/gone"}, "and jh_offboard_dir"),
        ({**BASE, "jh_conda_prefix": "/srv/nbgrader/courses/nlp"}, "and jh_conda_prefix /srv/nbgrader/courses/nlp"),
        ({**BASE, "jh_course_root": "/opt/miniconda3/courses"}, "and jh_conda_prefix /opt/miniconda3 overlap"),
        ({**BASE, "jh_course_root": "/srv/%i"}, "jh_course_root"),
        ({**BASE, "jh_course_root": "/srv/a b"}, "jh_course_root"),
    ],
)
def test_bad_courses_are_refused_naming_the_setting(data, expected):
    with pytest.raises(SettingsError) as error:
        Settings.from_data(data)
    assert expected in str(error.value)


def lti(tmp_path, **courses) -> dict:
    key = tmp_path / "key.pem"
    key.write_bytes(pem(rsa.generate_private_key(65537, 2048)))
    return {**LTI, "jh_lti13": {**LTI["jh_lti13"], "tool_key_file": str(key)}, "jh_courses": courses}


def test_a_course_of_the_platform_takes_its_people_from_the_launches(tmp_path):
    settings = Settings.from_data(lti(tmp_path, **{"ml-2026": {}}))
    assert settings.course_hub_groups(settings.groups) == {}
    assert hub_data.lti_course_groups(settings) == ["ml-2026-students"]
    with pytest.raises(SettingsError, match="whose instructors and TAs come from the platform's launches"):
        Settings.from_data(lti(tmp_path, **{"ml-2026": {"instructors": ["prof"]}}))
    with pytest.raises(SettingsError, match="its students come from one or the other"):
        Settings.from_data({**lti(tmp_path, **{"ml-2026": {"students": "ml"}}), "jh_groups": {"ml": []}})


def test_the_hub_gives_each_course_s_staff_its_grader_s_server_alone():
    settings = Settings.from_data(BASE)
    data = hub_data.courses(settings)
    assert data["graders"] == ["grader-ml-2026", "grader-nlp", "grader-old"]
    roles = {role["name"]: role for role in data["roles"]}
    assert sorted(roles) == ["course-graders", "ml-2026-grading", "nlp-grading"]
    assert roles["ml-2026-grading"]["groups"] == ["ml-2026-staff"]
    assert all(scope.endswith("!user=grader-ml-2026") for scope in roles["ml-2026-grading"]["scopes"])
    assert roles["course-graders"] == {
        "name": "course-graders",
        "scopes": ["self"],
        "users": ["grader-ml-2026", "grader-nlp"],
    }
    assert settings.course_hub_groups(settings.groups) == {
        "ml-2026-students": ["alice", "bob"],
        "ml-2026-staff": ["prof", "ta1"],
        "nlp-students": ["carol"],
        "nlp-staff": ["prof"],
    }
    assert courses.courses_data(settings) == {
        "exchange_root": "/srv/nbgrader/exchange",
        "graders": {
            "grader-ml-2026": {"course": "ml-2026", "home": "/srv/nbgrader/courses/ml-2026"},
            "grader-nlp": {"course": "nlp", "home": "/srv/nbgrader/courses/nlp"},
        },
    }
    servers = hub_data.user_servers(settings, NOBLE, 1000)
    assert servers["graders"] == ["grader-ml-2026", "grader-nlp", "grader-old"] and servers["course_groups"] == []


class Entry:
    pw_name = "alice"


@pytest.fixture
def calls(monkeypatch):
    made = []
    monkeypatch.setattr(helper, "group_names", lambda entry: {"alice", "jupyterhub-users", "nlp-students"})
    monkeypatch.setattr(helper, "change_group", lambda name, verb, group: made.append(["gpasswd", verb, name, group]))
    return made


CONFIG = {"course_groups": ["ml-2026-students", "nlp-students"], "graders": ["grader-nlp"]}


def test_the_helper_puts_a_learner_in_the_groups_of_the_courses_they_launched(calls):
    helper.join_courses(CONFIG, Entry, "ml-2026-students")
    assert calls == [["gpasswd", "-a", "alice", "ml-2026-students"], ["gpasswd", "-d", "alice", "nlp-students"]]


def test_the_helper_changes_groups_outside_the_hub_s_read_only_etc(monkeypatch):
    calls = []
    monkeypatch.setattr(helper, "systemctl", lambda *argv: None)
    monkeypatch.setattr(helper.subprocess, "call", lambda argv, **_: calls.append(argv) or 0)
    helper.change_group("alice", "-a", "ml-2026-students")
    assert calls == [
        [
            "systemd-run",
            "--quiet",
            "--unit=jupyterhub-course-group-alice-ml-2026-students.service",
            "--property=Type=oneshot",
            "--",
            "gpasswd",
            "-a",
            "alice",
            "ml-2026-students",
        ]
    ]
    monkeypatch.setattr(helper.subprocess, "call", lambda argv, **_: 1)
    with pytest.raises(helper.Refused, match="gpasswd -a alice ml-2026-students failed"):
        helper.change_group("alice", "-a", "ml-2026-students")


def test_the_helper_changes_no_other_group_and_no_grader(calls):
    with pytest.raises(helper.Refused, match="not a course's group: sudo"):
        helper.join_courses(CONFIG, Entry, "ml-2026-students,sudo")
    grader = type("Grader", (), {"pw_name": "grader-nlp"})
    helper.join_courses(CONFIG, grader, "")
    helper.join_courses(CONFIG, Entry, "nlp-students")
    assert calls == []


def test_sync_rosters_runs_the_shipped_script_for_the_current_platform_courses_only(tmp_path):
    data = lti(tmp_path, **{"ml-2026": {}, "art": {}, "old": {"archived": True}})
    data["jh_lti13"]["courses"] = {"ctx-ml": "ml-2026", "ctx-art": "art", "ctx-old": "old"}
    settings = Settings.from_data(data)
    paths = settings.layout
    assert courses.sync_rosters_command(settings) == " ".join(
        [
            str(paths.script("sync-rosters")),
            str(paths.grades_back_file),
            str(paths.venv),
            settings.hub_user,
            str(paths.state_dir / "deploy.env"),
            settings.hub_api,
            "art",
            "ml-2026",
        ]
    )
    # The hub user runs hubside-people with the deploy's token, as tasks.people.hub_people does.
    assert settings.hub_api == "http://127.0.0.1:8081/hub/api"
    # The names the settings bind, which the hub keeps out of its names file, count too.
    assert courses.grades_settings(settings)["bound_names"] == {"prof": "https://lms.example.org sub-prof"}


def test_sync_rosters_is_refused_without_a_current_course_of_the_platform(monkeypatch):
    monkeypatch.setattr(courses, "current_settings", lambda: Settings.from_data(BASE))
    with pytest.raises(SettingsError, match="no current course of jh_lti13, so no rosters to sync"):
        courses.sync_rosters._inner()


def test_no_grader_runs_cron_or_at_jobs_even_once_its_course_is_archived():
    """Its staff run code as the grader: a crontab left there would run once the archive takes
    the grader out of jh_users_group (pam_access's group). Every grader is named, archived too,
    and cannot even submit a job (cron.deny, at.deny); the archive removes what is there."""
    from tasks.confinement import deny_lists, jobs_people

    settings = Settings.from_data(BASE)
    graders = {"grader-ml-2026", "grader-nlp", "grader-old"}
    denied = {(path, name) for path, name in deny_lists(settings, {"/etc/pam.d/cron", "/etc/pam.d/atd"})}
    assert {(deny, name) for deny in ("/etc/cron.deny", "/etc/at.deny") for name in graders} <= denied
    assert graders <= set(jobs_people(settings))
    script = (Path(__file__).parents[2] / "files" / "bin" / "archive-course").read_text()
    assert 'crontab -r -u "$grader"' in script and "xargs -r atrm" in script


def test_no_grader_logs_in_over_ssh_whatever_jh_users_ssh_says():
    """A grader's home is its course folder: its staff may leave an authorized_keys there; the
    grader is refused at sshd's account check, with jh_users_ssh, and once archived (out of
    jh_users_group)."""
    from tasks.confinement import ssh_people

    graders = {"grader-ml-2026", "grader-nlp", "grader-old"}
    assert graders <= set(ssh_people(Settings.from_data(BASE)))
    assert graders <= set(ssh_people(Settings.from_data({**BASE, "jh_users_ssh": True})))
