"""Courses (jh_courses): on a real hub of the "courses" sample, each course's staff open its
grader's server and nobody else does, and nobody logs in as a grader (hubside.config.courses);
nbgrader 0.9.5's exchange as the deploy lays it out, run as the host's accounts, keeps the
exchange's root as root made it and collects only what each student owns (hubside.courses)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import glob
import grp
import json
import os
import pwd
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode

import jinja2
import pytest
from jupyterhub.proxy import Proxy
from jupyterhub.tests.mocking import MockPAMAuthenticator
from nbgrader.api import Gradebook
from nbgrader.auth import Authenticator
from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange import ExchangeError, ExchangeFactory, default
from nbgrader.utils import parse_utc
from tornado.httpclient import AsyncHTTPClient
from traitlets import Type
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader
from traitlets.utils.importstring import import_item

from hubside import courses

from .conftest import REPO, running_hub

# The deploy service's token (conftest's hub_files writes deploy.env).
DEPLOY_TOKEN = "deploy.env-secret"
PEOPLE = ("prof", "ta1", "alice", "bob", "carol")
CURRENT_GRADERS = ("grader-ml-2026", "grader-nlp")
USERS_GID = 4242  # jupyterhub-users on the faked host
# The API's refusals: 404 where the token may not even see the user, else 403.
REFUSED = (403, 404)


class HostPAM(MockPAMAuthenticator):
    """The sample's login (PAM, its allowed group jupyterhub-users) on a host as the deploy makes it:
    jupyterhub's mock of pamela takes a password equal to the name; the people and the current
    courses' graders are accounts in jupyterhub-users (tasks/courses.py), grader-old an account
    out of it (archived)."""

    @staticmethod
    def _getpwnam(name):
        if name not in (*PEOPLE, *CURRENT_GRADERS, "grader-old"):
            raise KeyError(name)
        return SimpleNamespace(pw_name=name, pw_gid=10000 + len(name))

    @staticmethod
    def _getgrouplist(name, group):
        return [group, USERS_GID] if name in (*PEOPLE, *CURRENT_GRADERS) else [group]

    @staticmethod
    def _getgrnam(name):
        if name != "jupyterhub-users":
            raise KeyError(name)
        return SimpleNamespace(gr_name=name, gr_gid=USERS_GID)


class RoutesProxy(Proxy):
    """The proxy's routes in memory: a started server is added to it as to the real one."""

    routes: dict = {}

    async def add_route(self, routespec, target, data):
        self.routes[routespec] = {"routespec": routespec, "target": target, "data": data}

    async def delete_route(self, routespec):
        self.routes.pop(routespec, None)

    async def get_all_routes(self):
        return dict(self.routes)


@pytest.fixture
def courses_hub(hub_files, helper):
    """The "courses" sample's whole configuration, loaded by JupyterHub's loader from the package's
    jupyterhub_config.py, on this machine: the faked host's PAM, the recording helper, servers on
    ports, the proxy's routes in memory."""
    config_file = hub_files("courses")
    c = PyFileConfigLoader(config_file.name, str(config_file.parent)).load_config()
    c.JupyterHub.authenticator_class = HostPAM
    # The real hub's default (MockHub's is to let everyone in).
    c.Authenticator.allow_all = False
    c.JupyterHub.proxy_class = RoutesProxy
    c.ServerSpawner.helper = str(helper.path)
    c.ServerSpawner.sockets_dir = ""
    return c


async def call(hub, method: str, path: str, token: str, body=None):
    """The hub's REST API as a token's holder: the response, whatever its code."""
    body = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    return await AsyncHTTPClient().fetch(
        f"http://127.0.0.1:{hub.port}/hub/api{path}",
        method=method,
        body=body,
        headers={"Authorization": f"token {token}"},
        raise_error=False,
        allow_nonstandard_methods=True,
    )


async def ready(hub, name: str, token: str) -> dict:
    """The user's model, once their server is ready (the helper started it, the hub saw it answer)."""
    for _ in range(300):
        model = json.loads((await call(hub, "GET", f"/users/{name}", token)).body)
        if model["servers"].get("", {}).get("ready"):
            return model
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name}'s server never became ready: {model}")


