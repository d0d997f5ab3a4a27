"""Grades back (hubside.grades) against a real LTI 1.3 platform (tests/lti_platform.py, in a process
of its own) from a real nbgrader gradebook: hubside-course-scores reads the gradebook and changes
nothing; hubside-grades-back posts its scores to the course's own contexts and line items only,
and refuses scores that are not what hubside-course-scores prints."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.request import Request, urlopen

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from nbgrader.api import Gradebook
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from hubside import grades, lti_services
from hubside.lti import AGS_CLAIM, CLAIM, NRPS_CLAIM, UnixLTIAuthenticator

from .conftest import REPO

KEY = rsa.generate_private_key(65537, 2048)
CLIENT_ID, DEPLOYMENT = "tool-1", "dep-1"
# The platform's contexts: ml's two sections, art, and one the settings moved from ml to art.
CONTEXTS = {
    "ctx-ml": ("ml", {"sub-lena": "Learner", "sub-otto": "Learner", "sub-sam": "Learner", "sub-prof": "Instructor"}),
    "ctx-ml-b": ("ml", {"sub-bea": "Learner", "sub-tara": "TeachingAssistant"}),
    "ctx-art": ("art", {"sub-otto": "Learner", "sub-prof": "Instructor"}),
    "ctx-moved": ("art", {"sub-lena": "Learner"}),
}
# The hub's name bindings; sam has none (never launched), tara's gradebook entry is staff's.
BOUND = ("lena", "otto", "bea", "tara", "prof")


class Platform:
    """tests/lti_platform.py run as `python -m tests.lti_platform`, the tool's public key configured."""

    def __init__(self, tmp_path: Path, contexts: dict = CONTEXTS):
        public = KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        tool = {"deployment_id": DEPLOYMENT, "login_url": "http://127.0.0.1:9/login", "redirect_uris": []}
        subs = {sub for _, members in contexts.values() for sub in members}
        config = {
            "tools": {CLIENT_ID: {**tool, "target_link_uri": "http://127.0.0.1:9/", "public_key": public.decode()}},
            "users": {sub: {"name": sub[4:].title()} for sub in subs},
            "contexts": {c: {"label": c, "title": c, "members": members} for c, (_, members) in contexts.items()},
        }
        (tmp_path / "platform.json").write_text(json.dumps(config))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.lti_platform", "--port", "0", "--config", str(tmp_path / "platform.json")],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = self.process.stdout.readline().strip().removeprefix("listening on ")
        assert self.url.startswith("http://127.0.0.1:"), self.url

    def stop(self):
        self.process.terminate()
        self.process.wait(10)
        self.process.stdout.close()

    def scores(self) -> list[tuple]:
        with urlopen(f"{self.url}/_test/scores") as answer:
            return [
                (s["context"], s["label"], s["userId"], s["scoreGiven"], s["scoreMaximum"]) for s in json.load(answer)
            ]

    def line_items(self, context: str) -> list[dict]:
        token = lti_services.Services(f"{self.url}/token", CLIENT_ID, KEY, loopback_http=True).token()
        request = Request(
            f"{self.url}/contexts/{context}/lineitems", headers={"Authorization": f"Bearer {token}"}, method="GET"
        )
        with urlopen(request) as answer:
            return json.load(answer)


@pytest.fixture
def platform(tmp_path):
    platform = Platform(tmp_path)
    yield platform
    platform.stop()


@pytest.fixture
def settings(platform, tmp_path) -> Path:
    """The deploy's settings file, the hub's courses file (written by the hub's own code, as
    launches from each context would) and name bindings, the tool's key."""
    (tmp_path / "tool-key.pem").write_bytes(
        KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    hub = UnixLTIAuthenticator(courses_file=str(tmp_path / "lti-courses.json"))
    for context, (course, _) in CONTEXTS.items():
        # ctx-moved was ml's when launched; the settings give it to art since.
        launch = {
            f"{CLAIM}context": {"id": context},
            f"{CLAIM}deployment_id": DEPLOYMENT,
            NRPS_CLAIM: {"context_memberships_url": f"{platform.url}/contexts/{context}/memberships"},
            AGS_CLAIM: {"lineitems": f"{platform.url}/contexts/{context}/lineitems"},
        }
        hub.keep_services("ml" if context == "ctx-moved" else course, launch)
    (tmp_path / "names.json").write_text(json.dumps({name: f"{platform.url} sub-{name}" for name in BOUND}))
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
                "loopback_http": True,
            }
        )
    )
    return path


