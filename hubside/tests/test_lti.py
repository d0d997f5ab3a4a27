"""LTI 1.3 logins against a real platform (tests/lti_platform.py, in a process of its own): a real
JupyterHub with the deploy's lti13 configuration; a small browser that follows the launch from the
platform's course link through the hub's login initiation, the platform's authorization endpoint
and its auto-submitted form, as a person's would; the tool's services client (hubside.lti_services)
on the platform's token endpoint, names and roles, and grades."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from html import unescape
from pathlib import Path
from urllib.parse import urlencode

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jupyterhub import orm
from tornado import web
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from traitlets.config import Config

from hubside import config as hub_config
from hubside import lti_services
from hubside.lti import MEMBERSHIP

from .conftest import REPO, running_hub

CLIENT_ID, DEPLOYMENT = "tool-1", "dep-1"
PEOPLE = {
    # sub: (username claim, role in the course ctx-ml)
    "sub-lena": ("lena", "Learner"),
    "sub-prof": ("prof", "Instructor"),
    "sub-tara": ("tara", "TeachingAssistant"),
    "sub-mallory": ("lena", "Learner"),  # calls herself lena at the platform
    "sub-eve": ("prof", "Learner"),  # calls herself prof
}


class Platform:
    """tests/lti_platform.py run as `python -m tests.lti_platform`, as a container would run it."""

    def __init__(self, tmp_path: Path, hub_url: str):
        hub = f"{hub_url}hub/"
        config = {
            "tools": {
                CLIENT_ID: {
                    "deployment_id": DEPLOYMENT,
                    "login_url": f"{hub}lti13/oauth_login",
                    "redirect_uris": [f"{hub}lti13/oauth_callback"],
                    "target_link_uri": hub,
                    "jwks_url": f"{hub}lti13/jwks",
                }
            },
            "users": {
                sub: {
                    "name": name.title(),
                    "given_name": name.title(),
                    "email": f"{name}@uni.example",
                    "username": name,
                }
                for sub, (name, _) in {**PEOPLE, "sub-otto": ("otto", "Learner")}.items()
            },
            "contexts": {
                "ctx-ml": {
                    "label": "ML",
                    "title": "Machine Learning",
                    "members": {sub: role for sub, (_, role) in PEOPLE.items()},
                },
                "ctx-other": {
                    "label": "ART",
                    "title": "Art History",
                    "members": {"sub-otto": "Learner", "sub-prof": "Instructor"},
                },
            },
        }
        (tmp_path / "platform.json").write_text(json.dumps(config))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.lti_platform", "--port", "0", "--config", str(tmp_path / "platform.json")],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = self.process.stdout.readline().strip().removeprefix("listening on ")
        assert self.url.startswith("http://"), self.url

    def stop(self):
        self.process.terminate()
        self.process.wait(10)

    def link(self, sub: str, context: str = "ctx-ml", tamper: str | None = None) -> str:
        """The tool's link in the course, as sub opens it."""
        query = {"client_id": CLIENT_ID, "user": sub, "context": context, **({"tamper": tamper} if tamper else {})}
        return f"{self.url}/launch?{urlencode(query)}"


def submitted(page: str) -> tuple[str, dict]:
    """The action and fields of the platform's auto-submitted form."""
    action = unescape(re.search(r'<form method="post" action="([^"]+)"', page)[1])
    return action, {name: unescape(value) for name, value in re.findall(r'name="([^"]+)" value="([^"]*)"', page)}


class Browser:
    """Cookies per host, redirects followed by hand so each step can be seen."""

    def __init__(self):
        self.cookies: dict[str, str] = {}

    async def fetch(self, url: str, body: dict | None = None):
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        response = await AsyncHTTPClient().fetch(
            url,
            method="POST" if body is not None else "GET",
            body=urlencode(body) if body is not None else None,
            headers=headers,
            follow_redirects=False,
            raise_error=False,
        )
        for header in response.headers.get_list("Set-Cookie"):
            name, _, value = header.partition(";")[0].partition("=")
            if value and "expires=Thu, 01 Jan 1970" not in header:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        return response

    async def launch(self, link: str):
        """The person opens the link; the hub's answer to the platform's form (and the form)."""
        return await self.post_form(await self.page(link))

    async def page(self, link: str) -> str:
        """The platform's auto-submitted form, after the hub's login initiation."""
        response = await self.fetch(link)
        while response.code == 302:
            response = await self.fetch(response.headers["Location"])
        assert response.code == 200, (response.code, response.body)
        return response.body.decode()

    async def unsent(self, link: str):
        """(this browser, (the form's action, its fields)), not posted yet."""
        return self, submitted(await self.page(link))

    async def post_form(self, page: str):
        self.form = submitted(page)
        return await self.fetch(*self.form)