def token(hub, name: str) -> str:
    """A token of the user's (as their browser's would be: all their scopes), made a user if new."""
    from jupyterhub import orm

    orm_user = orm.User.find(hub.app.db, name) or hub.user(name).orm_user
    return hub.app.users[orm_user].new_api_token()


def starts(helper) -> list[str]:
    return [entry["argv"][1] for entry in helper.calls if entry["argv"][0] == "start"]


def test_staff_start_their_course_s_grader_and_nobody_else_does(courses_hub, helper):
    async def test(hub):
        admin = token(hub, "prof")
        # The current courses' graders are hub users from the hub's start; the archived one is not.
        for name in CURRENT_GRADERS:
            model = json.loads((await call(hub, "GET", f"/users/{name}", admin)).body)
            assert "course-graders" in model["roles"] and not model["admin"]
        assert (await call(hub, "GET", "/users/grader-old", admin)).code == 404
        ta1, alice = token(hub, "ta1"), token(hub, "alice")
        # Not yet staff: nothing on the grader's server.
        assert (await call(hub, "POST", "/users/grader-ml-2026/server", ta1)).code in REFUSED
        # The deploy's sync (hubside-people) puts the course's staff in <course>-staff.
        response = await call(hub, "POST", "/groups/ml-2026-staff/users", DEPLOY_TOKEN, {"users": ["ta1"]})
        assert response.code == 200, response.body
        scopes = json.loads((await call(hub, "GET", "/user", ta1)).body)["scopes"]
        assert {"access:servers!user=grader-ml-2026", "servers!user=grader-ml-2026"} <= set(scopes)
        assert not any("grader-nlp" in scope for scope in scopes)
        alice_scopes = json.loads((await call(hub, "GET", "/user", alice)).body)["scopes"]
        assert not any("grader-" in scope for scope in alice_scopes)

        response = await call(hub, "POST", "/users/grader-ml-2026/server", ta1)
        assert response.code in (201, 202), response.body
        await ready(hub, "grader-ml-2026", ta1)
        assert starts(helper) == ["grader-ml-2026"]
        assert "/user/grader-ml-2026/" in RoutesProxy.routes
        # Another course's grader, and a student on this one's: refused, nothing started.
        assert (await call(hub, "POST", "/users/grader-nlp/server", ta1)).code in REFUSED
        for method, path in (
            ("POST", "/users/grader-ml-2026/server"),
            ("DELETE", "/users/grader-ml-2026/server"),
            ("GET", "/users/grader-ml-2026"),
        ):
            assert (await call(hub, method, path, alice)).code in REFUSED, (method, path)
        assert starts(helper) == ["grader-ml-2026"]
        # The staff stop it; the admin starts any grader's.
        assert (await call(hub, "DELETE", "/users/grader-ml-2026/server", ta1)).code in (202, 204)
        response = await call(hub, "POST", "/users/grader-nlp/server", admin)
        assert response.code in (201, 202), response.body
        await ready(hub, "grader-nlp", admin)
        assert starts(helper) == ["grader-ml-2026", "grader-nlp"]

    RoutesProxy.routes = {}
    running_hub(test, courses_hub)


async def log_in(hub, name: str, password: str):
    """The hub's login form, as a browser fills it: the response to the POST (not followed)."""
    client, url = AsyncHTTPClient(), f"http://127.0.0.1:{hub.port}/hub/login"
    page = await client.fetch(url)
    cookies = [c.split(";")[0] for c in page.headers.get_list("Set-Cookie")]
    xsrf = next(c.split("=", 1)[1] for c in cookies if c.startswith("_xsrf="))
    return await client.fetch(
        url,
        method="POST",
        body=urlencode({"username": name, "password": password, "_xsrf": xsrf}),
        headers={"Cookie": "; ".join(cookies)},
        follow_redirects=False,
        raise_error=False,
    )


def logged_in(response) -> bool:
    return response.code == 302 and any(
        c.startswith("jupyterhub-hub-login=") for c in response.headers.get_list("Set-Cookie")
    )


