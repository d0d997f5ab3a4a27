"""Courses (jh_courses): each course's grader account, its students' Unix group, its part of the
exchange, and nbgrader's configuration for every server (docs/courses.md).

Root makes each folder once, in folders only root can change (jh_course_root: checked before any
host changes, tasks/preflight.py); what is inside a course's folders is nbgrader's, run by the
grader account (the course's staff) and its students. The hub's side, who may open a grader's
server, is data of hub.json (tasks/hub_data.py: hubside.config.courses).
"""

from __future__ import annotations

import json
import sys
from io import StringIO
from pathlib import PurePosixPath

from pyinfra import host
from pyinfra.api import OperationError, StringCommand, deploy
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS
from pyinfra.operations import python, server

from tasks import layout
from tasks.facts import GroupEntries
from tasks.ops import command, directory, root_directory, root_file, root_template, script
from tasks.platform import Platform
from tasks.preflight import ancestors, host_accounts
from tasks.settings import Settings, SettingsError, current_settings
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


def folders(settings: Settings) -> None:
    root_directory("Courses' folder", settings.course_root)
    root_directory("Course folders", settings.course_root / "courses")
    root_directory("nbgrader's exchange", settings.exchange_root)


def graders(settings: Settings) -> None:
    """Each course's grader account: a hub user's (its server starts like anyone's, with its
    limits), no password, its home the course folder; an archived course's is out of the hub's
    users group, so no server of it starts again."""
    accounts = host_accounts(settings)
    for name, course in settings.courses.items():
        account, home = accounts.get(grader(name)), course_home(settings, name)
        if not account:
            server.user(
                name=f"Grader account of {name}",
                user=grader(name),
                home=str(home),
                shell=USER_SHELL,
                groups=[] if course.archived else [settings.users_group],
                create_home=False,
            )
        elif (settings.users_group in account["groups"]) == course.archived:
            verb = "-d" if course.archived else "-a"
            server.shell(
                name=f"Grader account of {name} {'out of' if course.archived else 'in'} {settings.users_group}",
                commands=[command("gpasswd", verb, grader(name), settings.users_group)],
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


def grades_settings(settings: Settings) -> dict:
    """What hubside-grades-back reads (root's): the platform, the tool's key, the courses' contexts."""
    lti, paths = settings.lti13, settings.layout
    return {
        "issuer": lti.issuer,
        "client_id": lti.client_id,
        "token_url": str(lti.token_url),
        "tool_key_file": str(paths.lti_tool_key),
        "deployment_ids": list(lti.deployment_ids),
        "courses": dict(lti.courses),
        "courses_file": str(paths.state_dir / layout.LTI_COURSES),
        "names_file": str(paths.state_dir / layout.OAUTH_NAMES),
        # The names the settings bind to the platform's accounts: the hub keeps them out of the names file.
        "bound_names": {u.name: f"{lti.issuer} {u.account}" for u in settings.present_users if u.account},
    }


def grades_back_file(settings: Settings) -> None:
    if settings.lti13:
        data = json.dumps(grades_settings(settings), indent=2, sort_keys=True) + "\n"
        root_file("Grades back: the platform's services", StringIO(data), settings.layout.grades_back_file, mode="600")


def platform_courses(settings: Settings) -> list[str]:
    """The current courses whose learners launch them from the platform, whose grades go back there."""
    taught = set(settings.lti13.courses.values()) if settings.lti13 else set()
    return sorted(name for name in settings.current_courses if name in taught)


@deploy("Send the courses' grades back to the learning platform")
def grades_back() -> None:
    """`pyinfra inventory.py tasks.courses.grades_back`: each current course of jh_lti13, its
    nbgrader scores (read by its grader) posted to the platform's gradebook (hubside.grades)."""
    settings = current_settings()
    sent = platform_courses(settings)
    if not sent:
        raise SettingsError("jh_courses: no current course of jh_lti13, so no grades go back")
    for name in sent:
        command_line = script(
            settings.layout,
            "grades-back",
            name,
            grader(name),
            course_home(settings, name) / "gradebook.db",
            settings.layout.grades_back_file,
            settings.layout.venv,
        )
        python.call(name=f"Grades of {name} back to the platform", function=send_grades, command_line=command_line)


def send_grades(command_line: str) -> None:
    """Runs grades-back on the host and shows its summary (posted, skipped and why, per context)."""
    run_shown(command_line, "grades back failed (above: which context, and why)")


def sync_rosters_command(settings: Settings) -> str:
    """sync-rosters' command line: root lists the platform courses' members, the hub user sets their
    groups with the deploy's token (as tasks.people.hub_people runs hubside-people)."""
    paths = settings.layout
    return script(
        paths,
        "sync-rosters",
        paths.grades_back_file,
        paths.venv,
        settings.hub_user,
        paths.state_dir / layout.DEPLOY_TOKEN,
        settings.hub_api,
        *platform_courses(settings),
    )


@deploy("Sync the courses' groups with the learning platform's rosters")
def sync_rosters() -> None:
    """`pyinfra inventory.py tasks.courses.sync_rosters`: the hub's groups of each current course of
    jh_lti13 (<course>-students, <course>-staff) as the platform's names and roles service lists
    its members now (hubside.rosters, hubside-people set-course-groups); a person dropped or moved
    there leaves the group, and its Unix group at their next server start."""
    settings = current_settings()
    if not platform_courses(settings):
        raise SettingsError("jh_courses: no current course of jh_lti13, so no rosters to sync")
    python.call(
        name=f"Rosters of {', '.join(platform_courses(settings))} from the platform",
        function=run_shown,
        command_line=sync_rosters_command(settings),
        failure="roster sync failed (above: which course, and why)",
    )


def run_shown(command_line: str, failure: str) -> None:
    """Runs command_line on the host and shows its output; failure is the error if it fails."""
    # As the operations run: the inventory's sudo or su, if it names one.
    given = host.current_op_global_arguments or {}
    connecting = {key: value for key, value in given.items() if key in CONNECTOR_ARGUMENT_KEYS}
    succeeded, output = host.run_shell_command(StringCommand(command_line), **connecting)
    print(f"--> {host.name}:\n{output.output}", file=sys.stderr, flush=True)
    if not succeeded:
        raise OperationError(failure)


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
    folders(settings)
    graders(settings)
    students(settings)
    exchange(settings)
    nbgrader_config(settings)
    grades_back_file(settings)
    archive(settings)