@pytest.fixture
def lti_hub(hub_files, tmp_path):
    """(platform, config, sockets): the platform, and the hub's configuration from the deploy's
    lti13 hub.json with the platform's URLs (plain http here), to listen on sockets."""
    sockets = bind_sockets(0, "127.0.0.1")
    hub_url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/"
    platform = Platform(tmp_path, hub_url)
    data = json.loads(hub_files("lti13").with_name("hub.json").read_text())
    login = data["login"]
    login["options"] |= {
        "issuer": platform.url,
        "authorization_endpoint": f"{platform.url}/authorize",
        "jwks_url": f"{platform.url}/jwks",
        "token_url": f"{platform.url}/token",
        "bound_names": {"prof": f"{platform.url} sub-prof"},
    }
    c = Config()
    hub_config.login(c, login)
    c.UnixLTIAuthenticator.uri_scheme = "http"
    # As the hub has it (MockHub lets everyone in unless told).
    c.Authenticator.allow_all = False
    yield platform, c, sockets, login["options"]
    platform.stop()


def people(hub) -> list[str]:
    """The hub's users (prof, an admin, is one from the start; MockHub's own "user" left out)."""
    return sorted(user.name for user in hub.app.db.query(orm.User) if user.name != "user")


def groups(hub, name: str) -> list[str]:
    hub.app.db.expire_all()
    return sorted(group.name for group in hub.app.users[name].groups)


def test_launches_log_learners_and_staff_into_their_course_s_groups(lti_hub):
    platform, config, sockets, options = lti_hub

    async def test(hub):
        for sub, name, group in (
            ("sub-lena", "lena", "ml-2026-students"),
            ("sub-prof", "prof", "ml-2026-staff"),
            ("sub-tara", "tara", "ml-2026-staff"),
        ):
            response = await Browser().launch(platform.link(sub))
            assert response.code == 302 and response.headers["Location"] == "/hub/", response.body
            assert "jupyterhub-hub-login" in response.headers["Set-Cookie"] or any(
                "jupyterhub-hub-login" in h for h in response.headers.get_list("Set-Cookie")
            )
            assert groups(hub, name) == [group]
        assert hub.app.users["prof"].admin and not hub.app.users["lena"].admin
        # Names bound to the platform's accounts (prof's by the settings); the course's services kept.
        names = json.loads(Path(options["names_file"]).read_text())
        assert names == {"lena": f"{platform.url} sub-lena", "tara": f"{platform.url} sub-tara"}
        courses = json.loads(Path(options["courses_file"]).read_text())
        assert courses == {
            DEPLOYMENT: {
                "ctx-ml": {
                    "course": "ml-2026",
                    "memberships_url": f"{platform.url}/contexts/ctx-ml/memberships",
                    "lineitems_url": f"{platform.url}/contexts/ctx-ml/lineitems",
                }
            }
        }
        # A group of the deploy (jh_groups) stays; the course's other group is left at a role change.
        hub.app.users["lena"].orm_user.groups.append(hub.app.users["prof"].orm_user.groups[0])
        hub.app.db.commit()
        await Browser().launch(platform.link("sub-lena"))
        assert groups(hub, "lena") == ["ml-2026-students"]

    running_hub(test, config, sockets)


def test_another_account_cannot_take_a_bound_name(lti_hub):
    platform, config, sockets, _ = lti_hub

    async def test(hub):
        # prof is the settings' (before prof ever launched); lena is bound at her first launch.
        response = await Browser().launch(platform.link("sub-eve"))
        assert response.code == 403 and b"belongs to another account" in response.body
        assert (await Browser().launch(platform.link("sub-lena"))).code == 302
        response = await Browser().launch(platform.link("sub-mallory"))
        assert response.code == 403 and b"belongs to another account" in response.body
        assert people(hub) == ["lena", "prof"]

    running_hub(test, config, sockets)


def test_a_launch_from_a_course_the_hub_does_not_have_is_refused_but_to_the_settings_people(lti_hub):
    platform, config, sockets, _ = lti_hub

    async def test(hub):
        response = await Browser().launch(platform.link("sub-otto", context="ctx-other"))
        assert response.code == 403 and b"Art History is not a course of this hub" in response.body
        assert people(hub) == ["prof"]
        # The settings' people (an admin) are let in from any course, in no course group for it.
        assert (await Browser().launch(platform.link("sub-prof", context="ctx-other"))).code == 302
        assert groups(hub, "prof") == []

    running_hub(test, config, sockets)


