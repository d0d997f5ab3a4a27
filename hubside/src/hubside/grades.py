"""Grades back: a course's nbgrader scores posted to the learning platform's gradebook through LTI
Assignment and Grade Services, on the course's own line items only. Two commands:

``hubside-course-scores GRADEBOOK_DB``, run as the course's grader account (its instructors'): reads
nbgrader's gradebook (SQLite, opened read-only: it writes nothing) and prints on stdout

    {"assignments": [{"name": "ps1", "max_score": 10.0, "scores": {"lena": 7.5},
                      "pending": ["otto"]}]}

the assignments with at least one submission; a student without a submission is left out; a
submission that still needs manual grading is in ``pending``, not in ``scores``; extra credit
above the assignment's maximum is capped at it (said on stderr).

``hubside-grades-back --course COURSE --settings FILE``, run as root by the deploy: reads that JSON
from stdin (the grader's output, so the grader's to forge: size-limited, strict schema, finite
scores in [0, max_score], student names that are Unix names) and, for each LTI context of COURSE,
lists its members (names and roles), finds or makes one line item per assignment (label: the
assignment's name, resourceId ``COURSE:ASSIGNMENT``, scoreMaximum) under that context's line items,
and posts the score of each student who is an active learner there (the platform's user id: the
``sub`` their Unix name is bound to). It prints a summary per context and assignment; it exits
non-zero if the course has no context or a context's services fail (a failure ends that
context's posting; the others go on). The services' URLs must be on the token URL's or the
issuer's origin (hubside.lti_services).

The settings FILE (JSON, root's, written by the deploy from its lti13 settings):

    {"issuer": "https://lms.example.org",          # the platform's (names are bound to "ISSUER SUB")
     "client_id": "...", "token_url": "https://...", # the tool's registration
     "tool_key_file": "/.../lti-tool-key.pem",       # its private key (RS256), root's
     "deployment_ids": ["1"],                        # the hub's deployments
     "courses": {"CONTEXT_ID": "COURSE"},            # the platform's contexts -> the hub's courses
     "courses_file": "/.../lti-courses.json",        # the hub's record of each context's services
     "names_file": "/.../oauth-names.json",          # the hub's name bindings (hubside.names)
     "bound_names": {"prof": "ISSUER SUB"},          # optional: the settings' bindings (jh_users'
                                                     # accounts; not in the names file, and win)
     "loopback_http": false}                         # optional: a test platform on 127.0.0.1

A context is COURSE's when both the hub's courses file (kept from launches: the hub's to write)
and the deploy's settings (root's) say so: a context moved to another course in the settings gets
nothing of this one's.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import quote, urlsplit

from hubside import lti_services, names
from hubside.lti import course_group, read_courses
from hubside.oauth import UNIX_NAME  # nbgrader's student ids on this hub: the logins' Unix names

# An nbgrader assignment (a folder's name): no slash, no colon (the resource id's separator).
ASSIGNMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_. -]{0,63}\Z")
MAX_INPUT = 8 * 1024 * 1024
MAX_ASSIGNMENTS = 1000
SETTINGS = {
    "issuer": str,
    "client_id": str,
    "token_url": str,
    "tool_key_file": str,
    "deployment_ids": list,
    "courses": dict,
    "courses_file": str,
    "names_file": str,
}


class Refused(ValueError):
    """Input that is not what it must be (the message says why)."""


# --- hubside-course-scores (the grader's) ---------------------------------------------------


def read_only_session(path: str):
    """A SQLAlchemy session on the SQLite file at path, which SQLite opens read-only (no file made
    if there is none, no journal written)."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    if not Path(path).is_file():
        raise Refused(f"{path}: no such gradebook")
    url = f"sqlite:///file:{quote(str(Path(path).resolve()))}?mode=ro&uri=true"
    return Session(create_engine(url, future=True), future=True)


def gradebook_scores(session) -> list[dict]:
    """Each assignment with a submission: its maximum, graded students' scores, pending ones."""
    from nbgrader.api import Assignment

    assignments = []
    for assignment in session.query(Assignment).order_by(Assignment.name):
        maximum, scores, pending = float(assignment.max_score or 0), {}, []
        if maximum <= 0:
            continue  # nothing graded in it: nothing for a gradebook
        for submission in assignment.submissions:
            student = submission.student.id
            if submission.needs_manual_grade:
                pending.append(student)
                continue
            if submission.score > maximum:
                print(f"{assignment.name}: {student}'s {submission.score} is capped at {maximum}", file=sys.stderr)
            scores[student] = min(float(submission.score), maximum)
        if scores or pending:
            assignments.append({"name": assignment.name, "max_score": maximum, "scores": scores, "pending": pending})
    return assignments


def scores_main(argv: list[str] | None = None) -> None:
    """hubside-course-scores GRADEBOOK_DB: the gradebook's scores as JSON on stdout."""
    parser = argparse.ArgumentParser(description="The scores of an nbgrader gradebook, as JSON (read-only).")
    parser.add_argument("gradebook", metavar="GRADEBOOK_DB", help="the course's gradebook.db")
    arguments = parser.parse_args(argv)
    try:
        session = read_only_session(arguments.gradebook)
    except Refused as error:
        sys.exit(str(error))
    with session:
        json.dump({"assignments": gradebook_scores(session)}, sys.stdout, sort_keys=True)
    print()


