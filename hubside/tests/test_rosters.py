"""Roster sync (hubside.rosters, hubside-people set-course-groups) against a real LTI 1.3 platform
(tests/lti_platform.py, in a process of its own) and a real hub: the courses' groups follow the
platform's names and roles, for the people bound to a Unix name, reading only the course's own
contexts, and nothing but the courses' groups changes."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from urllib.request import Request, urlopen

import pytest
from cryptography.hazmat.primitives import serialization

from hubside import lti_services, people, rosters
from hubside.lti import CLAIM, NRPS_CLAIM, UnixLTIAuthenticator

from .conftest import running_hub
from .test_grades import CLIENT_ID, DEPLOYMENT, KEY, Platform
from .test_people import TOKEN, deploy_service, groups

# ml's two sections (ned: a learner in one, a TA in the other), art, and a context the settings
# moved from ml to art since its launches (kim's alone: read for neither).
CONTEXTS = {
    "ctx-ml": (
        "ml",
        {
            "sub-lena": "Learner",
            "sub-otto": "Learner",
            "sub-sam": "Learner",
            "sub-kai": "Learner",
            "sub-ned": "Learner",
            "sub-evil": "Learner",
            "sub-prof": "Instructor",
        },
    ),
    "ctx-ml-b": ("ml", {"sub-bea": "Learner", "sub-tara": "TeachingAssistant", "sub-ned": "TeachingAssistant"}),
    "ctx-art": ("art", {"sub-ada": "Learner", "sub-otto": "Learner", "sub-prof": "Instructor"}),
    "ctx-moved": ("art", {"sub-kim": "Learner"}),
}
# The hub's name bindings: sam never launched (none); evil's name is no Unix name; another
# platform's account with ned's sub is not ned. prof's name is the settings' (jh_users' account),
# which the hub keeps out of its names file.
BOUND = ("lena", "otto", "kai", "ned", "bea", "tara", "ada", "kim")


@pytest.fixture
def platform(tmp_path):
    platform = Platform(tmp_path, CONTEXTS)
    yield platform
    platform.stop()


def change_context(platform, context: str, members: dict, inactive: tuple = ()) -> None:
    body = json.dumps({"members": members, "inactive": list(inactive)}).encode()
    with urlopen(Request(f"{platform.url}/_test/contexts/{context}", data=body, method="PUT")):
        pass


def memberships_read(platform) -> list[str]:
    with urlopen(f"{platform.url}/_test/memberships-read") as answer:
        return json.load(answer)


@pytest.fixture
def settings(platform, tmp_path) -> Path:
    """grades back's settings file, the hub's courses file (as launches from each context left it)
    and its name bindings, the tool's key."""
    (tmp_path / "tool-key.pem").write_bytes(
        KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    hub = UnixLTIAuthenticator(courses_file=str(tmp_path / "lti-courses.json"))
    for context, (course, _) in CONTEXTS.items():
        launch = {
            f"{CLAIM}context": {"id": context},
            f"{CLAIM}deployment_id": DEPLOYMENT,
            NRPS_CLAIM: {"context_memberships_url": f"{platform.url}/contexts/{context}/memberships"},
        }
        hub.keep_services("ml" if context == "ctx-moved" else course, launch)
    bindings = {name: f"{platform.url} sub-{name}" for name in BOUND}
    bindings |= {"../evil": f"{platform.url} sub-evil", "ned2": "https://other.example.org sub-ned"}
    (tmp_path / "names.json").write_text(json.dumps(bindings))
    path = tmp_path / "grades-back.json"
    path.write_text(
        json.dumps(
            {
                "issuer": platform.url,
                "client_id": CLIENT_ID,
                "token_url": f"{platform.url}/token",
                "tool_key_file": str(tmp_path / "tool-key.pem"),
                "deployment_ids": [DEPLOYMENT],
                "courses": {context: course for context, (course, _) in CONTEXTS.items()},
                "courses_file": str(tmp_path / "lti-courses.json"),
                "names_file": str(tmp_path / "names.json"),
                "bound_names": {"prof": f"{platform.url} sub-prof"},
                "loopback_http": True,
            }
        )
    )
    return path


def course_rosters(settings: Path, *courses: str, capsys) -> tuple[int, dict | None, str]:
    """hubside-course-rosters' exit code, JSON (None if it printed none) and stderr."""
    try:
        rosters.main(["--settings", str(settings), *courses])
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
        print(exit.code, file=sys.stderr)
    output = capsys.readouterr()
    return code, (json.loads(output.out) if output.out.strip() else None), output.err


async def set_course_groups(hub, wanted, monkeypatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", TOKEN)
    argv = ["hubside-people", f"http://127.0.0.1:{hub.port}/hub/api", "set-course-groups", json.dumps(wanted)]
    monkeypatch.setattr(sys, "argv", argv)
    await asyncio.get_running_loop().run_in_executor(None, people.main)


def test_the_rosters_are_the_active_members_bound_to_a_name_of_the_course_s_own_contexts(platform, settings, capsys):
    change_context(platform, "ctx-ml", CONTEXTS["ctx-ml"][1], inactive=["sub-kai"])
    code, wanted, err = course_rosters(settings, "ml", "art", capsys=capsys)
    assert code == 0, err
    assert wanted == {
        # sam is bound to no name, kai is inactive, evil's name is no Unix name; ned is a TA of
        # one section: staff wins; prof's name is bound by the settings.
        "ml-students": ["bea", "lena", "otto"],
        "ml-staff": ["ned", "prof", "tara"],
        "art-students": ["ada", "otto"],
        "art-staff": ["prof"],
    }
    assert "skipped the binding of '../evil': not a Unix name" in err
    # The context moved from ml to art is read for neither: kim is in no group.
    assert sorted(set(memberships_read(platform))) == ["ctx-art", "ctx-ml", "ctx-ml-b"]
    # A course without a context yet: left out, said.
    code, wanted, err = course_rosters(settings, "bio", capsys=capsys)
    assert code == 0 and wanted == {} and "bio: no LTI context yet" in err


def test_a_dropped_learner_leaves_the_group_and_a_promoted_one_moves_to_staff(platform, settings, monkeypatch, capsys):
    async def test(hub):
        from jupyterhub import orm

        # Everyone launched but ada (never logged in to this hub); a group made by hand, and one
        # the deploy keeps.
        for name in ("lena", "otto", "kai", "ned", "prof", "bea", "tara", "kim", "carol"):
            hub.user(name)
        carol = hub.app.db.query(orm.User).filter_by(name="carol").one()
        hub.app.db.add(orm.Group(name="by-hand", users=[carol]))
        hub.app.db.add(orm.Group(name="nlp-students", users=[carol], properties=dict(people.MARK)))
        # The launches so far: lena and otto learners of ml, kim of the moved context.
        hub.app.db.add(
            orm.Group(
                name="ml-students",
                users=[hub.app.db.query(orm.User).filter_by(name=n).one() for n in ("lena", "otto", "kim")],
            )
        )
        hub.app.db.commit()

        code, wanted, err = course_rosters(settings, "ml", "art", capsys=capsys)
        assert code == 0, err
        await set_course_groups(hub, wanted, monkeypatch)
        output = capsys.readouterr()
        assert "art-students: ada left out: not a user of the hub" in output.err
        assert "ml-students: removed kim" in output.out and "ml-staff: made" in output.out
        assert groups(hub) == {
            "by-hand": ["carol"],
            "nlp-students": ["carol"],
            "ml-students": ["bea", "kai", "lena", "otto"],
            "ml-staff": ["ned", "prof", "tara"],
            "art-students": ["otto"],
            "art-staff": ["prof"],
        }
        # The course groups made are not the deploy's: its sync-groups never deletes them.
        hub.app.db.expire_all()
        assert orm.Group.find(hub.app.db, "ml-staff").properties == {}

        # At the platform: otto dropped from ml, lena made a TA, kai inactive.
        members = {**CONTEXTS["ctx-ml"][1], "sub-lena": "TeachingAssistant"}
        del members["sub-otto"]
        change_context(platform, "ctx-ml", members, inactive=["sub-kai"])
        code, wanted, err = course_rosters(settings, "ml", "art", capsys=capsys)
        assert code == 0, err
        await set_course_groups(hub, wanted, monkeypatch)
        assert groups(hub) == {
            "by-hand": ["carol"],
            "nlp-students": ["carol"],
            "ml-students": ["bea"],
            "ml-staff": ["lena", "ned", "prof", "tara"],
            # otto is still art's.
            "art-students": ["otto"],
            "art-staff": ["prof"],
        }
        # Users are never deleted; again: nothing changes.
        assert {u.name for u in hub.app.db.query(orm.User)} >= {"otto", "kai", "kim"}
        capsys.readouterr()
        await set_course_groups(hub, wanted, monkeypatch)
        assert "added" not in capsys.readouterr().out

    running_hub(test, deploy_service())


@pytest.mark.parametrize(
    "wanted, says",
    [
        ({"by-hand": ["carol"]}, "not a course's group"),
        ({"ml": ["carol"]}, "not a course's group"),
        ({"../ml-students": []}, "not a course's group"),
        ({"ML-students": []}, "not a course's group"),
        ({"a" * 30 + "-students": []}, "not a course's group"),
        ({"ml-students": ["../carol"]}, "a list of Unix names"),
        ({"ml-students": ["Carol"]}, "a list of Unix names"),
        ({"ml-students": "carol"}, "a list of Unix names"),
        ({"ml-students": [1]}, "a list of Unix names"),
        (["ml-students"], "a JSON object of groups"),
        ({"nlp-students": []}, "the deploy's own groups"),
    ],
)
def test_set_course_groups_refuses_what_is_not_a_course_s_group_of_unix_names(wanted, says, monkeypatch):
    async def test(hub):
        from jupyterhub import orm

        carol = hub.user("carol")
        hub.app.db.add(orm.Group(name="nlp-students", users=[carol.orm_user], properties=dict(people.MARK)))
        hub.app.db.add(orm.Group(name="by-hand", users=[carol.orm_user]))
        hub.app.db.commit()
        with pytest.raises(SystemExit, match=says):
            await set_course_groups(hub, wanted, monkeypatch)
        assert groups(hub) == {"by-hand": ["carol"], "nlp-students": ["carol"]}

    running_hub(test, deploy_service())


def test_set_course_groups_refuses_input_that_is_not_json_or_too_long(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["hubside-people", "http://127.0.0.1:9/hub/api", "set-course-groups", "{"])
    with pytest.raises(SystemExit, match="not JSON"):
        people.main()
    monkeypatch.setattr(
        sys, "argv", ["hubside-people", "http://127.0.0.1:9/hub/api", "set-course-groups", "[" * 100_000]
    )
    with pytest.raises(SystemExit, match="not JSON"):
        people.main()
    too_long = " " * (people.MAX_COURSE_GROUPS_INPUT + 1) + "{}"
    monkeypatch.setattr(sys, "argv", ["hubside-people", "http://127.0.0.1:9/hub/api", "set-course-groups", too_long])
    with pytest.raises(SystemExit, match="more than"):
        people.main()


def test_hostile_answers_and_files_are_refused_or_skipped(platform, settings, tmp_path, monkeypatch, capsys):
    # Members that are not what names and roles lists: skipped, whatever their binding.
    members = [
        {"user_id": "sub-lena", "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]},
        {"user_id": 7, "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]},
        {"user_id": "x" * 300, "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]},
        {"user_id": "sub-otto", "roles": "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"},
        {
            "user_id": "sub-bea",
            "status": "Deleted",
            "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
        },
        "sub-tara",
    ]
    assert rosters.roles_by_account(members) == {"sub-lena": "students"}
    # A course name that is no name, bindings that are not bindings: nothing printed.
    code, wanted, err = course_rosters(settings, "../ml", capsys=capsys)
    assert code == 1 and wanted is None and "not a course name" in err
    (tmp_path / "names.json").write_text('["lena"]')
    code, wanted, err = course_rosters(settings, "ml", capsys=capsys)
    assert code == 1 and wanted is None and "not OAuth name bindings" in err
    # An answer that is no membership container: that course failed (exit 3), its groups left out,
    # the others still there.
    (tmp_path / "names.json").write_text(json.dumps({name: f"{platform.url} sub-{name}" for name in BOUND}))
    real = lti_services.Services.members

    def members_of(self, url, context_id=None):
        if "ctx-ml-b" in url:
            raise lti_services.ServiceError(f"GET {url}: not a membership container")
        return real(self, url, context_id)

    monkeypatch.setattr(lti_services.Services, "members", members_of)
    code, wanted, err = course_rosters(settings, "ml", "art", capsys=capsys)
    assert code == rosters.PARTIAL and "ml: FAILED, its groups left as they are" in err
    assert wanted == {"art-students": ["ada", "otto"], "art-staff": ["prof"]}


def test_members_refuses_a_page_that_is_not_a_membership_container_and_too_many_members(platform, monkeypatch):
    services = lti_services.Services(f"{platform.url}/token", CLIENT_ID, KEY, loopback_http=True)
    monkeypatch.setattr(services, "_call", lambda *a, **k: ({"members": "all"}, {}))
    with pytest.raises(lti_services.ServiceError, match="not a membership container"):
        services.members(f"{platform.url}/contexts/ctx-ml/memberships")
    page = {"members": [{}] * 600}
    link = {"Link": f'<{platform.url}/contexts/ctx-ml/memberships?p=2>; rel="next"'}
    monkeypatch.setattr(lti_services, "MAX_MEMBERS", 1000)
    monkeypatch.setattr(services, "_call", lambda *a, **k: (page, link))
    with pytest.raises(lti_services.ServiceError, match="more than 1000 members"):
        services.members(f"{platform.url}/contexts/ctx-ml/memberships")
