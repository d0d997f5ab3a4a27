"""LTI 1.3 logins: a launch from the learning platform (Moodle, Canvas, ...) logs its person in, on
jupyterhub-ltiauthenticator, with what the deploy adds:

- the name rules of the other external logins (hubside.oauth.UnixNames): the claim username_claim
  (``custom_username``: the tool's custom parameter ``username=$User.username``), lower-cased, must
  be a Unix name, and is bound to the platform's account (its issuer and ``sub``) once its person is
  let in; a name the settings bind is that account's alone;
- launches of the platform's issuer, the tool's client id and the settings' deployments only; the
  id_token checked against the platform's keys, fetched without holding up the hub (cached; a
  platform that does not answer gets the person a page saying so, 503);
- the course: a launch from a context the settings map to a course puts its person in
  ``<course>-students`` (learners) or ``<course>-staff`` (instructors and their sub-roles, such as
  teaching assistants), in the hub's groups; a launch from any other course is refused, unless
  the name is one the settings bind to this account (admins); each context's service endpoints
  (names and roles, grades) are kept for the deploy's tools (courses_file, by deployment and
  context);
- the tool's public key at /hub/lti13/jwks, for the platform to check the tool's service
  requests (hubside.lti_services): the JWK the deploy derived from the key, served as it is; the
  private key is root's, not the hub's.
"""

from __future__ import annotations

import asyncio
import json
import time
from functools import cached_property
from pathlib import Path

import jwt
from jupyterhub import orm
from jupyterhub.handlers import BaseHandler
from ltiauthenticator.lti13.auth import LTI13Authenticator
from ltiauthenticator.lti13.error import InvalidAudienceError, TokenError, ValidationError
from ltiauthenticator.lti13.handlers import LTI13CallbackHandler, LTI13LoginInitHandler
from ltiauthenticator.lti13.validator import LTI13LaunchValidator
from ltiauthenticator.utils import convert_request_to_dict
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Dict, Set, Unicode

from hubside import names
from hubside.oauth import UnixNames

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership"
# A context role, or one of its sub-roles (membership/Instructor#TeachingAssistant, ...), -> the course's group.
COURSE_GROUPS = (("Instructor", "staff"), ("Learner", "students"))
# The platform's keys are asked again for an unknown kid (a key rotated), at most this often.
KEYS_REFRESH_SECONDS = 10
# Used nonces kept (each until its launch expires), at most.
NONCES_KEPT = 100_000


def course_group(roles: list) -> str | None:
    """The course group (staff, students) of a launch's roles; staff wins; None: neither."""
    for role, group in COURSE_GROUPS:
        if any(r == f"{MEMBERSHIP}#{role}" or str(r).startswith(f"{MEMBERSHIP}/{role}#") for r in roles):
            return group
    return None


