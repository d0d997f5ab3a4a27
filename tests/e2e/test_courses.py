"""Courses as code on a real Ubuntu 24.04 hub (jh_courses, issue 29): two courses of nbgrader on
one hub, an assignment made, released, fetched, solved, submitted, collected, autograded and
its feedback returned, by real people through their own servers' kernels; the exchange attacked
by a student; the staff's and the students' rights on the graders' servers; the term archived.

Tests run in file order on one host."""

from __future__ import annotations

import json
import time

import pytest

from tests import harness
from tests.browser import browser_page
from tests.e2e.conftest import plain_hub, run_pyinfra, write_inventory
from tests.e2e.hub_client import HubClient

PEOPLE = {name: f"{name}-password" for name in ("prof", "ta1", "alice", "bob", "carol")}
COURSES = {
    "ml-2026": {"instructors": ["prof"], "tas": ["ta1"], "students": "ml-2026"},
    "nlp": {"instructors": ["prof"], "students": "nlp"},
}
SETTINGS = {
    "jh_users": [{"name": n, "password_hash": harness.password_hash(p)} for n, p in PEOPLE.items()],
    "jh_groups": {"ml-2026": ["alice", "bob"], "nlp": ["carol"]},
    "jh_courses": COURSES,
    # No admin: each right here is a course's.
    "jh_admin_users": [],
}
NBGRADER = "/opt/jupyter/.venv/bin/nbgrader"
EXCHANGE = "/srv/nbgrader/exchange"
ARCHIVES = "/var/backups/jupyterhub-offboard"

# An assignment with one answer and one autograded test worth 2 points (nbgrader's cell metadata).
SOURCE = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {
                "nbgrader": {
                    "grade": False,
                    "grade_id": "answer",
                    "locked": False,
                    "schema_version": 3,
                    "solution": True,
                    "task": False,
                }
            },
            "outputs": [],
            "source": "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
        },
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {
                "nbgrader": {
                    "grade": True,
                    "grade_id": "test_double",
                    "locked": True,
                    "points": 2,
                    "schema_version": 3,
                    "solution": False,
                    "task": False,
                }
            },
            "outputs": [],
            "source": "assert double(2) == 4\nassert double(5) == 10",
        },
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def deploy(host, workdir, name: str, **overrides):
    settings = plain_hub(host, **{**SETTINGS, **overrides})
    return run_pyinfra(write_inventory(workdir / f"{name}.py", [(host.name, settings)]))


def logged_in(host, name: str) -> HubClient:
    user = HubClient(f"http://{host.address}:8000")
    assert user.login(name, PEOPLE[name]).status_code == 302, host.journal()
    user.create_token()
    return user


def shell(user: HubClient, command: str, server: str | None = None, timeout: float = 120) -> str:
    """command run by bash in a kernel of user's server (or of the grader's server they opened),
    as that server's account; its output and exit status."""
    code = (
        "import subprocess\n"
        f"r = subprocess.run(['bash', '-c', {command!r}], capture_output=True, text=True, timeout={timeout})\n"
        "print(r.stdout + r.stderr + f'exit={r.returncode}')"
    )
    owner, user.user = user.user, server or user.user
    try:
        return user.run_code(code, timeout=timeout + 30).rstrip("\n")
    finally:
        user.user = owner


def fetch_and_submit_in_chromium(host, name: str, assignment: str) -> None:
    """name, in Chromium, fetches and submits the assignment from JupyterLab's Assignments panel
    (nbgrader's), unchanged."""
    with browser_page(timeout_ms=90_000, base_url=f"http://{host.address}:8000") as page:
        page.goto("/hub/login")
        page.fill("#username_input", name)
        page.fill("#password_input", PEOPLE[name])
        page.click("#login_submit")
        page.wait_for_url(f"**/user/{name}/lab**")
        page.get_by_text("Nbgrader", exact=True).click()
        page.get_by_text("Assignment List", exact=True).click()
        released = page.locator("#released_assignments_list")
        released.get_by_text(assignment).wait_for()
        released.get_by_role("button", name="Fetch").click()
        fetched = page.locator("#fetched_assignments_list")
        fetched.get_by_role("button", name="Submit").click()
        page.locator("#submitted_assignments_list").get_by_text(assignment).first.wait_for()


