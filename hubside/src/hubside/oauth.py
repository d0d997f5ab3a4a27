"""OAuth logins for a hub whose users are Unix accounts: OpenID Connect and GitHub, on
oauthenticator, with what the deploy adds:

- one rule from a provider's name to a Unix name: the username claim, ASCII, lower-cased, must be
  [a-z_][a-z0-9_-]{0,31}; a name the settings bind to an account of the provider (OpenID
  Connect's ``sub``, GitHub's numeric ``id``: bound_names) is that account's alone, whoever signs
  in first; any other name is bound to the account that first signed in with it and was let in,
  so two accounts of the provider never share one Unix account, not even after a rename, and a
  refused attempt keeps no name from its owner (hubside.names, in the hub's state);
- a provider that does not answer gives the person a page saying so (503), not a traceback,
  and the hub goes on serving everyone else;
- OpenID Connect: members of allowed_idp_groups (the groups claim) are let in, besides
  allowed_users; the hub's own groups stay the deploy's (jh_groups), not the provider's.
"""

from __future__ import annotations

import re

from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.github import GitHubOAuthenticator
from oauthenticator.oauth2 import OAuthCallbackHandler, OAuthLoginHandler
from tornado import web
from tornado.httpclient import HTTPClientError
from traitlets import Dict, HasTraits, Set, Unicode

from hubside import names as bindings

UNIX_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}\Z")


class UnixNames(HasTraits):
    """Provider names as Unix names, each bound to one account of the provider (a HasTraits, so
    that its trait is one: the authenticators below inherit it with oauthenticator's, hubside.lti's
    with ltiauthenticator's)."""

    names_file = Unicode(help="Unix name -> the provider's account it is bound to (JSON)").tag(config=True)
    bound_names = Dict(
        Unicode(), help="Unix name -> the provider's account the settings give it (before any sign-in)"
    ).tag(config=True)
    subject_key = "sub"

    def claimed_name(self, user_info) -> str:
        """The name the provider gives the person (theirs to edit)."""
        return str(user_info.get(self.username_claim) or "")

    def account_of(self, user_info) -> str:
        """The provider's id of the person's account (never theirs to edit), or ""."""
        return str(user_info.get(self.subject_key) or "")

    def user_info_to_username(self, user_info):
        claimed = self.claimed_name(user_info)
        name = claimed.lower()
        # ASCII before lower-casing: it maps some other letters to ASCII ones (the Kelvin sign to k).
        if not (claimed.isascii() and UNIX_NAME.match(name)):
            raise web.HTTPError(403, f"{claimed!r} cannot be a user name here (a-z, 0-9, _ and -, at most 32)")
        self._refuse_another_account(name, bindings.load(self.names_file), user_info)
        return name

    async def run_post_auth_hook(self, handler, authentication):
        # The name is bound once its person is let in: an outsider's attempt binds nothing (it
        # would keep the name from the account it belongs to).
        name = authentication["name"]
        user_info = (authentication.get("auth_state") or {}).get(self.user_auth_state_key) or {}
        names = bindings.load(self.names_file)
        subject = self._refuse_another_account(name, names, user_info)
        # The configured hook first: a login it refuses (a course's grader account) binds nothing.
        authentication = await super().run_post_auth_hook(handler, authentication)
        if name not in names and name not in self.bound_names:
            names[name] = subject
            bindings.save(self.names_file, names)
        return authentication

    def _refuse_another_account(self, name, names, user_info):
        """The provider's account id of user_info, unless the name is bound to another one."""
        subject = self.account_of(user_info)
        if not subject:
            raise web.HTTPError(403, f"The identity provider gave no account id ({self.subject_key}).")
        if self.bound_names.get(name, names.get(name, subject)) != subject:
            self.log.warning("Refused %s: the name belongs to another account of the provider", name)
            raise web.HTTPError(403, f"The name {name} belongs to another account of the identity provider.")
        return subject


# The login's state (and its PKCE verifier) under the __Host- prefix: a page of a server on a subdomain
# (jh_user_subdomains) cannot set it for the hub's name, to sign a visitor in as the page's owner.
STATE_COOKIE = "__Host-oauthenticator-state"


class HostStateLogin(OAuthLoginHandler):
    def set_state_cookie(self, state_cookie_value):
        self._set_cookie(STATE_COOKIE, state_cookie_value, expires_days=1, httponly=True)


class HostStateCallback(OAuthCallbackHandler):
    def get_state_cookie(self):
        if self._state_cookie is None:
            self._state_cookie = (self.get_secure_cookie(STATE_COOKIE) or b"").decode("utf8", "replace")
            self.clear_cookie(STATE_COOKIE, path="/", secure=True)
        return self._state_cookie


class OutagePage:
    """A provider that does not answer gets the person the hub's page saying so, not a traceback."""

    async def authenticate(self, handler, data=None, **kwargs):
        try:
            return await super().authenticate(handler, data, **kwargs)
        except (HTTPClientError, OSError) as error:
            # An answer of the provider (a refused code, say) is not an outage: the hub's own page.
            if isinstance(error, HTTPClientError) and error.response is not None and error.code < 500:
                raise
            self.log.error("The identity provider did not answer: %s", error)
            raise web.HTTPError(
                503, "The identity provider did not answer. Please try again in a few minutes."
            ) from None


class UnixOIDCAuthenticator(OutagePage, UnixNames, GenericOAuthenticator):
    login_handler = HostStateLogin
    callback_handler = HostStateCallback
    allowed_idp_groups = Set(Unicode(), help="Groups of the provider whose members may log in").tag(config=True)
    groups_claim = Unicode("groups", help="The userinfo claim that lists a person's groups").tag(config=True)

    async def check_allowed(self, username, auth_model):
        if await super().check_allowed(username, auth_model):
            return True
        user_info = (auth_model.get("auth_state") or {}).get(self.user_auth_state_key) or {}
        groups = user_info.get(self.groups_claim) or []
        return isinstance(groups, list) and bool(self.allowed_idp_groups.intersection(map(str, groups)))


class UnixGitHubAuthenticator(OutagePage, UnixNames, GitHubOAuthenticator):
    login_handler = HostStateLogin
    callback_handler = HostStateCallback
    subject_key = "id"