def grade(gradebook: Gradebook, assignment: str, student: str, scores: tuple, manual: bool = False) -> None:
    """student's submission of assignment, autograded: scores for its cells q1, q2."""
    gradebook.add_submission(assignment, student)
    for cell, score in zip(("q1", "q2"), scores):
        found = gradebook.find_grade(cell, "nb", assignment, student)
        found.auto_score, found.needs_manual_grade = score, manual
    gradebook.db.commit()


@pytest.fixture
def gradebook(tmp_path, monkeypatch) -> Path:
    """ml's gradebook: ps1 (out of 10) graded for lena, otto, bea and sam, ps2 (out of 5) for lena,
    otto's still needing manual grading; ps3 released but not submitted; zoe submitted nothing; a
    survey without grade cells."""
    path = tmp_path / "course" / "gradebook.db"
    path.parent.mkdir()
    # A new gradebook asks the alembic command (the venv's) for its schema's version.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    with Gradebook(f"sqlite:///{path}", course_id="ml") as gradebook:
        for assignment, maxima in (("ps1", (4, 6)), ("ps2", (2, 3)), ("ps3", (1, 1))):
            gradebook.add_assignment(assignment)
            gradebook.add_notebook("nb", assignment)
            for cell, maximum in zip(("q1", "q2"), maxima):
                gradebook.add_grade_cell(cell, "nb", assignment, max_score=maximum, cell_type="code")
        for student in ("lena", "otto", "bea", "sam", "zoe"):
            gradebook.add_student(student)
        for student, scores in (("lena", (4, 3.5)), ("otto", (4, 6)), ("bea", (1, 2)), ("sam", (0, 0))):
            grade(gradebook, "ps1", student, scores)
        grade(gradebook, "ps2", "lena", (2, 3))
        grade(gradebook, "ps2", "otto", (2, None), manual=True)
        # Nothing graded in it (no grade cells): nothing for the LMS.
        gradebook.add_assignment("survey")
        gradebook.add_notebook("nb", "survey")
        gradebook.add_submission("survey", "lena")
    return path


def course_scores(path: Path, capsys) -> bytes:
    grades.scores_main([str(path)])
    return capsys.readouterr().out.encode()


