"""Roster sync: the hub's groups of the learning platform's courses as the platform's names and
roles service lists them now, not only as the last launches left them (a person dropped from a
course, or whose role there changed, launches no more).

``hubside-course-rosters --settings FILE COURSE...``, run as root by the deploy (files/bin/sync-rosters)
with grades back's settings FILE (hubside.grades): for each COURSE, the members of each of its
contexts (the contexts both the hub's courses file and the settings give it, as grades back reads
them), active ones only, each in the group of their roles (learner -> ``COURSE-students``,
instructor or TA -> ``COURSE-staff``, staff winning over every context of the course, as a launch
does: hubside.lti.course_group), and of those only the people whose platform account is bound to
a Unix name (the names file, and the settings' bindings: people who never launched have no
account and are left out). It
prints on stdout

    {"ml-students": ["lena", "otto"], "ml-staff": ["prof"]}

for hubside-people's set-course-groups. A course with no context yet (never launched) is left out
(its groups are not touched), said on stderr; so is a course one of whose contexts' services fail:
its groups stay as they are rather than lose that context's people. The exit code is 0 when every
COURSE was read, 3 when some were left out for a failure (the JSON holds the others), and 1 (a
message, no JSON) when nothing could be read: bad settings, a COURSE that is no course name, a
names file that is not bindings.

The platform's answers and the hub's files are hostile input: the answers are size-limited
(hubside.lti_services), a member's user id must be a string of at most 255 characters, and only
names that are Unix names are printed (a binding of any other name is skipped, said on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hubside import lti_services
from hubside.grades import Refused, course_contexts, name_bindings, read_settings
from hubside.lti import COURSE_GROUPS, course_group
from hubside.oauth import UNIX_NAME

MAX_USER_ID = 255
PARTIAL = 3  # the exit code when some courses were left out for a failure


def roles_by_account(members: list) -> dict[str, str]:
    """The platform's user id -> "staff" or "students", of a context's active members with either."""
    roles = {}
    for member in members:
        if not isinstance(member, dict) or member.get("status", "Active") != "Active":
            continue
        user_id, member_roles = member.get("user_id"), member.get("roles")
        if not (isinstance(user_id, str) and 0 < len(user_id) <= MAX_USER_ID and isinstance(member_roles, list)):
            continue
        group = course_group(member_roles)
        if group is not None and roles.get(user_id) != "staff":
            roles[user_id] = group
    return roles


def bound_names(bindings: dict, issuer: str) -> dict[str, list[str]]:
    """The platform's user id -> the Unix names bound to it (names that are not Unix names skipped)."""
    prefix, accounts = f"{issuer} ", {}
    for name, account in sorted(bindings.items()):
        if not account.startswith(prefix):
            continue
        if not UNIX_NAME.match(name):
            print(f"skipped the binding of {name!r:.80}: not a Unix name", file=sys.stderr)
            continue
        accounts.setdefault(account[len(prefix) :], []).append(name)
    return accounts


def course_roster(services, course: str, contexts: dict[str, dict], accounts: dict[str, list[str]]) -> dict:
    """COURSE's groups ({COURSE-students: [...], COURSE-staff: [...]}) from its contexts' members."""
    roles: dict[str, str] = {}
    for context, endpoints in sorted(contexts.items()):
        url = endpoints.get("memberships_url")
        if not isinstance(url, str):
            raise lti_services.ServiceError(f"context {context}: its launches gave no names and roles service")
        for user_id, group in roles_by_account(services.members(url, context)).items():
            if roles.get(user_id) != "staff":
                roles[user_id] = group
    groups = {f"{course}-{group}": set() for _, group in COURSE_GROUPS}
    for user_id, group in roles.items():
        groups[f"{course}-{group}"].update(accounts.get(user_id, ()))
    return {name: sorted(members) for name, members in groups.items()}


def rosters(settings: dict, courses: list[str]) -> tuple[dict, bool]:
    """The groups of each course read (a course without contexts or whose services failed left
    out), and whether none failed."""
    accounts = bound_names(name_bindings(settings), settings["issuer"])
    key = lti_services.tool_key(Path(settings["tool_key_file"]).read_bytes())
    services = lti_services.Services(
        settings["token_url"],
        settings["client_id"],
        key,
        scopes=[lti_services.SCOPES["memberships"]],
        origins=(settings["issuer"],),
        loopback_http=settings["loopback_http"],
    )
    wanted, ok = {}, True
    for course in courses:
        contexts = course_contexts(settings, course)
        if not contexts:
            print(f"{course}: no LTI context yet (nobody launched it): its groups left as they are", file=sys.stderr)
            continue
        try:
            wanted |= course_roster(services, course, contexts, accounts)
        except lti_services.ServiceError as error:
            print(f"{course}: FAILED, its groups left as they are: {error}", file=sys.stderr)
            ok = False
    return wanted, ok


def main(argv: list[str] | None = None) -> None:
    """hubside-course-rosters --settings FILE COURSE...: the courses' wanted hub groups, as JSON."""
    parser = argparse.ArgumentParser(description="The platform courses' groups as their rosters say (JSON).")
    parser.add_argument("--settings", required=True, help="the deploy's grades-back settings (JSON)")
    parser.add_argument("courses", nargs="+", metavar="COURSE", help="a course of the platform")
    arguments = parser.parse_args(argv)
    try:
        for course in arguments.courses:
            if not UNIX_NAME.match(course):
                raise Refused(f"{course!r:.80}: not a course name")
        wanted, ok = rosters(read_settings(arguments.settings), sorted(set(arguments.courses)))
    except (ValueError, OSError) as error:
        # Refused and NotBindings are ValueErrors, as is a key file that is no key.
        sys.exit(f"hubside-course-rosters: {error}")
    json.dump(wanted, sys.stdout, sort_keys=True)
    print()
    if not ok:
        sys.exit(PARTIAL)
