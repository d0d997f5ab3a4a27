"""A real LTI 1.3 platform (the learning platform's side: Moodle's, Canvas's) for the tests, on
tornado and PyJWT, its state in memory:

- a person opens the tool's link in a course (GET /launch): the third-party login initiation,
  a redirect to the tool's login URL with a login_hint and an lti_message_hint it issued;
- the authorization endpoint (/authorize) checks the tool's client_id, its registered redirect_uri
  and the hints (each message hint once), then answers with a form the browser POSTs to the tool:
  an id_token signed with the platform's own RSA key (RS256, its kid in /jwks) carrying the LTI
  claims of the person in that course (roles, context, resource link, names and roles service,
  assignment and grade services), and the tool's state;
- the token endpoint (/token): client_credentials with a client_assertion signed by the tool's
  key, checked against the tool's JWKS URL or its configured public key; scoped access tokens;
- names and roles (/contexts/ID/memberships) and assignment and grade services
  (/contexts/ID/lineitems, .../lineitems/N, .../lineitems/N/scores), each checking its scope;
- for the tests alone: a launch may be asked tampered (/launch?tamper=signature, expired,
  audience, nonce: the nonce of an earlier launch of the tool, or deployment: another deployment
  of the tool than the login initiation named, or deep_linking: a deep linking request, not a
  resource link's launch), /_test/scores lists the scores it stored, /_test/memberships-read the
  contexts whose members were read, and a PUT of {"members": {...}, "inactive": [...]} to
  /_test/contexts/ID changes a context's people (a person dropped, a role changed).

    python -m tests.lti_platform --host 127.0.0.1 --port 0 --config platform.json

prints "listening on URL" once it serves. The config (JSON):

    {"url": "(optional) the platform's URL as tools reach it; default http://HOST:PORT",
     "tools": {"CLIENT_ID": {"deployment_id": "1", "login_url": "...", "redirect_uris": ["..."],
                             "target_link_uri": "...", "jwks_url": "..." or "public_key": "PEM"}},
     "users": {"SUB": {"name": "...", "given_name": "...", "family_name": "...", "email": "...",
                       "username": "(the custom claim's username)"}},
     "contexts": {"ID": {"label": "...", "title": "...", "members": {"SUB": "Learner"},
                         "inactive": ["(optional) SUB of a member whose status is Inactive"]}}}

Roles are Learner, Instructor or TeachingAssistant.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import secrets
import time
import uuid
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from tornado import httpclient, web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"
ROLES = {
    "Learner": [f"{MEMBERSHIP}#Learner"],
    "Instructor": [f"{MEMBERSHIP}#Instructor"],
    # A sub-role comes with its principal role.
    "TeachingAssistant": [f"{MEMBERSHIP}#Instructor", f"{MEMBERSHIP}/Instructor#TeachingAssistant"],
}
SCOPE = {
    "memberships": "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
    "lineitem": "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "lineitem.readonly": "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "score": "https://purl.imsglobal.org/spec/lti-ags/scope/score",
}
AGS_SCOPES = [SCOPE["lineitem"], SCOPE["lineitem.readonly"], SCOPE["score"]]
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ACTIVITY = {"Initialized", "Started", "InProgress", "Submitted", "Completed"}
GRADING = {"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"}
PERSON = ("name", "given_name", "family_name", "email")
TAMPERINGS = {"signature", "expired", "audience", "nonce", "deployment", "deep_linking"}
TOKEN_SECONDS = 3600


class Platform:
    """The platform's registrations, people and courses (the config), and what it has issued since."""

    def __init__(self, config: dict, url: str):
        self.url = config.get("url") or url
        self.tools, self.users, self.contexts = config["tools"], config["users"], config["contexts"]
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex
        self.login_hints: dict[str, str] = {}
        self.messages: dict[str, dict] = {}
        self.nonces: dict[str, list[str]] = {}
        self.assertions_seen: set[str] = set()
        self.access_tokens: dict[str, dict] = {}
        self.line_items: dict[str, list[dict]] = {context: [] for context in self.contexts}
        self.scores: list[dict] = []
        self.memberships_read: list[str] = []

    def jwks(self) -> dict:
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def context_url(self, context: str) -> str:
        return f"{self.url}/contexts/{context}"

    def id_token(self, message: dict, nonce: str) -> str:
        """The signed launch of message's person in its course, tampered as message asks."""
        tool, user, context = self.tools[message["client_id"]], self.users[message["user"]], message["context"]
        course = self.contexts[context]
        now = int(time.time())
        tamper = message["tamper"]
        claims = {
            "iss": self.url,
            "aud": "another-tool" if tamper == "audience" else message["client_id"],
            "sub": message["user"],
            "iat": now - 3600 if tamper == "expired" else now,
            "exp": now - 600 if tamper == "expired" else now + 300,
            "nonce": self.nonces[message["client_id"]][0] if tamper == "nonce" else nonce,
            **{field: value for field, value in user.items() if field in PERSON},
            f"{LTI}message_type": "LtiDeepLinkingRequest" if tamper == "deep_linking" else "LtiResourceLinkRequest",
            f"{LTI}version": "1.3.0",
            f"{LTI}deployment_id": "another-deployment" if tamper == "deployment" else tool["deployment_id"],
            f"{LTI}target_link_uri": tool["target_link_uri"],
            f"{LTI}resource_link": {"id": f"{context}-link", "title": f"{course['label']} on JupyterHub"},
            f"{LTI}context": {
                "id": context,
                "label": course["label"],
                "title": course["title"],
                "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"],
            },
            f"{LTI}roles": ROLES[course["members"][message["user"]]],
            f"{LTI}custom": {"username": user["username"]} if "username" in user else {},
            NRPS_CLAIM: {
                "context_memberships_url": f"{self.context_url(context)}/memberships",
                "service_versions": ["2.0"],
            },
            AGS_CLAIM: {"scope": AGS_SCOPES, "lineitems": f"{self.context_url(context)}/lineitems"},
        }
        self.nonces.setdefault(message["client_id"], []).append(nonce)
        # A forger's key that claims to be the platform's.
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if tamper == "signature" else self.key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})

    async def tool_key(self, client_id: str, kid: str | None):
        """The public key the tool signs its assertions with: its JWKS URL's (by kid) or the configured one."""
        tool = self.tools[client_id]
        if "public_key" in tool:
            return tool["public_key"]
        response = await httpclient.AsyncHTTPClient().fetch(tool["jwks_url"])
        for key in json.loads(response.body)["keys"]:
            if key.get("kid") == kid:
                return jwt.PyJWK(key).key
        raise OAuthError("invalid_client", f"no key {kid} in the tool's JWKS")

    async def grant(self, assertion: str, scopes: list[str]) -> dict:
        """An access token for the tool whose key signed assertion, with scopes."""
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as error:
            raise OAuthError("invalid_client", f"not a JWT: {error}") from None
        client_id = claims.get("iss")
        if client_id not in self.tools:
            raise OAuthError("invalid_client", f"unknown client {client_id!r}")
        try:
            claims = jwt.decode(
                assertion,
                await self.tool_key(client_id, header.get("kid")),
                algorithms=["RS256"],
                audience=[f"{self.url}/token", self.url],
                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
            )
        except jwt.PyJWTError as error:
            raise OAuthError("invalid_client", f"the client assertion is refused: {error}") from None
        if claims["sub"] != client_id or claims["jti"] in self.assertions_seen:
            raise OAuthError("invalid_client", "the client assertion is not the tool's, or was used before")
        self.assertions_seen.add(claims["jti"])
        if not scopes or not set(scopes) <= set(SCOPE.values()):
            raise OAuthError("invalid_scope", f"scopes must be some of {sorted(SCOPE.values())}")
        token = secrets.token_urlsafe(32)
        self.access_tokens[token] = {
            "client_id": client_id,
            "scopes": set(scopes),
            "until": time.time() + TOKEN_SECONDS,
        }
        return {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_SECONDS, "scope": " ".join(scopes)}