def test_nobody_logs_in_as_a_grader_whatever_the_password(courses_hub):
    async def test(hub):
        # The host's PAM takes the grader's password (it is in jupyterhub-users): the hub refuses.
        for name in (*CURRENT_GRADERS, "GRADER-ML-2026", "grader-old"):
            response = await log_in(hub, name, name.lower())
            assert response.code == 403 and not logged_in(response), name
        assert b"grader account" in (await log_in(hub, "grader-nlp", "grader-nlp")).body
        assert logged_in(await log_in(hub, "alice", "alice"))
        assert logged_in(await log_in(hub, "ta1", "ta1"))
        assert not logged_in(await log_in(hub, "alice", "wrong"))

    running_hub(test, courses_hub)


def test_the_hook_is_there_only_with_graders():
    c = Config()
    c.JupyterHub.load_roles = [{"name": "deploy", "scopes": ["admin:users"], "services": ["deploy"]}]
    from hubside import config as hub_config

    hub_config.courses(c, {"graders": [], "roles": []})
    assert "post_auth_hook" not in c.Authenticator
    assert [role["name"] for role in c.JupyterHub.load_roles] == ["deploy"]
    hub_config.courses(c, {"graders": ["grader-x"], "roles": [{"name": "x-grading", "scopes": [], "groups": []}]})
    hook = c.Authenticator.post_auth_hook
    assert [role["name"] for role in c.JupyterHub.load_roles] == ["deploy", "x-grading"]
    assert hook(MockPAMAuthenticator(), None, {"name": "alice"}) == {"name": "alice"}
    assert hook(MockPAMAuthenticator(), None, None) is None


# nbgrader's exchange, run as the host's accounts. The tests become them (setresuid, keeping root
# as the saved id to come back): the grader is `bin`, the students `nobody` and `daemon` (the
# submissions bear their names), the course's students' group `users`.
GRADER, ALICE, BOB, STUDENTS_GROUP = "bin", "nobody", "daemon", "users"
COURSE = "ml-2026"
UNKNOWN_UID = 54321


def _accounts_missing() -> str:
    if os.geteuid() != 0:
        return "the exchange's tests become other accounts: they run as root"
    for name in (GRADER, ALICE, BOB):
        try:
            pwd.getpwnam(name)
        except KeyError:
            return f"no account {name} on this machine"
    try:
        grp.getgrnam(STUDENTS_GROUP)
    except KeyError:
        return f"no group {STUDENTS_GROUP} on this machine"
    return ""


as_root = pytest.mark.skipif(bool(_accounts_missing()), reason=_accounts_missing() or "-")


@contextlib.contextmanager
def account(name: str):
    """Run as the account name, in the course's students' group (the grader is too)."""
    entry, groups = pwd.getpwnam(name), os.getgroups()
    os.setgroups([grp.getgrnam(STUDENTS_GROUP).gr_gid])
    os.setresgid(entry.pw_gid, entry.pw_gid, 0)
    os.setresuid(entry.pw_uid, entry.pw_uid, 0)
    try:
        yield
    finally:
        os.setresuid(0, 0, 0)
        os.setresgid(0, 0, 0)
        os.setgroups(groups)


def notebook(text: str) -> str:
    cell = {"cell_type": "markdown", "id": "a", "metadata": {}, "source": text}
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


class Course(SimpleNamespace):
    """The deploy's layout (tasks/courses.py) in a folder of /tmp: the courses' folder, the course's
    home (its grader's, 0700) and the exchange (root's, 0755), the course's part of it (its
    grader's, entered by its students' group alone, 0750)."""

    def config(self) -> Config:
        c = Config()
        c.Exchange.root = str(self.exchange)
        c.Exchange.path_includes_course = True
        return c

    def run(self, kind: str, name: str, student_id: str = "*", **traits):
        """nbgrader's exchange of that kind (through its factory, configured as configure() does),
        as the account name: a student in their own folder, the grader on the course's."""
        c = self.config()
        for each, exchange_class in courses.EXCHANGE_CLASSES.items():
            setattr(c.ExchangeFactory, each, f"hubside.courses.{exchange_class.__name__}")
        student = name != GRADER
        root = str(self.homes / name if student else self.home)
        coursedir = CourseDirectory(config=c, course_id=COURSE, assignment_id="ps1", root=root, student_id=student_id)
        if student:
            traits = {"assignment_dir": str(self.homes / name), "cache": str(self.homes / name / "cache"), **traits}
        factory = ExchangeFactory(config=c)
        exchange = getattr(factory, kind)(coursedir=coursedir, authenticator=Authenticator(config=c), **traits)
        with account(name):
            return exchange.start()

    def submissions(self) -> list[str]:
        return sorted(os.path.basename(path) for path in glob.glob(str(self.exchange / COURSE / "inbound" / "*")))

    def collected(self, student: str) -> Path:
        return self.home / "submitted" / student / "ps1"