# --- hubside-grades-back (root's) -----------------------------------------------------------


def _no_constants(name: str):
    raise Refused(f"{name} is not a number here")


def _unique_keys(pairs: list) -> dict:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise Refused("a JSON object has a key twice")
    return dict(pairs)


def strict_json(data: bytes):
    """JSON without NaN, Infinity or repeated keys."""
    try:
        return json.loads(data, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as error:
        raise Refused(f"not JSON: {error}") from None


def score_value(value, what: str, maximum: float = math.inf) -> float:
    """value as a finite number in [0, maximum] (not a boolean)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Refused(f"{what}: {value!r} is not a number")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not (math.isfinite(number) and 0 <= number <= maximum):
        raise Refused(f"{what}: {value!r:.40} is not a finite number from 0 to {maximum}")
    return number


def student_names(value, kind: type, what: str):
    """value (a dict by student, or a list of students) if its students are Unix names."""
    if not isinstance(value, kind) or not all(isinstance(n, str) and UNIX_NAME.match(n) for n in value):
        raise Refused(f"{what}: a {kind.__name__} of student names, each a Unix name ([a-z_][a-z0-9_-], at most 32)")
    return value


FIELDS, REQUIRED = {"name", "max_score", "scores", "pending"}, {"name", "max_score", "scores"}


def checked_assignment(entry) -> dict:
    """One assignment of the scores JSON, checked field by field."""
    if not (isinstance(entry, dict) and REQUIRED <= set(entry) <= FIELDS):
        raise Refused("an assignment is {name, max_score, scores[, pending]}")
    name = entry["name"]
    if not (isinstance(name, str) and ASSIGNMENT.match(name)):
        raise Refused(f"{name!r:.80}: not an assignment name (letters, digits, _ . - and spaces, at most 64)")
    maximum = score_value(entry["max_score"], f"{name}: max_score")
    if maximum == 0:
        raise Refused(f"{name}: max_score is 0")
    given = student_names(entry["scores"], dict, f"{name}: scores")
    scores = {student: score_value(score, f"{name}: {student}", maximum) for student, score in given.items()}
    pending = sorted(set(student_names(entry.get("pending", []), list, f"{name}: pending")))
    return {"name": name, "max_score": maximum, "scores": scores, "pending": pending}


def parse_scores(data: bytes) -> list[dict]:
    """The assignments of hubside-course-scores' output, checked (Refused otherwise)."""
    if len(data) > MAX_INPUT:
        raise Refused(f"the scores are more than {MAX_INPUT} bytes")
    document = strict_json(data)
    if not isinstance(document, dict) or set(document) != {"assignments"}:
        raise Refused('the scores are {"assignments": [...]}')
    entries = document["assignments"]
    if not isinstance(entries, list) or len(entries) > MAX_ASSIGNMENTS:
        raise Refused(f"assignments: a list of at most {MAX_ASSIGNMENTS}")
    assignments = [checked_assignment(entry) for entry in entries]
    if len({a["name"] for a in assignments}) != len(assignments):
        raise Refused("an assignment is there twice")
    return assignments


def read_settings(path: str) -> dict:
    try:
        settings = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise Refused(f"{path}: {error}") from None
    if not isinstance(settings, dict):
        raise Refused(f"{path}: not a JSON object")
    for key, kind in SETTINGS.items():
        if not isinstance(settings.get(key), kind):
            raise Refused(f"{path}: {key} must be a {kind.__name__}")
    if not all(isinstance(item, str) for item in [*settings["deployment_ids"], *settings["courses"].values()]):
        raise Refused(f"{path}: deployment_ids and the courses' names must be strings")
    bound = settings.setdefault("bound_names", {})
    if not (isinstance(bound, dict) and all(isinstance(account, str) for account in bound.values())):
        raise Refused(f"{path}: bound_names must be a JSON object of names to accounts")
    # Plain http only to a test platform on this machine: lti_services allows http on loopback
    # alone whatever it is told, and the flag is refused for any other token URL.
    loopback = settings.setdefault("loopback_http", False)
    if loopback is not False and not (
        loopback is True and urlsplit(settings["token_url"]).hostname in lti_services.LOOPBACK
    ):
        raise Refused(f"{path}: loopback_http is for a token URL on the loopback interface only")
    return settings


def course_contexts(settings: dict, course: str) -> dict[str, dict]:
    """COURSE's contexts ({context id: its endpoints}) in the hub's deployments, as both the
    courses file and the settings' courses say."""
    try:
        kept = read_courses(settings["courses_file"])
    except ValueError:
        kept = None
    if not isinstance(kept, dict):
        raise Refused(f"{settings['courses_file']}: not the hub's LTI courses")
    contexts = {}
    for deployment in settings["deployment_ids"]:
        deployment_contexts = kept.get(deployment)
        if not isinstance(deployment_contexts, dict):
            continue
        for context, endpoints in deployment_contexts.items():
            if isinstance(endpoints, dict) and endpoints.get("course") == course == settings["courses"].get(context):
                contexts[context] = endpoints
    return contexts


def name_bindings(settings: dict) -> dict[str, str]:
    """Unix name -> account: the hub's names file, and the settings' bindings (which the hub keeps
    out of the file, and which win, as at login: hubside.oauth)."""
    return {**names.load(settings["names_file"]), **settings["bound_names"]}


def platform_accounts(bindings: dict[str, str], issuer: str) -> dict[str, str]:
    """Unix name -> the platform's user id (sub), for the names bound to the platform's accounts."""
    prefix = f"{issuer} "
    return {name: account[len(prefix) :] for name, account in bindings.items() if account.startswith(prefix)}


def learners(members: list[dict]) -> set[str]:
    """The user ids of the context's active learners (staff roles win, as at login)."""
    return {
        str(member.get("user_id"))
        for member in members
        if isinstance(member, dict)
        and member.get("status", "Active") == "Active"
        and course_group(member.get("roles") or []) == "students"
    }


def skip_reason(student: str, assignment: dict, accounts: dict, members: set) -> str | None:
    """Why student's score on assignment is not for this context (None: it is)."""
    if student not in accounts:
        return "no platform account bound"
    if accounts[student] not in members:
        return "not a learner of this context"
    if student in assignment["pending"]:
        return "needs manual grading"
    return None


def post_assignment(services, course: str, lineitems_url: str, assignment: dict, accounts: dict, members: set):
    """One assignment's scores in one context: (posted, Counter of skip reasons). Its line item is
    found or made only when a score goes to it."""
    posted, skipped, item = 0, Counter(), None
    for student in sorted({*assignment["scores"], *assignment["pending"]}):
        reason = skip_reason(student, assignment, accounts, members)
        if reason:
            skipped[reason] += 1
            continue
        if item is None:
            resource = f"{course}:{assignment['name']}"
            item = services.line_item(lineitems_url, assignment["name"], assignment["max_score"], resource)
        services.post_score(item, accounts[student], assignment["scores"][student])
        posted += 1
    return posted, skipped


def post_context(
    services, course: str, context: str, endpoints: dict, assignments: list[dict], accounts: dict
) -> list[str]:
    """The scores of the course's learners in one context; the summary's lines."""
    if not (isinstance(endpoints.get("memberships_url"), str) and isinstance(endpoints.get("lineitems_url"), str)):
        raise lti_services.ServiceError("its launches gave no names and roles or grades service")
    members = learners(services.members(endpoints["memberships_url"], context))
    lines = []
    for assignment in assignments:
        posted, skipped = post_assignment(services, course, endpoints["lineitems_url"], assignment, accounts, members)
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(skipped.items()))
        lines.append(
            f"  {assignment['name']}: posted {posted}, skipped {sum(skipped.values())}" + (reasons and f" ({reasons})")
        )
    return lines


