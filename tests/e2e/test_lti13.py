"""A course of a learning platform on a real Ubuntu 24.04 hub (jh_authenticator = "lti13" with
jh_courses, issue 29): people launch the hub from the platform's course and land in it with their
role there; the instructor releases an assignment from the course's grader server, a learner
fetches and submits it, the instructor autogrades, and `tasks.courses.grades_back` posts the
score to the platform's gradebook. The platform is tests/lti_platform.py (a real LTI 1.3
platform: OIDC login initiation, signed id_tokens, JWKS, token endpoint, names and roles,
assignment and grade services), served by this process over TLS on the Docker bridge under a
certificate the hub trusts (jh_extra_ca_certificates). The hub is served by nginx under a Pebble
certificate.

Tests run in file order."""

from __future__ import annotations

import asyncio
import re
import ssl
import threading
import time
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tornado.httpserver import HTTPServer

from tests import lti_platform
from tests.certificates import self_signed
from tests.e2e.conftest import run_pyinfra, write_inventory
from tests.e2e.hub_client import HubClient
from tests.e2e.test_courses import NBGRADER, open_grader, release, shell
from tests.pebble import PORT_OFFSET

LMS = "lms.jhd.test"
PORT = 9643 + PORT_OFFSET
ISSUER = f"https://{LMS}:{PORT}"
CLIENT_ID = "jupyterhub-tool"
CONTEXT = "ctx-ml"
PEOPLE = {"sub-lena": "lena", "sub-otto": "otto", "sub-prof": "prof", "sub-pia": "pia"}
MEMBERS = {"sub-lena": "Learner", "sub-otto": "Learner", "sub-prof": "Instructor"}


@pytest.fixture(scope="module")
def platform(workdir, bridge_gateway, resolver):
    """The learning platform, on this machine's bridge address (its own thread and event loop)."""
    certificate, key = workdir / "lms.crt", workdir / "lms.key"
    self_signed(certificate, key, LMS, 30, alt_names=True)
    tool_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tool_key_file = workdir / "lti-tool-key.pem"
    tool_key_file.write_bytes(
        tool_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    tool_key_file.chmod(0o600)
    public = tool_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    config = {
        "url": ISSUER,
        "tools": {},  # filled once the hub's address is known (hub fixture)
        "users": {sub: {"name": name.title(), "username": name} for sub, name in PEOPLE.items()},
        "contexts": {
            CONTEXT: {"label": "ML", "title": "Machine learning", "members": MEMBERS},
            "ctx-other": {"label": "ART", "title": "Art", "members": {"sub-pia": "Learner"}},
        },
    }
    served = lti_platform.Platform(config, ISSUER)
    served.public_key = public.decode()
    resolver[LMS] = bridge_gateway
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certificate), str(key))
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run():
        asyncio.set_event_loop(loop)
        server = HTTPServer(lti_platform.application(served), ssl_options=context)
        server.listen(PORT, bridge_gateway)
        loop.call_soon(ready.set)
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    assert ready.wait(10)
    served.certificate, served.tool_key_file = certificate, tool_key_file
    yield served
    loop.call_soon_threadsafe(loop.stop)


@pytest.fixture(scope="module")
def hub(start, workdir, platform, bridge_gateway):
    host = start("noble", "jhd-test-lti")
    host.sh(f"echo '{bridge_gateway} {LMS}' >> /etc/hosts")
    base = f"https://{host.domain}/hub"
    platform.tools[CLIENT_ID] = {
        "deployment_id": "1",
        "login_url": f"{base}/lti13/oauth_login",
        "redirect_uris": [f"{base}/lti13/oauth_callback"],
        "target_link_uri": f"{base}/",
        "public_key": platform.public_key,
    }
    settings = {
        **host.data,
        "jh_nltk_packages": [],
        "jh_kernels": [{"name": "python3", "display_name": "Python 3", "packages": "minimal"}],
        "jh_idle_timeout": 3600,
        "jh_extra_ca_certificates": [*host.data["jh_extra_ca_certificates"], str(platform.certificate)],
        "jh_users": [],
        "jh_admin_users": [],
        "jh_authenticator": "lti13",
        "jh_lti13": {
            "issuer": ISSUER,
            "client_id": CLIENT_ID,
            "deployment_ids": ["1"],
            "authorization_endpoint": f"{ISSUER}/authorize",
            "jwks_url": f"{ISSUER}/jwks",
            "token_url": f"{ISSUER}/token",
            "tool_key_file": str(platform.tool_key_file),
            "courses": {CONTEXT: "ml"},
        },
        "jh_courses": {"ml": {}},
    }
    inventory = write_inventory(workdir / "lti.py", [(host.name, settings)])
    result = run_pyinfra(inventory)
    assert result.returncode == 0, result.stderr[-4000:] + host.journal()
    bundle = workdir / "lti-browser-ca.pem"
    bundle.write_text(Path(host.ca_bundle).read_text() + platform.certificate.read_text())
    host.inventory, host.browser_ca = inventory, str(bundle)
    return host