@pytest.fixture
def course(monkeypatch):
    """The course, its assignment ps1 released by its grader, fetched and submitted by each student."""
    top = Path(tempfile.mkdtemp(prefix="hubside-courses-"))
    top.chmod(0o755)
    try:
        c = Course(top=top, exchange=top / "exchange", home=top / "courses" / COURSE, homes=top / "homes")
        students = grp.getgrnam(STUDENTS_GROUP).gr_gid
        for folder, (uid, gid), mode in (
            (top / "courses", (0, 0), 0o755),
            (c.home, ids(GRADER), 0o700),
            (c.exchange, (0, 0), 0o755),
            (c.exchange / COURSE, (ids(GRADER)[0], students), 0o750),
            (c.homes, (0, 0), 0o755),
            (c.homes / ALICE, ids(ALICE), 0o700),
            (c.homes / BOB, ids(BOB), 0o700),
        ):
            folder.mkdir(parents=True, exist_ok=True)
            os.chown(folder, uid, gid)
            folder.chmod(mode)
        # The course's gradebook, made as root: nbgrader runs the venv's alembic to make one (on the
        # servers' PATH), whose Python, below /root here, the accounts the tests become cannot run.
        monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
        with Gradebook(f"sqlite:///{c.home}/gradebook.db", COURSE):
            pass
        os.chown(c.home / "gradebook.db", *ids(GRADER))
        with account(GRADER):
            for step, text in (("source", "ps1 with its solutions"), ("release", "ps1")):
                (c.home / step / "ps1").mkdir(parents=True)
                (c.home / step / "ps1" / "ps1.ipynb").write_text(notebook(text))
        c.run("ReleaseAssignment", GRADER)
        for student in (ALICE, BOB):
            c.run("FetchAssignment", student)
            work = c.homes / student / COURSE / "ps1" / "ps1.ipynb"
            with account(student):
                work.write_text(notebook(f"{student}'s answers"))
            c.run("Submit", student)
        yield c
    finally:
        shutil.rmtree(top)


def ids(name: str) -> tuple[int, int]:
    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@as_root
def test_the_exchange_is_kept_as_the_deploy_made_it(course):
    """The grader released, the students fetched and submitted: the root and the course's part
    have the deploy's owners and modes, the submissions their students' names and owners."""
    assert mode(course.exchange) == 0o755 and os.stat(course.exchange).st_uid == 0
    part = os.stat(course.exchange / COURSE)
    assert stat.S_IMODE(part.st_mode) == 0o750 and part.st_uid == pwd.getpwnam(GRADER).pw_uid
    names = course.submissions()
    assert [name.split("+")[:2] for name in names] == sorted([[BOB, "ps1"], [ALICE, "ps1"]])
    for name in names:
        owner = pwd.getpwuid(os.lstat(course.exchange / COURSE / "inbound" / name).st_uid).pw_name
        assert owner == name.split("+")[0]


@as_root
@pytest.mark.parametrize("kind", sorted(courses.EXCHANGE_CLASSES))
def test_no_exchange_changes_the_root_and_each_fails_clearly_without_it(kind, tmp_path):
    root = tmp_path / "exchange"
    root.mkdir()
    root.chmod(0o755)
    c = Config()
    c.Exchange.root = str(root)
    coursedir = CourseDirectory(course_id=COURSE, assignment_id="ps1", root=str(tmp_path))
    exchange = courses.EXCHANGE_CLASSES[kind](coursedir=coursedir, authenticator=Authenticator(), config=c)
    exchange.ensure_root()
    assert mode(root) == 0o755
    root.rmdir()
    with pytest.raises(ExchangeError, match=f"The exchange {root} is missing: ask the hub's admins"):
        exchange.start()
    assert not root.exists()