def grades_back(course: str, settings: dict, assignments: list[dict]) -> bool:
    """Every context of course given the scores; False if one's services failed."""
    contexts = course_contexts(settings, course)
    if not contexts:
        raise Refused(f"{course}: no LTI context (no launch from a context the settings map to {course} yet)")
    accounts = platform_accounts(name_bindings(settings), settings["issuer"])
    key = lti_services.tool_key(Path(settings["tool_key_file"]).read_bytes())
    services = lti_services.Services(
        settings["token_url"],
        settings["client_id"],
        key,
        origins=(settings["issuer"],),
        loopback_http=settings["loopback_http"],
    )
    ok = True
    for context, endpoints in sorted(contexts.items()):
        try:
            lines = post_context(services, course, context, endpoints, assignments, accounts)
        except lti_services.ServiceError as error:
            print(f"{course} in context {context}: FAILED: {error}")
            ok = False
            continue
        print(f"{course} in context {context}:", *lines, sep="\n")
    return ok


def grades_back_main(argv: list[str] | None = None) -> None:
    """hubside-grades-back --course COURSE --settings FILE < scores.json"""
    parser = argparse.ArgumentParser(description="Post a course's scores (stdin) to the LMS gradebook.")
    parser.add_argument("--course", required=True, help="the hub's course (its contexts get the scores)")
    parser.add_argument("--settings", required=True, help="the deploy's grades-back settings (JSON)")
    arguments = parser.parse_args(argv)
    try:
        if not UNIX_NAME.match(arguments.course):
            raise Refused(f"{arguments.course!r}: not a course name")
        settings = read_settings(arguments.settings)
        assignments = parse_scores(sys.stdin.buffer.read(MAX_INPUT + 1))
        ok = grades_back(arguments.course, settings, assignments)
    except (ValueError, OSError, lti_services.ServiceError) as error:
        # Refused and NotBindings are ValueErrors, as is a key file that is no key.
        sys.exit(f"hubside-grades-back: {error}")
    if not ok:
        sys.exit(1)