class OAuthError(web.HTTPError):
    def __init__(self, error: str, description: str):
        super().__init__(400, reason=error)
        self.body = {"error": error, "error_description": description}


class Handler(web.RequestHandler):
    @property
    def platform(self) -> Platform:
        return self.settings["platform"]

    def answer(self, body: dict | list, media_type: str = "application/json", status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", media_type)
        self.finish(json.dumps(body))

    def write_error(self, status_code: int, **kwargs) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        body = getattr(error, "body", None) or {"error": self._reason}
        self.finish(json.dumps(body))

    def refuse(self, reason: str) -> None:
        raise web.HTTPError(400, reason=reason)

    def body_json(self) -> dict:
        try:
            body = json.loads(self.request.body)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self.refuse("the body must be a JSON object")
        return body

    def context(self, context: str, scopes: set[str]) -> dict:
        """The context, for a bearer token with one of scopes."""
        token = self.request.headers.get("Authorization", "").removeprefix("Bearer ")
        grant = self.platform.access_tokens.get(token)
        if grant is None or grant["until"] < time.time():
            raise web.HTTPError(401, reason="no valid access token")
        if not grant["scopes"] & scopes:
            raise web.HTTPError(403, reason=f"the token has none of the scopes {sorted(scopes)}")
        if context not in self.platform.contexts:
            raise web.HTTPError(404, reason=f"no context {context}")
        return self.platform.contexts[context]


class LaunchHandler(Handler):
    """A person opens the tool's link in a course: the third-party login initiation."""

    def get(self):
        client_id, user, context = (self.get_argument(name) for name in ("client_id", "user", "context"))
        tamper = self.get_argument("tamper", None)
        tool = self.platform.tools.get(client_id)
        if tool is None or user not in self.platform.contexts.get(context, {}).get("members", {}):
            self.refuse("no such tool, or the person is not in that course")
        if tamper not in (None, *TAMPERINGS) or (tamper == "nonce" and not self.platform.nonces.get(client_id)):
            self.refuse(f"tamper is one of {sorted(TAMPERINGS)}; nonce needs an earlier launch")
        login_hint, message_hint = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        self.platform.login_hints[login_hint] = user
        self.platform.messages[message_hint] = {
            "client_id": client_id,
            "user": user,
            "context": context,
            "tamper": tamper,
            "login_hint": login_hint,
        }
        query = {
            "iss": self.platform.url,
            "login_hint": login_hint,
            "lti_message_hint": message_hint,
            "target_link_uri": tool["target_link_uri"],
            "client_id": client_id,
            "lti_deployment_id": tool["deployment_id"],
        }
        self.redirect(f"{tool['login_url']}?{urlencode(query)}")


class AuthorizeHandler(Handler):
    """The OpenID Connect authorization endpoint of LTI 1.3's implicit flow."""

    def get(self):
        arguments = {name: self.get_argument(name, "") for name in ("client_id", "redirect_uri", "login_hint")}
        tool = self.platform.tools.get(arguments["client_id"])
        if tool is None or arguments["redirect_uri"] not in tool["redirect_uris"]:
            # Never send anything to a redirect URI the tool did not register.
            self.refuse("unknown client_id, or a redirect_uri the tool did not register")
        message = self.platform.messages.pop(self.get_argument("lti_message_hint", ""), None)
        if message is None or message["client_id"] != arguments["client_id"]:
            self.refuse("an lti_message_hint this platform did not issue to this tool, or used already")
        if self.platform.login_hints.pop(arguments["login_hint"], None) != message["user"]:
            self.refuse("a login_hint this platform did not issue for this launch")
        expected = {"response_type": "id_token", "response_mode": "form_post", "prompt": "none"}
        if any(self.get_argument(name, "") != value for name, value in expected.items()):
            self.refuse(f"the request must have {expected}")
        if "openid" not in self.get_argument("scope", "").split() or not self.get_argument("nonce", ""):
            self.refuse("the request needs scope openid and a nonce")
        fields = {
            "id_token": self.platform.id_token(message, self.get_argument("nonce")),
            "state": self.get_argument("state", ""),
        }
        inputs = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(value)}">' for name, value in fields.items()
        )
        self.finish(
            '<!doctype html><html><body onload="document.forms[0].submit()">'
            f'<form method="post" action="{html.escape(arguments["redirect_uri"])}">{inputs}'
            "<noscript><button>Continue</button></noscript></form></body></html>"
        )

    post = get