def grades_back(course: str, settings: Path, stdin: bytes, monkeypatch, capsys) -> tuple[int, str]:
    """hubside-grades-back's exit code and output (stdout, then stderr)."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    try:
        grades.grades_back_main(["--course", course, "--settings", str(settings)])
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
        print(exit.code, file=sys.stderr)
    output = capsys.readouterr()
    return code, output.out + output.err


def test_course_scores_reads_the_gradebook_and_writes_nothing(gradebook, capsys):
    before = hashlib.sha256(gradebook.read_bytes()).hexdigest()
    scores = json.loads(course_scores(gradebook, capsys))
    assert scores == {
        "assignments": [
            {
                "name": "ps1",
                "max_score": 10.0,
                "scores": {"lena": 7.5, "otto": 10.0, "bea": 3.0, "sam": 0.0},
                "pending": [],
            },
            {"name": "ps2", "max_score": 5.0, "scores": {"lena": 5.0}, "pending": ["otto"]},
        ]
    }
    assert hashlib.sha256(gradebook.read_bytes()).hexdigest() == before
    # SQLite itself refuses writes on the session it reads with (root, whom permissions do not stop).
    with grades.read_only_session(str(gradebook)) as session, pytest.raises(OperationalError, match="readonly"):
        session.execute(text("DELETE FROM student"))
    assert sorted(p.name for p in gradebook.parent.iterdir()) == ["gradebook.db"]
    # No gradebook: an error, and none made.
    with pytest.raises(SystemExit, match="no such gradebook"):
        grades.scores_main([str(gradebook.parent / "other.db")])
    assert not (gradebook.parent / "other.db").exists()


def test_scores_reach_the_course_s_contexts_for_their_learners_once_per_line_item(
    platform, settings, gradebook, monkeypatch, capsys
):
    # art's own grades first: its line item must stay art's.
    art = {"assignments": [{"name": "ps1", "max_score": 20, "scores": {"otto": 12}}]}
    assert grades_back("art", settings, json.dumps(art).encode(), monkeypatch, capsys)[0] == 0
    art_items = platform.line_items("ctx-art")
    assert [(i["label"], i["resourceId"], i["scoreMaximum"]) for i in art_items] == [("ps1", "art:ps1", 20)]

    scores = course_scores(gradebook, capsys)
    code, output = grades_back("ml", settings, scores, monkeypatch, capsys)
    assert code == 0, output
    assert "ml in context ctx-ml:\n  ps1: posted 2, skipped 2 (1 no platform account bound, 1 not a learner" in output
    assert "  ps2: posted 1, skipped 1 (1 needs manual grading)" in output
    assert "ml in context ctx-ml-b:\n  ps1: posted 1, skipped 3 (1 no platform account bound, 2 not a learner" in output
    assert "ctx-moved" not in output and "ctx-art" not in output
    # Each section's learners, in their own context: bea is ctx-ml-b's alone, sam is bound to no account.
    assert sorted(platform.scores()) == sorted(
        [
            ("ctx-art", "ps1", "sub-otto", 12, 20),
            ("ctx-ml", "ps1", "sub-lena", 7.5, 10),
            ("ctx-ml", "ps1", "sub-otto", 10, 10),
            ("ctx-ml", "ps2", "sub-lena", 5, 5),
            ("ctx-ml-b", "ps1", "sub-bea", 3, 10),
        ]
    )
    ml_items = platform.line_items("ctx-ml")
    assert [(i["label"], i["resourceId"], i["scoreMaximum"]) for i in ml_items] == [
        ("ps1", "ml:ps1", 10),
        ("ps2", "ml:ps2", 5),
    ]
    # ctx-ml-b has no learner with a ps2 score: no line item made for it.
    assert [i["resourceId"] for i in platform.line_items("ctx-ml-b")] == ["ml:ps1"]

    # Again (a grade changed since): the same line items, the new score posted.
    scores = json.loads(scores)
    scores["assignments"][0]["scores"]["lena"] = 8.5
    code, output = grades_back("ml", settings, json.dumps(scores).encode(), monkeypatch, capsys)
    assert code == 0, output
    assert platform.line_items("ctx-ml") == ml_items
    assert [i["resourceId"] for i in platform.line_items("ctx-ml-b")] == ["ml:ps1"]
    assert ("ctx-ml", "ps1", "sub-lena", 8.5, 10) in platform.scores()
    # Another course's line items and the context moved away from ml: never touched.
    assert platform.line_items("ctx-art") == art_items
    assert platform.line_items("ctx-moved") == []
    assert [s for s in platform.scores() if s[0] not in ("ctx-ml", "ctx-ml-b")] == [
        ("ctx-art", "ps1", "sub-otto", 12, 20)
    ]


@pytest.mark.parametrize(
    "scores, says",
    [
        ('{"assignments": [{"name": "ps1", "max_score": 10, "scores": {"lena": 11}}]}', "from 0 to 10"),
        ('{"assignments": [{"name": "ps1", "max_score": 10, "scores": {"lena": NaN}}]}', "NaN is not a number"),
        ('{"assignments": [{"name": "ps1", "max_score": 10, "scores": {"lena": 1e999}}]}', "not a finite number"),
        ('{"assignments": [{"name": "ps1", "max_score": Infinity, "scores": {}}]}', "Infinity is not a number"),
        ('{"assignments": [{"name": "ps1", "max_score": 10, "scores": {"lena": -1}}]}', "from 0 to 10"),
        ('{"assignments": [{"name": "ps1", "max_score": 10, "scores": {"lena": true}}]}', "not a number"),
        ('{"assignments": [{"name": "ps1", "max_score": 10, "scores": {"../lena": 1}}]}', "each a Unix name"),
        ('{"assignments": [{"name": "ps1", "max_score": 10, "scores": {"a/b": 1}}]}', "each a Unix name"),
        ('{"assignments": [{"name": "ps1", "max_score": 10, "scores": {"lena": 1%s}}]}' % ("0" * 400), "not a finite"),
        ('{"assignments": [{"name": "ps1", "max_score": 10, "scores": [["lena", 1]]}]}', "a dict of student names"),
        ('{"assignments": [{"name": "ps1", "max_score": 10, "scores": {}, "pending": ["Otto"]}]}', "a list of student"),
        ('{"assignments": [{"name": "../ps1", "max_score": 10, "scores": {}}]}', "not an assignment name"),
        ('{"assignments": [{"name": "art:ps1", "max_score": 10, "scores": {}}]}', "not an assignment name"),
        ('{"assignments": [{"name": "ps1", "max_score": 0, "scores": {}}]}', "max_score is 0"),
        ('{"assignments": [{"name": "ps1", "max_score": 10, "scores": {}, "course": "art"}]}', "an assignment is"),
        ('{"assignments": [{"name": "ps1", "max_score": 10, "scores": {"lena": 1, "lena": 9}}]}', "key twice"),
        ('{"assignments": [], "course": "art"}', '"assignments"'),
        ("[" * 100_000, "not JSON"),
        (" " * (grades.MAX_INPUT + 1) + "{}", "more than"),
    ],
)
def test_scores_that_are_not_course_scores_are_refused_before_any_request(
    platform, settings, scores, says, monkeypatch, capsys
):
    code, output = grades_back("ml", settings, scores.encode(), monkeypatch, capsys)
    assert code != 0 and says in output, output
    assert platform.scores() == [] and platform.line_items("ctx-ml") == []


def test_a_course_without_contexts_or_with_failing_services_exits_non_zero(
    platform, settings, tmp_path, monkeypatch, capsys
):
    scores = json.dumps({"assignments": [{"name": "ps1", "max_score": 10, "scores": {"lena": 5}}]}).encode()
    code, output = grades_back("bio", settings, scores, monkeypatch, capsys)
    assert code != 0 and "bio: no LTI context" in output
    # Another key than the one the platform registered: every context fails, each said.
    other = rsa.generate_private_key(65537, 2048)
    (tmp_path / "tool-key.pem").write_bytes(
        other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    code, output = grades_back("ml", settings, scores, monkeypatch, capsys)
    assert code == 1 and output.count("FAILED") == 2 and "invalid_client" in output, output
    assert platform.scores() == []
    # The right key, but one section's launches gave no grades service: the other's scores go.
    (tmp_path / "tool-key.pem").write_bytes(
        KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    kept = json.loads((tmp_path / "lti-courses.json").read_text())
    del kept[DEPLOYMENT]["ctx-ml-b"]["lineitems_url"]
    (tmp_path / "lti-courses.json").write_text(json.dumps(kept))
    code, output = grades_back("ml", settings, scores, monkeypatch, capsys)
    assert code == 1 and "ctx-ml-b: FAILED: its launches gave no names and roles or grades service" in output
    assert platform.scores() == [("ctx-ml", "ps1", "sub-lena", 5, 10)]


def test_plain_http_is_for_a_platform_on_loopback_only(settings, monkeypatch, capsys):
    data = json.loads(settings.read_text())
    settings.write_text(json.dumps({**data, "token_url": "http://lms.example.org/token"}))
    code, output = grades_back("ml", settings, b'{"assignments": []}', monkeypatch, capsys)
    assert code != 0 and "loopback_http is for a token URL on the loopback interface only" in output
    settings.write_text(json.dumps({**data, "token_url": "http://lms.example.org/token", "loopback_http": False}))
    code, output = grades_back("ml", settings, b'{"assignments": []}', monkeypatch, capsys)
    assert code != 0 and "not an https URL" in output
    del data["names_file"]
    settings.write_text(json.dumps(data))
    code, output = grades_back("ml", settings, b'{"assignments": []}', monkeypatch, capsys)
    assert code != 0 and "names_file must be a str" in output


def test_a_context_whose_members_url_lists_another_context_gets_nothing(
    platform, settings, tmp_path, monkeypatch, capsys
):
    """The hub writes each context's service URLs: a compromised hub pointing ctx-ml-b's names and
    roles at another context's members (to post its scores to people there) is refused."""
    kept = json.loads((tmp_path / "lti-courses.json").read_text())
    kept[DEPLOYMENT]["ctx-ml-b"]["memberships_url"] = kept[DEPLOYMENT]["ctx-ml"]["memberships_url"]
    (tmp_path / "lti-courses.json").write_text(json.dumps(kept))
    scores = json.dumps({"assignments": [{"name": "ps1", "max_score": 10, "scores": {"lena": 5}}]}).encode()
    code, output = grades_back("ml", settings, scores, monkeypatch, capsys)
    assert code == 1 and "ctx-ml-b: FAILED" in output and "not of 'ctx-ml-b'" in output, output
    assert platform.scores() == [("ctx-ml", "ps1", "sub-lena", 5, 10)]