def open_grader(staff: HubClient, course: str) -> None:
    """The course's grader's server, started by one of its staff."""
    grader = f"grader-{course}"
    response = staff.api("POST", f"/hub/api/users/{grader}/server")
    assert response.status_code in (201, 202, 400), response.text
    for _ in range(120):
        model = staff.api("GET", f"/hub/api/users/{grader}").json()
        if (model.get("servers") or {}).get("", {}).get("ready"):
            return
        time.sleep(1)
    raise TimeoutError(f"{grader}'s server did not start")


def release(staff: HubClient, course: str, assignment: str) -> None:
    """The SOURCE assignment made and released by one of the course's staff, in its grader's server."""
    open_grader(staff, course)
    notebook = json.dumps(SOURCE)
    out = shell(
        staff,
        f"mkdir -p source/{assignment} && cat > source/{assignment}/{assignment}.ipynb <<'EOF'\n{notebook}\nEOF\n"
        f"{NBGRADER} generate_assignment {assignment} && {NBGRADER} release_assignment {assignment}",
        server=f"grader-{course}",
    )
    assert out.endswith("exit=0"), out


@pytest.fixture(scope="module")
def courses(start, workdir):
    host = start("noble", "jhd-test-courses")
    result = deploy(host, workdir, "courses")
    assert result.returncode == 0, result.stderr[-4000:]
    return host


def test_the_exchange_is_roots_and_each_course_its_students(courses):
    lines = courses.sh(f"stat -c '%n %U %G %a' /srv/nbgrader {EXCHANGE} {EXCHANGE}/ml-2026 {EXCHANGE}/nlp").split("\n")
    assert lines[:4] == [
        "/srv/nbgrader root root 755",
        f"{EXCHANGE} root root 755",
        f"{EXCHANGE}/ml-2026 grader-ml-2026 ml-2026-students 750",
        f"{EXCHANGE}/nlp grader-nlp nlp-students 750",
    ]
    assert courses.sh("getent group ml-2026-students").strip().split(":")[3] == "alice,bob,grader-ml-2026"
    for name, groups in (("prof", ["ml-2026-staff", "nlp-staff"]), ("ta1", ["ml-2026-staff"])):
        assert logged_in(courses, name).api("GET", f"/hub/api/users/{name}").json()["groups"] == groups
    assert logged_in(courses, "alice").api("GET", "/hub/api/users/alice").json()["groups"] == [
        "ml-2026",
        "ml-2026-students",
    ]


def test_only_a_courses_staff_open_its_graders_server(courses):
    prof, ta1, alice, carol = (logged_in(courses, name) for name in ("prof", "ta1", "alice", "carol"))
    open_grader(ta1, "ml-2026")
    status = "/user/grader-ml-2026/api/kernels"
    for staff in (prof, ta1):
        response = staff.api("GET", status, allow_redirects=False)
        assert response.status_code == 200 and isinstance(response.json(), list), response.text
    for student in (alice, carol):
        # Refused, or sent to the hub's login: never the server's answer.
        response = student.api("GET", status, allow_redirects=False)
        assert response.status_code in (302, 403), (
            student.user,
            response.text[:500],
            dict(response.headers),
            student.api("GET", "/hub/api/user").json(),
            courses.sh("journalctl -u 'jupyter-singleuser@grader-ml-2026' --no-pager | tail -40", check=False),
        )
        assert student.api("POST", "/hub/api/users/grader-ml-2026/server").status_code in (403, 404)
    assert ta1.api("POST", "/hub/api/users/grader-nlp/server").status_code in (403, 404)
    assert alice.login("grader-ml-2026", "anything").status_code != 302