class JwksHandler(Handler):
    def get(self):
        self.answer(self.platform.jwks())


class TokenHandler(Handler):
    async def post(self):
        if self.get_argument("grant_type", "") != "client_credentials":
            raise OAuthError("unsupported_grant_type", "only client_credentials")
        if self.get_argument("client_assertion_type", "") != ASSERTION_TYPE:
            raise OAuthError("invalid_client", f"client_assertion_type must be {ASSERTION_TYPE}")
        scopes = self.get_argument("scope", "").split()
        self.answer(await self.platform.grant(self.get_argument("client_assertion", ""), scopes))


class MembershipsHandler(Handler):
    """Names and roles: the course's members, a page of `limit` at a time (Link: rel="next")."""

    def get(self, context: str):
        course = self.context(context, {SCOPE["memberships"]})
        self.platform.memberships_read.append(context)
        members = [
            {
                "status": "Inactive" if sub in course.get("inactive", ()) else "Active",
                "user_id": sub,
                "roles": ROLES[role],
                **{field: value for field, value in self.platform.users[sub].items() if field in PERSON},
            }
            for sub, role in sorted(course["members"].items())
            if self.get_argument("role", None) in (None, *ROLES[role])
        ]
        offset, limit = int(self.get_argument("offset", "0")), int(self.get_argument("limit", "100"))
        if offset + limit < len(members):
            query = {**{k: self.get_argument(k) for k in self.request.arguments}, "offset": offset + limit}
            self.set_header(
                "Link", f'<{self.platform.context_url(context)}/memberships?{urlencode(query)}>; rel="next"'
            )
        self.answer(
            {
                "id": self.request.full_url(),
                "context": {"id": context, "label": course["label"], "title": course["title"]},
                "members": members[offset : offset + limit],
            },
            "application/vnd.ims.lti-nrps.v2.membershipcontainer+json",
        )