@as_root
def test_nbgrader_s_own_release_would_open_the_root_to_everyone(tmp_path):
    """What the classes above prevent (so that the test above would see it): nbgrader's release,
    run by the root's owner, makes the root writable by everyone."""
    root = tmp_path / "exchange"
    root.mkdir(mode=0o755)
    c = Config()
    c.Exchange.root = str(root)
    coursedir = CourseDirectory(course_id=COURSE, assignment_id="ps1", root=str(tmp_path))
    default.ExchangeReleaseAssignment(coursedir=coursedir, authenticator=Authenticator(), config=c).ensure_root()
    assert mode(root) == 0o777


@as_root
def test_collect_takes_each_student_s_own_submission_and_nothing_else_in_their_name(course, caplog):
    inbound = course.exchange / COURSE / "inbound"
    alice_s = submission(course, ALICE).name
    # bob hands in work as alice, later than hers: a folder of his in her name.
    forged = inbound / f"{ALICE}+ps1+2099-01-01 00:00:00.000000 UTC+x"
    with account(BOB):
        forged.mkdir()
        (forged / "ps1.ipynb").write_text(notebook("bob's work as alice's"))
    # A link in alice's name, hers, to a folder of hers: not a submission.
    with account(ALICE):
        linked = inbound / f"{ALICE}+ps1+2099-01-02 00:00:00.000000 UTC+y"
        linked.symlink_to(course.homes / ALICE / COURSE / "ps1")
        # A folder of hers without a time: left, not failing the collect.
        (inbound / f"{ALICE}+ps1+garbage").mkdir()
    # A folder in her name of an account since removed.
    orphan = inbound / f"{ALICE}+ps1+2099-01-03 00:00:00.000000 UTC+z"
    orphan.mkdir()
    os.chown(orphan, UNKNOWN_UID, UNKNOWN_UID)
    assert os.lstat(linked).st_uid == pwd.getpwnam(ALICE).pw_uid
    course.run("Collect", GRADER)

    alice = course.collected(ALICE)
    assert (alice / "ps1.ipynb").read_text() == notebook(f"{ALICE}'s answers")
    assert (alice / "timestamp.txt").read_text() == (inbound / alice_s / "timestamp.txt").read_text()
    assert (course.collected(BOB) / "ps1.ipynb").read_text() == notebook(f"{BOB}'s answers")
    assert sorted(os.listdir(course.home / "submitted")) == sorted([ALICE, BOB])
    refused = "\n".join(r.getMessage() for r in caplog.records if r.getMessage().startswith("Not collected"))
    assert f"{forged.name} is not a submission of {ALICE} (it is {BOB}'s)" in refused
    assert f"{linked.name} is not a submission of {ALICE} (it is {ALICE}'s)" in refused
    assert f"{ALICE}+ps1+garbage has no time of submission" in refused
    assert f"{orphan.name} is not a submission of {ALICE} (it is None's)" in refused
    # Collecting one student's: theirs, the same way.
    shutil.rmtree(course.home / "submitted")
    course.run("Collect", GRADER, student_id=ALICE)
    assert os.listdir(course.home / "submitted") == [ALICE]
    assert (course.collected(ALICE) / "ps1.ipynb").read_text() == notebook(f"{ALICE}'s answers")


@as_root
def submission(course, student: str) -> Path:
    (name,) = [name for name in course.submissions() if name.startswith(f"{student}+")]
    return course.exchange / COURSE / "inbound" / name


HANDED_IN = ["ps1.ipynb", "submission_secret.txt", "timestamp.txt"]


@as_root
def test_collect_copies_what_a_student_handed_in_not_what_their_links_point_to(course, caplog):
    """A submission is its student's folder, 0777 (nbgrader's): the student adds to it after
    submitting. The grader copies it: a link to the course's solutions (the grader's to read, not
    the student's) would be copied as the student's work, and graded, and given back as feedback."""
    alice_s = submission(course, ALICE)
    with account(ALICE):
        (alice_s / "answers.ipynb").symlink_to(course.home / "source" / "ps1" / "ps1.ipynb")
        (alice_s / "solutions").symlink_to(course.home / "source" / "ps1")
        with pytest.raises(PermissionError):
            (alice_s / "answers.ipynb").read_text()
    course.run("Collect", GRADER)
    collected = course.collected(ALICE)
    assert sorted(os.listdir(collected)) == HANDED_IN
    assert not any("solutions" in path.read_text() for path in collected.rglob("*") if path.is_file())
    messages = "\n".join(r.getMessage() for r in caplog.records)
    for name in ("answers.ipynb", "solutions"):
        assert f"Not collected: {alice_s / name}, not a file nor a folder" in messages