class Browser:
    """A cookie jar launching the tool from the platform: its redirects and its auto-submitted form."""

    def __init__(self, hub):
        self.hub, self.session = hub, requests.Session()

    def launch(self, sub: str, context: str = CONTEXT, tamper: str | None = None) -> requests.Response:
        """The hub's answer to the launch's form (a redirect into the hub, or a refusal)."""
        query = {"client_id": CLIENT_ID, "user": sub, "context": context} | ({"tamper": tamper} if tamper else {})
        response = self.session.get(f"{ISSUER}/launch", params=query, verify=self.hub.browser_ca, timeout=60)
        form = re.search(r'<form method="post" action="([^"]+)">', response.text)
        assert form, f"{response.status_code} {response.url}\n{response.text[-1500:]}"
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', response.text))
        return self.session.post(
            urljoin(response.url, form[1].replace("&amp;", "&")),
            data=fields,
            verify=self.hub.browser_ca,
            timeout=60,
            allow_redirects=False,
        )

    def client(self, name: str) -> HubClient:
        user = HubClient(f"https://{self.hub.domain}", verify=self.hub.browser_ca)
        user.session, user.user = self.session, name
        user.get("/hub/home")
        user.create_token()
        return user


def launched(hub, sub: str) -> HubClient:
    browser = Browser(hub)
    back = browser.launch(sub)
    assert back.status_code == 302 and urlparse(back.headers["location"]).path.startswith("/hub"), (
        back.status_code,
        back.text[-1500:],
        hub.journal(),
    )
    return browser.client(PEOPLE[sub])


def test_a_learner_and_an_instructor_land_in_the_course_with_their_roles(hub):
    lena, prof = launched(hub, "sub-lena"), launched(hub, "sub-prof")
    assert lena.api("GET", "/hub/api/users/lena").json()["groups"] == ["ml-students"]
    assert prof.api("GET", "/hub/api/users/prof").json()["groups"] == ["ml-staff"]
    lena.start_server()
    # Her server's start put her in the course's Unix group: the course's part of the exchange.
    assert "ml-students" in hub.sh("id -nG lena")
    open_grader(prof, "ml")
    assert lena.api("POST", "/hub/api/users/grader-ml/server").status_code in (403, 404)


def test_tampered_launches_and_other_courses_are_refused(hub):
    for tamper in ("signature", "expired"):
        assert Browser(hub).launch("sub-otto", tamper=tamper).status_code in (400, 401, 403), tamper
    refused = Browser(hub).launch("sub-pia", context="ctx-other")
    assert refused.status_code == 403 and "not a course of this hub" in refused.text
    assert hub.sh("id otto pia 2>&1; true").count("no such user") == 2


def test_the_autograded_score_reaches_the_platform_s_gradebook(hub, platform):
    lena, prof = launched(hub, "sub-lena"), launched(hub, "sub-prof")
    release(prof, "ml", "ps1")
    lena.start_server()
    out = shell(lena, f"{NBGRADER} fetch_assignment ps1 --course ml && {NBGRADER} submit ps1 --course ml")
    assert out.endswith("exit=0"), out
    out = shell(prof, f"{NBGRADER} collect ps1 && {NBGRADER} autograde ps1", server="grader-ml", timeout=300)
    assert out.endswith("exit=0"), out

    result = run_pyinfra(Path(hub.inventory), deploy="tasks.courses.grades_back")
    assert result.returncode == 0, result.stderr[-4000:]
    # The released notebook unsolved: its test fails, 0 of 2 points; for lena alone.
    scores = [s for s in platform.scores if s["label"] == "ps1"]
    assert [(s["userId"], s["scoreGiven"], s["scoreMaximum"]) for s in scores] == [("sub-lena", 0.0, 2.0)], scores
    assert "ps1: posted 1" in result.stderr, result.stderr[-3000:]


def test_a_learner_dropped_at_the_platform_leaves_the_course_at_the_next_sync(hub, platform):
    lena = launched(hub, "sub-lena")
    platform.contexts[CONTEXT]["members"] = {sub: role for sub, role in MEMBERS.items() if sub != "sub-lena"}
    result = run_pyinfra(Path(hub.inventory), deploy="tasks.courses.sync_rosters")
    assert result.returncode == 0, result.stderr[-4000:]
    assert lena.api("GET", "/hub/api/users/lena").json()["groups"] == []
    # Her next server start takes her out of the course's Unix group: the exchange is closed to her.
    lena.stop_server()
    for _ in range(60):
        if lena.server() is None:
            break
        time.sleep(1)
    lena.start_server()
    assert "ml-students" not in hub.sh("id -nG lena")
    out = shell(lena, f"{NBGRADER} list --course ml; ls /srv/nbgrader/exchange/ml; echo done")
    assert "ml ps1" not in out and "Permission denied" in out, out


def test_a_second_run_changes_nothing(hub):
    again = run_pyinfra(Path(hub.inventory))
    assert again.returncode == 0, again.stderr[-4000:]
    assert again.totals["success"] == 0, again.changed_operations()
