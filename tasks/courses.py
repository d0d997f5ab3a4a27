"""Courses (jh_courses): each course's grader account, its students' Unix group, its part of the
exchange, and nbgrader's configuration for every server (docs/courses.md).

Root makes each folder once, in folders only root can change (jh_course_root: checked before any
host changes, tasks/preflight.py); what is inside a course's folders is nbgrader's, run by the
grader account (the course's staff) and its students. The hub's side, who may open a grader's
server, is data of hub.json (tasks/hub_data.py: hubside.config.courses).
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import PurePosixPath

from pyinfra.operations import server

from tasks import layout
from tasks.facts import GroupEntries
from tasks.ops import command, directory, root_directory, root_file, root_template, script
from tasks.platform import Platform
from tasks.preflight import ancestors, host_accounts
from tasks.settings import Settings
from tasks.settings.courses import grader
from tasks.snapshot import Managed, entry, fact
from tasks.system import USER_SHELL

# Where nbgrader looks for its configuration in every server and command (the system's Jupyter
# configuration folder: a server environment switched to later reads the same file).
NBGRADER_CONFIG = PurePosixPath("/etc/jupyter/nbgrader_config.py")


def course_home(settings: Settings, course: str) -> PurePosixPath:
    return settings.course_root / "courses" / course


def students_group(course: str) -> str:
    return f"{course}-students"


def courses_data(settings: Settings) -> dict:
    """What hubside.courses.configure reads in each server: the exchange, and each grader's course."""
    return {
        "exchange_root": str(settings.exchange_root),
        "graders": {
            grader(name): {"course": name, "home": str(course_home(settings, name))}
            for name in settings.current_courses
        },
    }


def graders(settings: Settings) -> None:
    """Each course's grader account: a hub user's (its server starts like anyone's, with its
    limits), no password, its home the course folder."""
    accounts = host_accounts(settings)
    for name in settings.courses:
        account, home = accounts.get(grader(name)), course_home(settings, name)
        member = not settings.courses[name].archived
        if not account or (settings.users_group in account["groups"]) != member or account["home"] != str(home):
            server.user(
                name=f"Grader account of {name}" + ("" if member else " (archived: no server)"),
                user=grader(name),
                home=str(home),
                shell=USER_SHELL,
                groups=[settings.users_group] if member else [],
                append=False,
                create_home=False,
            )
        directory(f"Course folder of {name}: its grader's home", home, "700", grader(name), grader(name))


def students(settings: Settings) -> None:
    """<course>-students: the people who may enter the course's part of the exchange, and its grader.
    A course of jh_lti13 is filled at each server's start by the launches (files/bin/user-server)."""
    existing = fact(GroupEntries)
    for name, course in settings.current_courses.items():
        group = students_group(name)
        if group not in existing:
            server.group(name=f"Group {group}", group=group)
        have = existing.get(group, (0, []))[1]
        if course.students is None:
            if grader(name) not in have:
                server.shell(
                    name=f"{grader(name)} in {group}", commands=[command("gpasswd", "-a", grader(name), group)]
                )
            continue
        wanted = sorted({*settings.groups[course.students], grader(name)})
        if sorted(have) != wanted:
            server.shell(
                name=f"Members of group {group}: {', '.join(wanted)}",
                commands=[command("gpasswd", "-M", ",".join(wanted), group)],
            )


def exchange(settings: Settings) -> None:
    """The exchange: root's; each course's part its grader's, entered by its students' group alone."""
    root_directory("Courses' folder", settings.course_root)
    root_directory("Course folders", settings.course_root / "courses")
    root_directory("nbgrader's exchange", settings.exchange_root)
    for name in settings.current_courses:
        path = settings.exchange_root / name
        directory(f"Exchange of {name}: its students' alone", path, "750", grader(name), students_group(name))


def nbgrader_config(settings: Settings) -> None:
    data = json.dumps(courses_data(settings), indent=2, sort_keys=True) + "\n"
    root_file("Courses of nbgrader (every server reads it)", StringIO(data), settings.layout.courses_file)
    root_template(
        "nbgrader's configuration",
        "nbgrader_config.py.j2",
        NBGRADER_CONFIG,
        settings,
        courses_file=settings.layout.courses_file,
    )


def archive(settings: Settings) -> None:
    """Archived courses: their grader's server stopped, their folder and part of the exchange in an
    archive (root's, 0600), that part gone (out of the students' lists); once."""
    for name, course in settings.courses.items():
        part = settings.exchange_root / name
        if not course.archived or entry(part) is None:
            continue
        server.shell(
            name=f"Archive {name} into {settings.offboard_dir}",
            commands=[
                script(
                    settings.layout,
                    "archive-course",
                    name,
                    grader(name),
                    course_home(settings, name),
                    part,
                    settings.offboard_dir,
                    f"{layout.USER_UNIT_PREFIX}{grader(name)}.service",
                )
            ],
        )


def managed_paths(settings: Settings, platform: Platform) -> Managed:
    """The courses' folders and the folders above them (listed)."""
    if not settings.courses:
        return Managed()
    root = settings.course_root
    listed = [*ancestors(root), root, root / "courses", settings.exchange_root]
    return Managed(hashed=(NBGRADER_CONFIG.parent,), listed=tuple(listed))


def apply(settings: Settings) -> None:
    if not settings.courses:
        return
    graders(settings)
    students(settings)
    exchange(settings)
    nbgrader_config(settings)
    archive(settings)