@pytest.mark.parametrize(
    "tamper, refusal",
    [
        ("signature", b"Signature verification failed"),
        ("expired", b"Signature has expired"),
        ("audience", b"Audience doesn"),
        ("nonce", b"OAuth nonce mismatch"),
        ("deployment", b"deployment of the tool in the learning platform is not this hub"),
        # An instructor picking content to add (deep linking) is no login.
        ("deep_linking", b"offers no content to pick"),
    ],
)
def test_tampered_launches_are_refused(lti_hub, tamper, refusal):
    platform, config, sockets, _ = lti_hub

    async def test(hub):
        # A launch first: the platform replays its nonce in the tampered one.
        await Browser().launch(platform.link("sub-prof"))
        response = await Browser().launch(platform.link("sub-lena", tamper=tamper))
        assert response.code in (400, 401) and refusal in response.body, response.body
        assert people(hub) == ["prof"]

    running_hub(test, config, sockets)


def test_a_launch_is_good_once(lti_hub):
    """The platform's form posted again (a replay), by the same browser or another: refused."""
    platform, config, sockets, _ = lti_hub

    async def test(hub):
        browser = Browser()
        assert (await browser.launch(platform.link("sub-lena"))).code == 302
        action, fields = browser.form
        again = await browser.fetch(action, fields)
        assert again.code == 400 and b"OAuth state missing from cookies" in again.body
        elsewhere = await Browser().fetch(action, fields)
        assert elsewhere.code == 400
        # The login's cookies kept and sent again with the form: the hub knows the nonce was used.
        browser = Browser()
        action, fields = (await browser.unsent(platform.link("sub-lena")))[1]
        kept = dict(browser.cookies)
        assert (await browser.fetch(action, fields)).code == 302
        for _ in range(2):
            replay = Browser()
            replay.cookies = dict(kept)
            again = await replay.fetch(action, fields)
            assert again.code == 400 and b"This launch was used already" in again.body

    running_hub(test, config, sockets)


def test_a_launch_s_state_is_read_from_host_only_cookies(lti_hub):
    """The login's state and nonce are __Host- cookies: a page of alice's server on a subdomain,
    which may set other cookies for the hub's name, cannot hand a visitor her unsent launch."""
    platform, config, sockets, _ = lti_hub

    async def test(hub):
        alice = Browser()
        action, fields = (await alice.unsent(platform.link("sub-lena")))[1]
        assert alice.cookies and all(name.startswith("__Host-") for name in alice.cookies), alice.cookies
        visitor = Browser()
        visitor.cookies = {name.removeprefix("__Host-"): value for name, value in alice.cookies.items()}
        refused = await visitor.fetch(action, fields)
        assert refused.code == 400 and b"state missing from cookies" in refused.body, refused.body
        assert "lena" not in people(hub)

    running_hub(test, config, sockets)


def test_logins_start_at_the_hub_s_platform_tool_and_deployments(lti_hub):
    platform, config, sockets, _ = lti_hub

    async def test(hub):
        login = f"http://127.0.0.1:{hub.port}/hub/lti13/oauth_login"
        base = {"iss": platform.url, "login_hint": "x", "target_link_uri": "http://127.0.0.1/hub/"}
        for changed, code, says in (
            ({}, 302, b""),
            ({"iss": "https://evil.example"}, 400, b"Open the hub from your course"),
            ({"client_id": "another-tool"}, 400, b"another tool"),
            ({"lti_deployment_id": "dep-2"}, 403, b"not this hub"),
        ):
            response = await Browser().fetch(f"{login}?{urlencode({**base, **changed})}")
            assert response.code == code and says in response.body, response.body
        # Without a client id, the tool's own goes to the platform.
        response = await Browser().fetch(f"{login}?{urlencode(base)}")
        assert f"client_id={CLIENT_ID}" in response.headers["Location"]

    running_hub(test, config, sockets)


class CountedJwks(web.RequestHandler):
    """A platform's keyset that counts its readings, answering slowly; a 500 until it has keys."""

    keys: dict | None = None
    readings = 0

    async def get(self):
        CountedJwks.readings += 1
        await asyncio.sleep(0.2)
        if self.keys is None:
            raise web.HTTPError(500)
        self.finish(self.keys)


