"""The tool's services client (hubside.lti_services) against a platform that points it elsewhere:
redirects, Link headers, line item ids and service URLs of other hosts or plain http. The bearer
token must reach the platform's origin only."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from hubside import lti_services

KEY = rsa.generate_private_key(65537, 2048)


class Server:
    """A plain HTTP server on loopback answering GET/POST from answer(handler) -> (code, headers, body);
    it records the Authorization headers it is sent."""

    def __init__(self, answer):
        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def respond(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen.append((self.command, self.path, self.headers.get("Authorization")))
                code, headers, body = answer(self)
                self.send_response(code)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(json.dumps(body).encode())

            do_GET = do_POST = respond

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def servers():
    """(platform, evil): the platform's token endpoint answers; its other answers are set per test."""
    answers = {}

    def platform_answer(handler):
        if handler.path == "/token":
            return 200, {}, {"access_token": "SECRET-TOKEN", "expires_in": 3600}
        return answers["platform"](handler)

    platform, evil = Server(platform_answer), Server(lambda handler: (200, {}, {"members": []}))
    platform.answers = answers
    yield platform, evil
    platform.stop()
    evil.stop()


def services(platform) -> lti_services.Services:
    return lti_services.Services(f"{platform.url}/token", "tool", KEY, loopback_http=True)


def test_a_redirect_is_not_followed_with_the_token(servers):
    platform, evil = servers
    platform.answers["platform"] = lambda handler: (302, {"Location": f"{evil.url}/x"}, {})
    with pytest.raises(lti_services.ServiceError, match="redirected"):
        services(platform).members(f"{platform.url}/members")
    assert evil.seen == []


def test_a_next_page_elsewhere_is_not_asked_with_the_token(servers):
    platform, evil = servers
    platform.answers["platform"] = lambda handler: (200, {"Link": f'<{evil.url}/page2>; rel="next"'}, {"members": []})
    with pytest.raises(lti_services.ServiceError, match="not on the platform's origins"):
        services(platform).members(f"{platform.url}/members")
    assert evil.seen == []


def test_a_line_item_must_be_the_resource_s_and_the_course_s(servers):
    platform, evil = servers
    lineitems = f"{platform.url}/contexts/ctx-ml/lineitems"
    listed = [
        {"id": f"{platform.url}/contexts/ctx-ml/lineitems/1", "resourceId": "other", "scoreMaximum": 10},
        {"id": f"{platform.url}/contexts/ctx-art/lineitems/2", "resourceId": "ps1", "scoreMaximum": 10},
        {"id": f"{lineitems}/../../ctx-art/lineitems/2", "resourceId": "ps1", "scoreMaximum": 10},
        {"id": f"{evil.url}/contexts/ctx-ml/lineitems/3", "resourceId": "ps1", "scoreMaximum": 10},
        {"resourceId": "ps1", "scoreMaximum": 10},
    ]
    made = {"id": f"{lineitems}/4", "resourceId": "ps1", "scoreMaximum": 10}
    platform.answers["platform"] = lambda handler: (200, {}, listed if handler.command == "GET" else made)
    client = services(platform)
    # None of the listed ones is this course's ps1: a new one is made.
    assert client.line_item(lineitems, "PS 1", 10, resource_id="ps1") == made
    made = {"id": f"{evil.url}/lineitems/5", "resourceId": "ps1", "scoreMaximum": 10}
    with pytest.raises(lti_services.ServiceError, match="not one under"):
        client.line_item(lineitems, "PS 1", 10, resource_id="ps1")
    # A score goes to the platform's origin only, whatever the line item says.
    with pytest.raises(lti_services.ServiceError, match="not on the platform's origins"):
        client.post_score(listed[3], "sub-lena", 5)
    assert evil.seen == []


@pytest.mark.parametrize(
    "url, says",
    [
        ("http://lms.example.org/token", "not an https URL"),
        ("http://10.0.0.5/token", "not an https URL"),
    ],
)
def test_service_urls_must_be_https(url, says):
    with pytest.raises(lti_services.ServiceError, match=says):
        lti_services.Services(url, "tool", KEY)
    # Plain http is the test platform's, on loopback, and only when asked for.
    with pytest.raises(lti_services.ServiceError, match="not an https URL"):
        lti_services.Services("http://127.0.0.1:8000/token", "tool", KEY)


def test_services_on_another_origin_are_refused_unless_named():
    client = lti_services.Services("https://sso.lms.example.org/token", "tool", KEY)
    with pytest.raises(lti_services.ServiceError, match="not on the platform's origins"):
        client.members("https://school.lms.example.org/api/lti/courses/1/names_and_roles")
    with pytest.raises(lti_services.ServiceError, match="not an https URL"):
        client.members("http://sso.lms.example.org/members")
    named = lti_services.Services(
        "https://sso.lms.example.org/token", "tool", KEY, origins=("https://school.lms.example.org",)
    )
    assert named.check_url("https://school.lms.example.org/api/lti/courses/1/names_and_roles")
