"""Courses (jh_courses): nbgrader's assignments for several courses on one hub (docs/courses.md).

A course gets a grader account, `grader-<course>`, whose server (started like anyone's, with its
limits) runs nbgrader's formgrader on the course folder, its home; its instructors and TAs, and
nobody else, may open and start that server. Its students are the members of a group of
`jh_groups`, or the learners who launch it from the learning platform (`jh_lti13`): they are the
Unix group `<course>-students`, the only people who may enter the course's part of the exchange.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from pydantic import Field, StrictBool

from tasks.settings.parts import Strict
from tasks.settings.types import AccountName, CourseName, GroupName, HostPath, at_or_below

if TYPE_CHECKING:
    from tasks.settings.model import Settings

GRADER_PREFIX = "grader-"


class Course(Strict):
    """A course of the hub: who teaches it, who takes it, and whether it is over."""

    instructors: list[AccountName] = Field(
        [],
        description="Its instructors (people of `jh_users` or `jh_admin_users`): they open its grader's "
        "server, where nbgrader's formgrader makes, releases, collects and grades its assignments. A course "
        "of `jh_lti13` takes its instructors and TAs from the platform's launches instead.",
    )
    tas: list[AccountName] = Field([], description="Its teaching assistants: the same rights as its instructors.")
    students: GroupName | None = Field(
        None,
        description="The group of `jh_groups` whose members take it; None: the learners who launch it from "
        "the learning platform (it must then be a course of `jh_lti13`).",
    )
    archived: StrictBool = Field(
        False,
        description="The term is over: its gradebook, releases, submissions and feedback are archived "
        "(root's, 0600, in `jh_offboard_dir`), its grader's server is stopped and nobody may open it, and its "
        "assignments leave its students' lists.",
    )


class Courses(Strict):
    courses: dict[CourseName, Course] = Field(
        {},
        description="The hub's courses (docs/courses.md), each a course of nbgrader: a grader account "
        "`grader-<course>` whose home is the course folder, the exchange where assignments are released and "
        "submissions collected, and the groups `<course>-students` and `<course>-staff`.",
        examples=[{"ml-2026": {"instructors": ["prof"], "tas": ["ta1"], "students": "ml-2026"}}],
        json_schema_extra={"section": "Courses"},
    )
    course_root: HostPath = Field(
        PurePosixPath("/srv/nbgrader"),
        description="The courses' folders: `<course>/` for each grader's home and `exchange/` for nbgrader's "
        "exchange; root's, in a folder only root may change.",
    )

    @property
    def current_courses(self) -> dict[str, Course]:
        return {name: course for name, course in self.courses.items() if not course.archived}

    @property
    def exchange_root(self) -> PurePosixPath:
        return self.course_root / "exchange"

    def course_hub_groups(self, groups: dict[str, list[str]]) -> dict[str, list[str]]:
        """The hub's groups the deploy keeps for the courses whose people the settings list (a
        course of the platform has groups its launches fill)."""
        kept = {}
        for name, course in self.current_courses.items():
            if course.students is not None:
                kept[f"{name}-students"] = sorted(groups[course.students])
                kept[f"{name}-staff"] = sorted({*course.instructors, *course.tas})
        return kept


def grader(course: str) -> str:
    """The course's grader account: its server runs the formgrader, its home is the course folder."""
    return f"{GRADER_PREFIX}{course}"


def check(settings: Settings) -> None:
    """The rules between jh_courses and the other settings; raises ValueError naming them."""
    if not settings.courses:
        return
    if settings.cluster:
        raise ValueError("jh_courses: not with jh_cluster yet (the exchange would have to be on every node)")
    lti_courses = set(settings.lti13.courses.values()) if settings.lti13 else set()
    people = {user.name for user in settings.present_users} | set(settings.admin_users)
    taken = {*people, *(u.name for u in settings.users), *settings.groups, settings.users_group, settings.hub_user}
    for name, course in settings.courses.items():
        if grader(name) in taken:
            raise ValueError(f"jh_courses: {name}'s grader account {grader(name)} is already a user or group")
        # A person's account of that name has it as its own group: they would enter the exchange.
        if f"{name}-students" in {*people, *(u.name for u in settings.users), settings.hub_user}:
            raise ValueError(
                f"jh_courses: {name}'s group {name}-students is the name of an account, whose own group it "
                "would be: that account would enter the course's exchange"
            )
        staff = [*course.instructors, *course.tas]
        if unknown := sorted(set(staff) - people):
            raise ValueError(f"jh_courses: {name} names {', '.join(unknown)}, not in jh_users nor jh_admin_users")
        if both := sorted(set(course.instructors) & set(course.tas)):
            raise ValueError(f"jh_courses: {', '.join(both)} both instructor and TA of {name}: choose one")
        if course.students is None:
            if name not in lti_courses:
                raise ValueError(
                    f"jh_courses: {name} names no students group, and no context of jh_lti13's courses launches it"
                )
            if staff:
                raise ValueError(
                    f"jh_courses: {name} is a course of jh_lti13, whose instructors and TAs come from the "
                    "platform's launches: leave its instructors and tas empty"
                )
            continue
        if name in lti_courses:
            raise ValueError(
                f"jh_courses: {name} is a course of jh_lti13 and has the students group {course.students}: "
                "its students come from one or the other"
            )
        if course.students not in settings.groups:
            raise ValueError(f"jh_courses: {name}'s students group {course.students} is not in jh_groups")
        if both := sorted(set(staff) & set(settings.groups[course.students])):
            raise ValueError(f"jh_courses: {', '.join(both)} both student and staff of {name}")
    _paths(settings)


def _paths(settings: Settings) -> None:
    root = settings.course_root
    others = [
        ("jh_install_root", settings.install_root),
        ("jh_offboard_dir", settings.offboard_dir),
        # Root runs conda's programs: one below a grader's home (or the exchange) is the grader's.
        ("jh_conda_prefix", settings.conda_prefix),
        *(("jh_shared_dirs", shared.path) for shared in settings.shared_dirs),
    ]
    if settings.nightly_backup and not settings.nightly_backup.sftp_target:
        others.append(("jh_nightly_backup.repository", settings.nightly_backup.folder))
    for setting, path in others:
        if at_or_below(root, path) or at_or_below(path, root):
            raise ValueError(f"jh_course_root {root} and {setting} {path} overlap: give each a folder of its own")