def read_courses(path: str) -> dict:
    """The courses file's endpoints ({} before any launch)."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}


# The login's state and nonce under the __Host- prefix (as hubside.oauth's): a page of a server on
# a subdomain (jh_user_subdomains) cannot set them for the hub's name, to have a visitor's browser
# post the page owner's launch and be signed in as them.
HOST_PREFIX = "__Host-"


class LoginHandler(LTI13LoginInitHandler):
    """The platform's third-party login initiation: this hub's issuer, client and deployments only."""

    def _set_oauth_cookie(self, key: str, value):
        super()._set_oauth_cookie(HOST_PREFIX + key, value)

    def post(self):
        authenticator = self.authenticator
        if self.get_argument("iss", None) != authenticator.issuer:
            raise web.HTTPError(
                400, f"Open the hub from your course in the learning platform ({authenticator.issuer})."
            )
        if self.get_argument("client_id", None) not in (None, *authenticator.client_id):
            raise web.HTTPError(400, "This launch is for another tool of the learning platform.")
        if self.get_argument("lti_deployment_id", None) not in (None, *authenticator.deployment_ids):
            raise web.HTTPError(403, "This deployment of the tool in the learning platform is not this hub's.")
        return super().post()

    get = post

    def authorize_redirect(self, client_id=None, **arguments):
        # The platform may leave out the client id when it registered the tool once.
        super().authorize_redirect(client_id=client_id or sorted(self.authenticator.client_id)[0], **arguments)


class LaunchHandler(LTI13CallbackHandler):
    """The launch (the id_token the platform's form posts): checked, its person logged in, enrolled."""

    signing_key = None

    def _get_oauth_cookie(self, name: str):
        name = HOST_PREFIX + name
        cookie = (self.get_secure_cookie(name) or b"").decode("utf8", "replace")
        self.clear_cookie(name, path="/", secure=True)
        return cookie

    async def post(self):
        # What needs no key first: an anonymous POST makes the hub fetch nothing.
        try:
            LTI13LaunchValidator(parent=self.app).validate_auth_response(
                convert_request_to_dict(self.request.arguments)
            )
        except ValidationError as error:
            raise web.HTTPError(400, str(error)) from None
        self.check_state()
        try:
            kid = jwt.get_unverified_header(self.get_argument("id_token", "")).get("kid")
        except jwt.PyJWTError as error:
            raise web.HTTPError(400, f"The launch is not a JWT: {error}") from None
        self.signing_key = await self.authenticator.platform_key(kid)
        await super().post()

    def decode_and_validate_launch_request(self) -> dict:
        """ltiauthenticator's checks (its arguments and state checked before, in post), with the
        key fetched before (not by a blocking client), and the deployment checked."""
        authenticator = self.authenticator
        validator = LTI13LaunchValidator(parent=self.app)
        arguments = convert_request_to_dict(self.request.arguments)
        try:
            launch = jwt.decode(
                arguments["id_token"],
                self.signing_key,
                algorithms=authenticator.jwks_algorithms,
                audience=authenticator.client_id,
                issuer=authenticator.issuer,
                leeway=validator.time_leeway,
            )
        except jwt.InvalidAudienceError as error:
            raise InvalidAudienceError(str(error)) from None
        except jwt.PyJWTError as error:
            raise TokenError(str(error)) from None
        if launch.get(f"{CLAIM}message_type") != "LtiResourceLinkRequest":
            # A deep linking request (an instructor adding content) would log the instructor in.
            raise web.HTTPError(
                400,
                "This hub offers no content to pick: add it to the course as a link (an external tool), "
                "then open it from there.",
            )
        validator.validate_id_token(launch)
        validator.validate_azp_claim(launch, authenticator.client_id)
        self.check_nonce(launch)
        authenticator.use_nonce(launch)
        if launch[f"{CLAIM}deployment_id"] not in authenticator.deployment_ids:
            raise InvalidAudienceError("This deployment of the tool in the learning platform is not this hub's.")
        return launch

    async def login_user(self, data=None):
        user = await super().login_user(data)
        if user is not None:
            self.authenticator.enrol(self.db, user, data)
        return user


class JwksHandler(BaseHandler):
    """The tool's public key, which the platform checks the tool's service requests with: the
    deploy's JWK, as it is (nothing read or computed per request)."""

    def get(self):
        self.set_header("Content-Type", "application/json")
        self.finish(self.authenticator.jwks)


class UnixLTIAuthenticator(UnixNames, LTI13Authenticator):
    login_handler = LoginHandler
    callback_handler = LaunchHandler
    login_service = "your learning platform"
    user_auth_state_key = "launch"

    deployment_ids = Set(Unicode(), help="The tool's deployments in the platform whose launches log in").tag(
        config=True
    )
    # A context id is the platform's own, whichever of the hub's deployments launches from it.
    courses = Dict(
        Unicode(), help="The platform's context id (in any of the deployments) -> the hub's course (its groups' prefix)"
    ).tag(config=True)
    username_claim = Unicode(
        "custom_username", help="The claim whose value, lower-cased, is the Unix name (custom_NAME: a custom one)"
    ).tag(config=True)
    tool_jwk = Dict(help="The tool's public key (a JWK), which /hub/lti13/jwks shows").tag(config=True)
    courses_file = Unicode(help="Each context's course and service endpoints, as launches gave them (JSON)").tag(
        config=True
    )
    nonces_file = Unicode(
        "", help="The launches' nonces used, until each launch expires (JSON): kept across the hub's restarts"
    ).tag(config=True)

    _platform_keys: dict = {}
    _keys_read_at = 0.0
    _keys_reading: asyncio.Future | None = None
    _keys_error: str | None = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._used_nonces: dict[str, float] = self._read_nonces()

    def _read_nonces(self) -> dict[str, float]:
        """The nonces used before the hub's restart: a kept launch form is not good again."""
        if not self.nonces_file:
            return {}
        try:
            with open(self.nonces_file) as file:
                kept = json.load(file)
        except FileNotFoundError:
            return {}
        except ValueError:
            kept = None
        if not isinstance(kept, dict) or not all(isinstance(v, (int, float)) for v in kept.values()):
            self.log.warning("%s is not a record of nonces: starting a new one", self.nonces_file)
            return {}
        return {str(nonce): float(expires) for nonce, expires in kept.items()}

    def get_handlers(self, app):
        # Not ltiauthenticator's public config endpoint: it advertises more scopes than the tool uses.
        return [
            (self.login_url(""), self.login_handler),
            (self.callback_url(""), self.callback_handler),
            ("lti13/jwks", JwksHandler),
        ]

    @cached_property
    def jwks(self) -> str:
        # Made once: the handler answers anonymous requests.
        return json.dumps({"keys": [self.tool_jwk]})

    def use_nonce(self, launch: dict) -> None:
        """The launch's nonce, refused if a launch used it before (the browser's cookies, which
        the nonce is checked against, can be kept and sent again); kept until the launch expires."""
        now = time.time()
        used = self._used_nonces
        for nonce in [nonce for nonce, expires in used.items() if expires < now]:
            del used[nonce]
        nonce = str(launch.get("nonce"))
        if nonce in used:
            raise TokenError("This launch was used already: open the hub from your course again.")
        if len(used) >= NONCES_KEPT:
            # Full (a flood of good launches): the soonest to expire goes first.
            del used[min(used, key=used.get)]
        used[nonce] = float(launch.get("exp", now)) + LTI13LaunchValidator(parent=self).time_leeway
        if self.nonces_file:
            names.save(self.nonces_file, used)

    def claimed_name(self, launch) -> str:
        if self.username_claim.startswith("custom_"):
            launch = launch.get(f"{CLAIM}custom") or {}
            return str(launch.get(self.username_claim[len("custom_") :]) or "")
        return super().claimed_name(launch)

    def account_of(self, launch) -> str:
        # The platform's account: sub is unique within its issuer.
        return f"{launch['iss']} {launch['sub']}" if launch.get("sub") else ""

    async def authenticate(self, handler, data=None):
        """data: the launch, checked (LaunchHandler)."""
        return {"name": self.user_info_to_username(data), "auth_state": {self.user_auth_state_key: data}}

    def check_allowed(self, username, authentication=None):
        if super().check_allowed(username, authentication):
            return True
        enrolment = self.enrolment(authentication["auth_state"][self.user_auth_state_key])
        if isinstance(enrolment, str):
            self.log.warning("Refused %s: %s", username, enrolment)
            raise web.HTTPError(403, enrolment)
        return True

    def enrolment(self, launch: dict) -> tuple[str, str] | str:
        """The launch's course and the hub's group of its role there, or why it has none."""
        context = launch.get(f"{CLAIM}context") or {}
        course = self.courses.get(str(context.get("id")))
        if course is None:
            title = context.get("title") or context.get("label") or "This course"
            return f"{title} is not a course of this hub: its admins can add it."
        group = course_group(launch.get(f"{CLAIM}roles") or [])
        if group is None:
            return f"Your role in {course} is neither learner nor instructor: it gives no access to this hub."
        return course, f"{course}-{group}"

    def enrol(self, db, user, launch: dict) -> None:
        """The person in the group of their role in the launch's course, and out of its other one
        (the platform says what the role is now)."""
        enrolment = self.enrolment(launch)
        if isinstance(enrolment, str):
            return
        course, group_name = enrolment
        course_groups = {f"{course}-{group}" for _, group in COURSE_GROUPS}
        kept = [group for group in user.orm_user.groups if group.name not in course_groups]
        group = orm.Group.find(db, group_name)
        if group is None:
            group = orm.Group(name=group_name)
            db.add(group)
        user.orm_user.groups = [*kept, group]
        db.commit()
        self.keep_services(course, launch)

    def keep_services(self, course: str, launch: dict) -> None:
        """The context's course and service endpoints, for the deploy's tools (grades back):
        {deployment id: {context id: ...}}, one entry per section; an endpoint a launch leaves out
        (a link without grades) keeps the one known."""
        context = str(launch[f"{CLAIM}context"]["id"])
        given = {
            "memberships_url": (launch.get(NRPS_CLAIM) or {}).get("context_memberships_url"),
            "lineitems_url": (launch.get(AGS_CLAIM) or {}).get("lineitems"),
        }
        kept = read_courses(self.courses_file)
        contexts = kept.setdefault(str(launch[f"{CLAIM}deployment_id"]), {})
        known = contexts.get(context) or {}
        endpoints = {"course": course} | {name: url or known.get(name) for name, url in given.items()}
        if known != endpoints:
            contexts[context] = endpoints
            names.save(self.courses_file, kept)

    async def platform_key(self, kid: str | None):
        """The platform's public key kid (its JWKS, read again for an unknown kid at most every
        KEYS_REFRESH_SECONDS, whether the last reading failed or not; one reading at a time)."""
        if kid not in self._platform_keys:
            if self._keys_reading is None and time.monotonic() - self._keys_read_at > KEYS_REFRESH_SECONDS:
                # Recorded before the reading: requests meanwhile wait for it instead of asking again.
                self._keys_read_at = time.monotonic()
                self._keys_reading = asyncio.ensure_future(self._read_keys())
            if self._keys_reading is not None:
                # Shielded: a launch given up does not cancel the others' reading.
                await asyncio.shield(self._keys_reading)
            if self._keys_error is not None:
                raise web.HTTPError(503, self._keys_error)
        if kid not in self._platform_keys:
            raise web.HTTPError(400, "The launch is signed with a key the learning platform does not publish.")
        return self._platform_keys[kid]

    async def _read_keys(self) -> None:
        """The platform's keys, or why they could not be read (_keys_error, until the next reading)."""
        try:
            response = await AsyncHTTPClient().fetch(self.jwks_endpoint, request_timeout=10)
            self._platform_keys = {key.key_id: key.key for key in jwt.PyJWKSet.from_json(response.body.decode()).keys}
            self._keys_error = None
        except (HTTPClientError, OSError) as error:
            self.log.error("The learning platform's keys could not be read: %s", error)
            self._keys_error = "The learning platform did not answer. Please try again in a few minutes."
        except (jwt.PyJWTError, ValueError) as error:
            self.log.error("The learning platform's keys are not a JWKS: %s", error)
            self._keys_error = "The learning platform's keys cannot be read."
        finally:
            self._keys_reading = None
