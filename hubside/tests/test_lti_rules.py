"""LTI 1.3 rules without a hub: a launch's roles -> the course's group, the endpoints kept per
deployment and context, a claim that names people and a role that gives no access."""

from __future__ import annotations

import json
import time

import pytest
from ltiauthenticator.lti13.error import TokenError
from tornado import web

from hubside import lti
from hubside.lti import AGS_CLAIM, CLAIM, MEMBERSHIP, NRPS_CLAIM, UnixLTIAuthenticator, course_group


@pytest.mark.parametrize(
    "roles, group",
    [
        ([f"{MEMBERSHIP}#Learner"], "students"),
        ([f"{MEMBERSHIP}#Instructor"], "staff"),
        ([f"{MEMBERSHIP}/Instructor#TeachingAssistant"], "staff"),
        ([f"{MEMBERSHIP}#Learner", f"{MEMBERSHIP}#Instructor"], "staff"),
        ([f"{MEMBERSHIP}#Mentor", "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor"], None),
        (["Instructor"], None),
    ],
)
def test_a_role_in_the_course_maps_to_its_group(roles, group):
    assert course_group(roles) == group


def test_two_sections_of_a_course_keep_their_own_endpoints_and_none_wipes_one(tmp_path):
    courses_file = tmp_path / "courses.json"
    authenticator = UnixLTIAuthenticator(courses_file=str(courses_file), courses={"sec-a": "ml", "sec-b": "ml"})

    def launch(context, deployment="dep-1", grades=True):
        return {
            f"{CLAIM}context": {"id": context},
            f"{CLAIM}deployment_id": deployment,
            NRPS_CLAIM: {"context_memberships_url": f"https://lms/{context}/members"},
            **({AGS_CLAIM: {"lineitems": f"https://lms/{deployment}/{context}/lineitems"}} if grades else {}),
        }

    def endpoints(context, deployment="dep-1"):
        urls = {"memberships_url": f"https://lms/{context}/members"}
        return {"course": "ml", **urls, "lineitems_url": f"https://lms/{deployment}/{context}/lineitems"}

    for context, deployment in (("sec-a", "dep-1"), ("sec-b", "dep-1"), ("sec-a", "dep-2")):
        authenticator.keep_services("ml", launch(context, deployment))
    # A launch without the grades claim (a link without grades) keeps the line items URL known.
    authenticator.keep_services("ml", launch("sec-b", grades=False))
    assert json.loads(courses_file.read_text()) == {
        "dep-1": {"sec-a": endpoints("sec-a"), "sec-b": endpoints("sec-b")},
        "dep-2": {"sec-a": endpoints("sec-a", "dep-2")},
    }


def test_a_plain_claim_may_name_people_and_a_role_without_access_is_refused(tmp_path):
    authenticator = UnixLTIAuthenticator(
        names_file=str(tmp_path / "names.json"), username_claim="given_name", courses={"ctx-ml": "ml-2026"}
    )
    launch = {
        "iss": "https://lms.example.org",
        "sub": "sub-mia",
        "given_name": "Mia",
        f"{CLAIM}context": {"id": "ctx-ml"},
        f"{CLAIM}roles": [f"{MEMBERSHIP}#Mentor"],
    }
    assert authenticator.user_info_to_username(launch) == "mia"
    with pytest.raises(web.HTTPError, match="neither learner nor instructor") as refused:
        authenticator.check_allowed("mia", {"name": "mia", "auth_state": {"launch": launch}})
    assert refused.value.status_code == 403


def test_a_name_that_lower_cases_to_ascii_is_refused(tmp_path):
    """The Kelvin sign lower-cases to k: "\u212aate" would take kate's name (unbound yet)."""
    authenticator = UnixLTIAuthenticator(names_file=str(tmp_path / "names.json"))
    launch = {"iss": "https://lms.example.org", "sub": "sub-mallory", f"{CLAIM}custom": {"username": "\u212aate"}}
    with pytest.raises(web.HTTPError, match="cannot be a user name") as refused:
        authenticator.user_info_to_username(launch)
    assert refused.value.status_code == 403


def test_a_nonce_is_good_once_and_forgotten_when_its_launch_expires(monkeypatch):
    authenticator, now = UnixLTIAuthenticator(), time.time()
    authenticator.use_nonce({"nonce": "n1", "exp": now + 60})
    with pytest.raises(TokenError, match="used already"):
        authenticator.use_nonce({"nonce": "n1", "exp": now + 60})
    authenticator.use_nonce({"nonce": "n2", "exp": now - 3600})
    authenticator.use_nonce({"nonce": "n3", "exp": now + 50})
    assert set(authenticator._used_nonces) == {"n1", "n3"}
    # Full: the soonest to expire goes.
    monkeypatch.setattr(lti, "NONCES_KEPT", 2)
    authenticator.use_nonce({"nonce": "n4", "exp": now + 90})
    assert set(authenticator._used_nonces) == {"n1", "n4"}


def test_a_nonce_used_before_the_hub_restarted_is_still_refused(tmp_path):
    nonces, now = tmp_path / "nonces.json", time.time()
    UnixLTIAuthenticator(nonces_file=str(nonces)).use_nonce({"nonce": "n1", "exp": now + 60})
    assert (nonces.stat().st_mode & 0o777) == 0o600
    restarted = UnixLTIAuthenticator(nonces_file=str(nonces))
    with pytest.raises(TokenError, match="used already"):
        restarted.use_nonce({"nonce": "n1", "exp": now + 60})
    nonces.write_text("[not a record]")
    assert UnixLTIAuthenticator(nonces_file=str(nonces))._used_nonces == {}