def test_a_platform_that_does_not_answer_gets_a_page_saying_so_and_is_asked_once(lti_hub):
    """An anonymous POST (no login state) makes the hub ask the platform nothing; launches while
    the platform's keys are read, or fail, wait for that one reading (at most one each 10 s)."""
    platform, config, sockets, _ = lti_hub
    jwks_sockets = bind_sockets(0, "127.0.0.1")
    config.UnixLTIAuthenticator.jwks_endpoint = f"http://127.0.0.1:{jwks_sockets[0].getsockname()[1]}/jwks"
    CountedJwks.keys, CountedJwks.readings = None, 0

    async def test(hub):
        HTTPServer(web.Application([("/jwks", CountedJwks)])).add_sockets(jwks_sockets)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = jwt.encode({"sub": "x"}, key, algorithm="RS256", headers={"kid": "unknown"})
        callback = f"http://127.0.0.1:{hub.port}/hub/lti13/oauth_callback"
        for _ in range(5):
            response = await Browser().fetch(callback, {"id_token": token, "state": "s"})
            assert response.code == 400 and b"state missing from cookies" in response.body
        assert CountedJwks.readings == 0
        # Real launches (their state kept), the platform's keys failing: one reading for all.
        forms = [await Browser().unsent(platform.link("sub-lena")) for _ in range(4)]
        answers = await asyncio.gather(*(browser.fetch(*form) for browser, form in forms))
        assert {answer.code for answer in answers} == {503} and b"did not answer" in answers[0].body
        browser, (action, fields) = await Browser().unsent(platform.link("sub-lena"))
        assert (await browser.fetch(action, fields)).code == 503
        assert CountedJwks.readings == 1
        browser, (action, fields) = await Browser().unsent(platform.link("sub-lena"))
        response = await browser.fetch(action, {**fields, "id_token": "not a token"})
        assert response.code == 400 and b"The launch is not a JWT" in response.body

    running_hub(test, config, sockets)


def test_the_hub_serves_the_deploy_s_public_jwk_and_has_no_private_key(lti_hub, tmp_path):
    """/hub/lti13/jwks is anonymous: it answers the JWK hub.json holds, reading and parsing no key
    (the private key is root's, not the hub's: the hub's options do not name it)."""
    platform, config, sockets, options = lti_hub
    assert "tool_key_file" not in options and "d" not in options["tool_jwk"]

    async def test(hub):
        (tmp_path / "lti-tool-key.pem").unlink()
        answers = await asyncio.gather(
            *(AsyncHTTPClient().fetch(f"http://127.0.0.1:{hub.port}/hub/lti13/jwks") for _ in range(40))
        )
        assert {answer.body for answer in answers} == {json.dumps({"keys": [options["tool_jwk"]]}).encode()}

    running_hub(test, config, sockets)


def test_the_tool_s_services_members_line_items_and_scores(lti_hub, tmp_path):
    """The tool's key signs its token requests; the platform checks them against the hub's
    /hub/lti13/jwks (the deploy's JWK). The client runs in a thread: the hub must answer the
    platform meanwhile."""
    platform, config, sockets, options = lti_hub
    key = lti_services.tool_key((tmp_path / "lti-tool-key.pem").read_bytes())
    contexts = f"{platform.url}/contexts/ctx-ml"

    def grades_back():
        services = lti_services.Services(f"{platform.url}/token", CLIENT_ID, key, loopback_http=True)
        members = {m["user_id"]: m["roles"] for m in services.members(f"{contexts}/memberships?limit=2")}
        assert set(members) == set(PEOPLE)
        assert members["sub-tara"] == [f"{MEMBERSHIP}#Instructor", f"{MEMBERSHIP}/Instructor#TeachingAssistant"]
        item = services.line_item(f"{contexts}/lineitems", "Assignment 1", 10, resource_id="ps1")
        assert services.line_item(f"{contexts}/lineitems", "Assignment 1", 10, resource_id="ps1") == item
        services.post_score(item, "sub-lena", 7.5, comment="autograded")
        # Another key (not the tool's) gets no token.
        forger = lti_services.Services(
            f"{platform.url}/token", CLIENT_ID, rsa.generate_private_key(65537, 2048), loopback_http=True
        )
        with pytest.raises(lti_services.ServiceError, match="invalid_client"):
            forger.token()
        # A token for the memberships alone posts no score.
        reader = lti_services.Services(
            f"{platform.url}/token", CLIENT_ID, key, [lti_services.SCOPES["memberships"]], loopback_http=True
        )
        with pytest.raises(lti_services.ServiceError, match="403"):
            reader.post_score(item, "sub-lena", 10)
        return item

    async def test(hub):
        item = await asyncio.to_thread(grades_back)
        scores = json.loads((await AsyncHTTPClient().fetch(f"{platform.url}/_test/scores")).body)
        assert [(s["lineItem"], s["userId"], s["scoreGiven"], s["scoreMaximum"]) for s in scores] == [
            (item["id"], "sub-lena", 7.5, 10)
        ]
        assert scores[0]["gradingProgress"] == "FullyGraded" and scores[0]["comment"] == "autograded"

    running_hub(test, config, sockets)