class LineItemsHandler(Handler):
    """The course's line items: listed (filtered by resource_link_id, resource_id, tag), created."""

    def get(self, context: str):
        self.context(context, {SCOPE["lineitem"], SCOPE["lineitem.readonly"]})
        filters = {"resource_link_id": "resourceLinkId", "resource_id": "resourceId", "tag": "tag"}
        wanted = {field: self.get_argument(name) for name, field in filters.items() if self.get_argument(name, None)}
        items = [i for i in self.platform.line_items[context] if all(i.get(f) == v for f, v in wanted.items())]
        self.answer(items, "application/vnd.ims.lis.v2.lineitemcontainer+json")

    def post(self, context: str):
        self.context(context, {SCOPE["lineitem"]})
        body = self.body_json()
        maximum = body.get("scoreMaximum")
        if not body.get("label") or not isinstance(maximum, (int, float)) or maximum <= 0:
            self.refuse("a line item needs a label and a scoreMaximum above 0")
        items = self.platform.line_items[context]
        fields = ("label", "scoreMaximum", "resourceId", "resourceLinkId", "tag", "startDateTime", "endDateTime")
        item = {
            "id": f"{self.platform.context_url(context)}/lineitems/{len(items) + 1}",
            **{field: body[field] for field in fields if field in body},
        }
        items.append(item)
        self.answer(item, "application/vnd.ims.lis.v2.lineitem+json", status=201)