@as_root
def test_a_pipe_in_a_submission_does_not_stop_the_collect(course, caplog):
    bob_s = submission(course, BOB)
    with account(BOB):
        os.mkfifo(bob_s / "pipe")
    course.run("Collect", GRADER)
    assert sorted(os.listdir(course.collected(ALICE))) == HANDED_IN
    assert sorted(os.listdir(course.collected(BOB))) == HANDED_IN
    assert f"Not collected: {bob_s / 'pipe'}, not a file nor a folder" in "\n".join(
        r.getMessage() for r in caplog.records
    )


@as_root
def test_collect_before_the_due_date_takes_the_student_s_last_in_time(course):
    """nbgrader's --before-duedate, kept: of a student's submissions, the newest one made by the
    due date; without it, the newest."""
    first = submission(course, ALICE)
    with Gradebook(f"sqlite:///{course.home}/gradebook.db", COURSE) as gradebook:
        gradebook.add_assignment("ps1", duedate=parse_utc((first / "timestamp.txt").read_text()))
    course.run("Submit", ALICE)
    (later,) = {submission.name for submission in (course.exchange / COURSE / "inbound").iterdir()} - {
        first.name,
        submission(course, BOB).name,
    }
    course.run("Collect", GRADER, before_duedate=True)
    assert (course.collected(ALICE) / "timestamp.txt").read_text() == (first / "timestamp.txt").read_text()
    shutil.rmtree(course.home / "submitted")
    course.run("Collect", GRADER)
    assert (course.collected(ALICE) / "timestamp.txt").read_text() == later.split("+")[2]


def render_nbgrader_config(tmp_path: Path, courses_file: Path) -> Path:
    """/etc/jupyter/nbgrader_config.py as the deploy writes it (templates/nbgrader_config.py.j2)."""
    template = jinja2.Environment(loader=jinja2.FileSystemLoader(str(REPO / "templates")))
    path = tmp_path / "nbgrader_config.py"
    path.write_text(template.get_template("nbgrader_config.py.j2").render(courses_file=courses_file))
    return path


@pytest.mark.parametrize("grader", [True, False])
def test_every_server_s_nbgrader_uses_the_exchange_and_a_grader_s_its_course(tmp_path, grader):
    me = pwd.getpwuid(os.getuid()).pw_name
    home = "/srv/nbgrader/courses/ml-2026"
    courses_file = tmp_path / "courses.json"
    courses_file.write_text(
        json.dumps(
            {
                "exchange_root": "/srv/nbgrader/exchange",
                "graders": {me if grader else "grader-ml-2026": {"course": COURSE, "home": home}},
            }
        )
    )
    config_file = render_nbgrader_config(tmp_path, courses_file)
    c = PyFileConfigLoader(config_file.name, str(tmp_path)).load_config()
    assert c.Exchange.root == "/srv/nbgrader/exchange" and c.Exchange.path_includes_course is True
    if grader:
        assert c.CourseDirectory.course_id == COURSE and c.CourseDirectory.root == home
    else:
        assert "CourseDirectory" not in c or not c.CourseDirectory
    # Every kind of exchange nbgrader has is one of hubside.courses, each a kind of nbgrader's.
    kinds = {name for name, trait in ExchangeFactory.class_traits(config=True).items() if isinstance(trait, Type)}
    assert kinds == set(courses.EXCHANGE_CLASSES) == set(c.ExchangeFactory)
    factory = ExchangeFactory(config=c)
    for kind in kinds:
        exchange_class = import_item(c.ExchangeFactory[kind])
        assert exchange_class is courses.EXCHANGE_CLASSES[kind] and getattr(factory, kind) is exchange_class
        assert exchange_class.__module__ == "hubside.courses"
        assert issubclass(exchange_class, ExchangeFactory.class_traits()[kind].klass)
        assert exchange_class.ensure_root is courses.RootsExchange.ensure_root