def test_an_assignment_goes_out_comes_back_graded_and_returns_as_feedback(courses):
    prof, alice, bob = (logged_in(courses, name) for name in ("prof", "alice", "bob"))
    release(prof, "ml-2026", "ps1")
    # alice in her terminal, with the right answer; bob in Chromium, with none (the test fails).
    alice.start_server()
    out = shell(alice, f"{NBGRADER} fetch_assignment ps1 --course ml-2026 && ls ml-2026/ps1")
    assert "ps1.ipynb" in out and out.endswith("exit=0"), out
    solve = (
        "import json; p = 'ml-2026/ps1/ps1.ipynb'; nb = json.load(open(p)); "
        "nb['cells'][0]['source'] = 'def double(x):\\n    return 2 * x'; json.dump(nb, open(p, 'w'))"
    )
    out = shell(alice, f'python3 -c "{solve}" && {NBGRADER} submit ps1 --course ml-2026')
    assert out.endswith("exit=0"), out
    bob.start_server()
    fetch_and_submit_in_chromium(courses, "bob", "ps1")

    # bob, in his terminal: he cannot list or read the submissions, change the released
    # assignment, or hand in a wrong answer as alice's (newer than hers, so nbgrader would take it).
    inbound, outbound = f"{EXCHANGE}/ml-2026/inbound", f"{EXCHANGE}/ml-2026/outbound/ps1/ps1.ipynb"
    out = shell(bob, f"ls {inbound}; cat {inbound}/alice+ps1+*/ps1.ipynb; echo x >> {outbound}; echo done")
    assert out.count("Permission denied") == 2 and "No such file" in out, out
    forged = f"{inbound}/alice+ps1+2099-01-01 00:00:00.000000 UTC+forged"
    out = shell(bob, f"mkdir '{forged}' && cp ml-2026/ps1/ps1.ipynb '{forged}/' && echo planted")
    assert "planted" in out, out

    # The TA grades.
    out = shell(
        logged_in(courses, "ta1"),
        f'{NBGRADER} collect ps1 && {NBGRADER} autograde ps1 && /opt/jupyter/.venv/bin/python -c "'
        "from nbgrader.api import Gradebook\n"
        "with Gradebook('sqlite:///gradebook.db') as gb:\n"
        "    print({s: gb.find_submission('ps1', s).score for s in ('alice', 'bob')})\"",
        server="grader-ml-2026",
        timeout=300,
    )
    assert "{'alice': 2.0, 'bob': 0.0}" in out, out
    assert "is not a submission of alice" in out, out

    out = shell(prof, f"{NBGRADER} generate_feedback ps1 && {NBGRADER} release_feedback ps1", server="grader-ml-2026")
    assert out.endswith("exit=0"), out
    out = shell(alice, f"{NBGRADER} fetch_feedback ps1 --course ml-2026 && cat ml-2026/ps1/feedback/*/ps1.html")
    assert "Score: 2.0 / 2.0" in out or "2.0 / 2.0" in out, out[-2000:]
    out = shell(alice, f"ls {EXCHANGE}/ml-2026/feedback; echo done")
    assert "Permission denied" in out, out


def test_a_student_of_another_course_sees_nothing_of_it(courses):
    carol = logged_in(courses, "carol")
    carol.start_server()
    out = shell(
        carol,
        f"{NBGRADER} list --course ml-2026; ls {EXCHANGE}/ml-2026; {NBGRADER} fetch_assignment ps1 --course ml-2026",
    )
    # nbgrader's list shows "<course> <assignment>": none of ml-2026; the fetch finds nothing.
    assert "ml-2026 ps1" not in out and "Assignment not found" in out, out
    assert "Permission denied" in out and not out.endswith("exit=0"), out
    out = shell(
        carol, f"mkdir -p ml-2026/ps1 && cp /dev/null ml-2026/ps1/ps1.ipynb && {NBGRADER} submit ps1 --course ml-2026"
    )
    assert not out.endswith("exit=0"), out
    assert "carol" not in courses.sh(f"ls -a {EXCHANGE}/ml-2026/inbound")


def test_a_term_archived_keeps_its_work_and_leaves_the_other_course(courses, workdir):
    prof, alice, carol = (logged_in(courses, name) for name in ("prof", "alice", "carol"))
    release(prof, "nlp", "nb1")

    archived = {**COURSES, "ml-2026": {**COURSES["ml-2026"], "archived": True}}
    result = deploy(courses, workdir, "archived", jh_courses=archived)
    assert result.returncode == 0, result.stderr[-4000:]
    listing = courses.sh(f"ls {ARCHIVES}; ls {EXCHANGE}").split()
    archive = next(name for name in listing if name.startswith("course-ml-2026-"))
    assert "ml-2026" not in listing and "nlp" in listing
    assert courses.sh(f"stat -c '%U %a' {ARCHIVES}/{archive}").strip() == "root 600"
    content = courses.sh(f"tar -tzf {ARCHIVES}/{archive}")
    assert "srv/nbgrader/courses/ml-2026/gradebook.db" in content
    assert "srv/nbgrader/exchange/ml-2026/inbound/" in content
    assert "ps1" not in shell(alice, f"{NBGRADER} list; echo done")
    assert "nb1" in shell(carol, f"{NBGRADER} list; echo done")
    ta1 = logged_in(courses, "ta1")
    assert ta1.api("POST", "/hub/api/users/grader-ml-2026/server").status_code in (403, 404)

    again = deploy(courses, workdir, "archived-again", jh_courses=archived)
    assert again.returncode == 0, again.stderr[-4000:]
    assert again.totals["success"] == 0, again.changed_operations()
