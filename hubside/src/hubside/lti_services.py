"""The tool's side of LTI Advantage services (LTI 1.3), for the deploy's tools (grades back): an
access token from the platform's token endpoint for a client assertion signed with the tool's
key; a course's members (Names and Role Provisioning Services); its line items, found or created,
and a person's score on one (Assignment and Grade Services).

Plain urllib, synchronous: the tools that use it run on their own, not in the hub's event loop,
and urllib trusts the system's CAs (the site's own among them: jh_extra_ca_certificates).

The bearer token goes to the platform only: every URL (the launches' service endpoints, a Link
header's next page, a line item's id) must be https on the token URL's origin or one the caller
names (the issuer's host, when its services are elsewhere); redirects are never followed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import urlencode, urlsplit, urlunsplit
from urllib.request import HTTPRedirectHandler, Request, build_opener

import jwt
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import RSAAlgorithm

SCOPES = {
    "memberships": "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
    "lineitem": "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "score": "https://purl.imsglobal.org/spec/lti-ags/scope/score",
}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MEMBERSHIPS = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
LINE_ITEMS = "application/vnd.ims.lis.v2.lineitemcontainer+json"
LINE_ITEM = "application/vnd.ims.lis.v2.lineitem+json"
SCORE = "application/vnd.ims.lis.v1.score+json"
TIMEOUT = 30
# The platform's answers are hostile input: each at most this long, a course's members at most this many.
MAX_ANSWER = 32 * 1024 * 1024
MAX_MEMBERS = 100_000


def tool_key(pem: bytes):
    """The tool's private key (RSA, for RS256) from its PEM file's bytes."""
    return serialization.load_pem_private_key(pem, password=None)


def tool_jwk(key) -> dict:
    """The public JWK of the tool's key, its kid the RFC 7638 thumbprint: the same wherever it is
    computed (the hub's /hub/lti13/jwks, these assertions)."""
    public = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    canonical = json.dumps({name: public[name] for name in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    return {**public, "kid": kid, "alg": "RS256", "use": "sig"}


LOOPBACK = ("127.0.0.1", "::1", "localhost")


class ServiceError(Exception):
    pass


class _NoRedirects(HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        # urllib would send the Authorization header on to wherever the redirect points.
        raise ServiceError(f"{req.get_method()} {req.full_url}: redirected ({code}) to {newurl}, not followed")


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.lower()}"


class Services:
    """The platform's services for one tool registration (client_id), its key signing the assertions.

    origins: more origins of the platform's services than the token URL's (https://host[:port]);
    loopback_http: plain http on the loopback interface allowed (a test platform), never otherwise.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        key,
        scopes: list[str] | None = None,
        origins: tuple[str, ...] = (),
        loopback_http: bool = False,
    ):
        self.token_url, self.client_id, self.key = token_url, client_id, key
        self.scopes = scopes or list(SCOPES.values())
        self.loopback_http = loopback_http
        self.origins = {origin(token_url), *map(origin, origins)}
        self.check_url(token_url)
        self._token: tuple[str, float] | None = None
        self._opener = build_opener(_NoRedirects)

    def check_url(self, url: str) -> str:
        """url, if it is the platform's: https (http only to loopback, when allowed) on its origins."""
        parts = urlsplit(url)
        secure = parts.scheme == "https" or (
            self.loopback_http and parts.scheme == "http" and parts.hostname in LOOPBACK
        )
        if not secure:
            raise ServiceError(f"{url}: not an https URL; the token is sent to https URLs only")
        if origin(url) not in self.origins:
            raise ServiceError(f"{url}: not on the platform's origins ({', '.join(sorted(self.origins))})")
        return url

    def token(self) -> str:
        """A bearer token for the scopes, asked again shortly before the last one ends."""
        if self._token and self._token[1] > time.time() + 60:
            return self._token[0]
        now = int(time.time())
        assertion = jwt.encode(
            {
                "iss": self.client_id,
                "sub": self.client_id,
                "aud": self.token_url,
                "iat": now,
                "exp": now + 300,
                "jti": uuid.uuid4().hex,
            },
            self.key,
            algorithm="RS256",
            headers={"kid": tool_jwk(self.key)["kid"]},
        )
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
            "scope": " ".join(self.scopes),
        }
        answer, _ = self._call("POST", self.token_url, urlencode(form).encode(), "application/x-www-form-urlencoded")
        self._token = answer["access_token"], now + int(answer.get("expires_in", 3600))
        return self._token[0]

    def members(self, memberships_url: str, context_id: str | None = None) -> list[dict]:
        """The course's members, every page of them; with context_id, refused unless each page says
        it lists that context (the URL comes from the hub's record of launches: the hub's to write)."""
        members, url = [], memberships_url
        while url:
            page, headers = self._call("GET", url, accept=MEMBERSHIPS, token=True)
            if not (isinstance(page, dict) and isinstance(page.get("members"), list)):
                raise ServiceError(f"GET {url}: not a membership container")
            listed = page.get("context") if isinstance(page.get("context"), dict) else {}
            if context_id is not None and str(listed.get("id")) != context_id:
                raise ServiceError(f"GET {url}: the members of context {listed.get('id')!r}, not of {context_id!r}")
            members += page["members"]
            if len(members) > MAX_MEMBERS:
                raise ServiceError(f"{memberships_url}: more than {MAX_MEMBERS} members")
            url = next_link(headers.get("Link", ""))
        return members

    def line_item(self, lineitems_url: str, label: str, score_maximum: float, resource_id: str) -> dict:
        """The course's line item for resource_id (an assignment), made with label and score_maximum
        if it has none yet."""
        found, _ = self._call("GET", with_query(lineitems_url, resource_id=resource_id), accept=LINE_ITEMS, token=True)
        # The platform's filter is not trusted: the item must be this resource's, in this course.
        for item in found or []:
            if item.get("resourceId") == resource_id and under(item.get("id"), lineitems_url):
                return item
        item = {"label": label, "scoreMaximum": score_maximum, "resourceId": resource_id}
        made, _ = self._call("POST", lineitems_url, json.dumps(item).encode(), LINE_ITEM, accept=LINE_ITEM, token=True)
        if not under(made.get("id"), lineitems_url):
            raise ServiceError(f"the line item made has the id {made.get('id')!r}, not one under {lineitems_url}")
        return made

    def post_score(self, line_item: dict, user_id: str, score_given: float, comment: str | None = None) -> None:
        """A person's final score on the line item (the platform's user id, the launch's sub)."""
        score = {
            "userId": user_id,
            "scoreGiven": score_given,
            "scoreMaximum": line_item["scoreMaximum"],
            "activityProgress": "Completed",
            "gradingProgress": "FullyGraded",
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        }
        if comment:
            score["comment"] = comment
        url = with_path(line_item["id"], "/scores")
        self._call("POST", url, json.dumps(score).encode(), SCORE, token=True)

    def _call(self, method, url, body=None, content_type=None, accept="application/json", token=False):
        """The answer's JSON (None when empty) and its headers."""
        self.check_url(url)
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        if token:
            headers["Authorization"] = f"Bearer {self.token()}"
        try:
            request = Request(url, data=body, headers=headers, method=method)
            with self._opener.open(request, timeout=TIMEOUT) as response:
                text = response.read(MAX_ANSWER + 1)
        except OSError as error:
            # HTTPError is an OSError: the platform's refusal, with its reason.
            detail = error.read(4096).decode(errors="replace") if hasattr(error, "read") else ""
            raise ServiceError(f"{method} {url}: {error} {detail}".strip()) from None
        if len(text) > MAX_ANSWER:
            raise ServiceError(f"{method} {url}: an answer of more than {MAX_ANSWER} bytes")
        try:
            return (json.loads(text) if text else None), response.headers
        except (ValueError, RecursionError):
            raise ServiceError(f"{method} {url}: the answer is not JSON") from None


def next_link(header: str) -> str | None:
    """The rel="next" URL of a Link header."""
    for part in header.split(","):
        url, _, parameters = part.partition(";")
        if 'rel="next"' in parameters.replace(" ", ""):
            return url.strip().strip("<>")
    return None


def under(item_id, lineitems_url: str) -> bool:
    """Whether item_id is a line item of the course whose line items are at lineitems_url."""
    if not isinstance(item_id, str):
        return False
    item, items = urlsplit(item_id), urlsplit(lineitems_url)
    return (
        origin(item_id) == origin(lineitems_url)
        and item.path.startswith(items.path.rstrip("/") + "/")
        and ".." not in item.path.split("/")
    )


def with_query(url: str, **parameters: str) -> str:
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(parameters)]))
    return urlunsplit(parts._replace(query=query))


def with_path(url: str, suffix: str) -> str:
    """url with suffix after its path, before its query (a line item's scores)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + suffix))