@as_root
@pytest.mark.parametrize("look", [1, 2])
@pytest.mark.parametrize("swapped", ["answers.ipynb", "work", "."])
def test_collect_takes_no_link_swapped_in_after_its_checks(course, monkeypatch, caplog, swapped, look):
    """The student owns their submission and may swap a file, a folder, or the submission itself
    for a link while the grader collects (a loop of renames): right after collect looked at it
    (its look-th lstat: the size's, then the check for links) and before it copies. What is copied
    is what was checked, or nothing; never the course's solutions, and the collect goes on."""
    alice_s = submission(course, ALICE)
    solutions = course.home / "source" / "ps1"
    target = alice_s if swapped == "." else alice_s / swapped
    with account(ALICE):
        if swapped == "answers.ipynb":
            target.write_text(notebook("alice's own"))
            link_to = solutions / "ps1.ipynb"
        elif swapped == "work":
            target.mkdir()
            (target / "ps1.ipynb").write_text(notebook("alice's own"))
            link_to = solutions
        else:
            link_to = solutions
        spare = target.parent / f".{target.name}.link"
        spare.symlink_to(link_to)
    real_lstat, looks, done = os.lstat, [], []

    def lstat_then_swap(path, *args, **kwargs):
        # What the student's loop of renames does, at the worst moment: right after a check.
        result = real_lstat(path, *args, **kwargs)
        if os.fspath(path) == str(target) and not done:
            looks.append(path)
        if len(looks) == look and not done:
            done.append(path)
            # (the submission and inbound are writable by the grader too)
            os.rename(target, target.parent / f".{target.name}.aside")
            os.rename(spare, target)
        return result

    monkeypatch.setattr(os, "lstat", lstat_then_swap)
    course.run("Collect", GRADER)
    monkeypatch.setattr(os, "lstat", real_lstat)
    # Collect looks (lstat) at each path once at least (nbgrader's size); the old copy twice.
    assert done or look > 1
    collected = course.collected(ALICE)
    copied = [path for path in collected.rglob("*") if path.is_file()] if collected.exists() else []
    assert not any("solutions" in path.read_text() for path in copied)
    assert (course.collected(BOB) / "ps1.ipynb").read_text() == notebook(f"{BOB}'s answers")


@as_root
def test_a_submission_that_cannot_be_copied_does_not_stop_the_others(course, caplog):
    """alice nests folders deeper than Python recurses (nbgrader's size, a copy of folders): her
    submission is left and said so, bob's is collected all the same."""
    alice_s, depth = submission(course, ALICE), 1500
    with account(ALICE):
        for level in range(1, depth + 1):
            os.mkdir(str(alice_s) + "/d" * level)
    try:
        course.run("Collect", GRADER)
    finally:
        for level in range(depth, 0, -1):
            os.rmdir(str(alice_s) + "/d" * level)
    assert (course.collected(BOB) / "ps1.ipynb").read_text() == notebook(f"{BOB}'s answers")
    assert not course.collected(ALICE).exists()
    assert f"Not collected: {alice_s} could not be copied (RecursionError)" in caplog.text


@as_root
def test_a_submission_changed_after_the_time_it_gives_is_dated_by_the_change(course, caplog):
    """alice's submission is hers: she renames it to an earlier time and writes that time in it
    (or submits early and finishes later). Collected, it bears its last change's time, which
    autograde reads for lateness; bob's, unchanged, keeps its own."""
    alice_s, bob_s = submission(course, ALICE), submission(course, BOB)
    claimed = "2020-01-01 00:00:00.000000 UTC"
    backdated = alice_s.parent / f"{ALICE}+ps1+{claimed}+abc"
    with account(ALICE):
        alice_s.rename(backdated)
        (backdated / "timestamp.txt").write_text(claimed)
        (backdated / "ps1.ipynb").write_text(notebook("finished after the due date"))
    course.run("Collect", GRADER)
    dated = parse_utc((course.collected(ALICE) / "timestamp.txt").read_text())
    assert dated > parse_utc(claimed) + datetime.timedelta(days=365)
    assert f"{backdated.name} was changed at" in caplog.text
    assert (course.collected(BOB) / "timestamp.txt").read_text() == (bob_s / "timestamp.txt").read_text()