def line_item(platform: Platform, context: str, number: str) -> dict:
    items = platform.line_items[context]
    if not 1 <= int(number) <= len(items):
        raise web.HTTPError(404, reason=f"no line item {number} in {context}")
    return items[int(number) - 1]


class LineItemHandler(Handler):
    def get(self, context: str, number: str):
        self.context(context, {SCOPE["lineitem"], SCOPE["lineitem.readonly"]})
        self.answer(line_item(self.platform, context, number), "application/vnd.ims.lis.v2.lineitem+json")


class ScoresHandler(Handler):
    """A person's score on a line item; an older one than the stored one is ignored, as the spec says."""

    def post(self, context: str, number: str):
        course = self.context(context, {SCOPE["score"]})
        item = line_item(self.platform, context, number)
        body = self.body_json()
        if body.get("userId") not in course["members"]:
            self.refuse("userId is not a member of the course")
        if body.get("activityProgress") not in ACTIVITY or body.get("gradingProgress") not in GRADING:
            self.refuse(f"activityProgress is one of {sorted(ACTIVITY)}, gradingProgress one of {sorted(GRADING)}")
        given = body.get("scoreGiven")
        if not isinstance(body.get("timestamp"), str) or (
            given is not None
            and not (isinstance(given, (int, float)) and isinstance(body.get("scoreMaximum"), (int, float)))
        ):
            self.refuse("a score needs a timestamp, and scoreMaximum with scoreGiven")
        earlier = [s for s in self.platform.scores if s["lineItem"] == item["id"] and s["userId"] == body["userId"]]
        if earlier and earlier[-1]["timestamp"] >= body["timestamp"]:
            self.refuse("a score as old as or older than the stored one")
        self.platform.scores.append({**body, "lineItem": item["id"], "label": item["label"], "context": context})
        self.set_status(204)
        self.finish()


class TestScoresHandler(Handler):
    """For the tests alone: every score stored, in order."""

    def get(self):
        self.answer(self.platform.scores)


class TestMembershipsReadHandler(Handler):
    """For the tests alone: the contexts whose members were read, in order."""

    def get(self):
        self.answer(self.platform.memberships_read)


class TestContextHandler(Handler):
    """For the tests alone: a context's members (and inactive ones) replaced."""

    def put(self, context: str):
        body = json.loads(self.request.body)
        self.platform.contexts[context].update(members=body["members"], inactive=body.get("inactive", []))
        self.set_status(204)
        self.finish()


def application(platform: Platform) -> web.Application:
    return web.Application(
        [
            (r"/launch", LaunchHandler),
            (r"/authorize", AuthorizeHandler),
            (r"/jwks", JwksHandler),
            (r"/token", TokenHandler),
            (r"/contexts/([^/]+)/memberships", MembershipsHandler),
            (r"/contexts/([^/]+)/lineitems", LineItemsHandler),
            (r"/contexts/([^/]+)/lineitems/([0-9]+)", LineItemHandler),
            (r"/contexts/([^/]+)/lineitems/([0-9]+)/scores", ScoresHandler),
            (r"/_test/scores", TestScoresHandler),
            (r"/_test/memberships-read", TestMembershipsReadHandler),
            (r"/_test/contexts/([^/]+)", TestContextHandler),
        ],
        platform=platform,
    )


async def serve(host: str, port: int, config: dict) -> None:
    sockets = bind_sockets(port, host)
    bound = sockets[0].getsockname()[1]
    platform = Platform(config, f"http://{host}:{bound}")
    HTTPServer(application(platform)).add_sockets(sockets)
    print(f"listening on {platform.url}", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--config", required=True, help="the platform's tools, people and courses (JSON)")
    arguments = parser.parse_args(argv)
    with open(arguments.config) as file:
        config = json.load(file)
    asyncio.run(serve(arguments.host, arguments.port, config))


if __name__ == "__main__":
    main()
