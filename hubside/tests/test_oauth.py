"""OAuth names: one Unix name per provider account, bound once its person is let in; outages say so."""

from __future__ import annotations

import json

import pytest
from oauthenticator.generic import GenericOAuthenticator
from tornado import web
from tornado.httpclient import HTTPClientError, HTTPRequest, HTTPResponse

from hubside.oauth import UnixGitHubAuthenticator, UnixOIDCAuthenticator

from .conftest import run


@pytest.fixture
def oidc(tmp_path):
    return UnixOIDCAuthenticator(
        names_file=str(tmp_path / "oauth-names.json"),
        username_claim="preferred_username",
        allowed_idp_groups={"ml-2026"},
        allowed_users={"olivia"},
    )


def authentication(name: str, key: str = "oauth_user", **user_info) -> dict:
    """What oauthenticator hands on after the provider answered (the auth model)."""
    return {"name": name, "admin": None, "auth_state": {key: user_info}}


def bindings(authenticator) -> dict:
    with open(authenticator.names_file) as file:
        return json.load(file)


def test_a_provider_name_becomes_a_lower_case_unix_name(oidc):
    assert oidc.user_info_to_username({"preferred_username": "Omar", "sub": "s-omar"}) == "omar"


# "\u212aate" (the Kelvin sign) lower-cases to ASCII, kate: a claim must be ASCII before that.
@pytest.mark.parametrize("name", ["", "o mar", "root;id", "émile", "a" * 33, "-dash", "1abc", "\u212aate", "\u212a"])
def test_a_name_that_cannot_be_a_unix_name_is_refused(oidc, name):
    with pytest.raises(web.HTTPError) as refused:
        oidc.user_info_to_username({"preferred_username": name, "sub": "s"})
    assert refused.value.status_code == 403


def test_a_name_is_bound_once_its_person_is_let_in_and_never_to_another_account(oidc):
    run(oidc.run_post_auth_hook(None, authentication("olivia", preferred_username="olivia", sub="s-olivia")))
    assert bindings(oidc) == {"olivia": "s-olivia"}
    # The same account again: in. Another account calling itself olivia: refused, at both steps.
    assert oidc.user_info_to_username({"preferred_username": "Olivia", "sub": "s-olivia"}) == "olivia"
    with pytest.raises(web.HTTPError, match="belongs to another account"):
        oidc.user_info_to_username({"preferred_username": "olivia", "sub": "s-twin"})
    with pytest.raises(web.HTTPError, match="belongs to another account"):
        run(oidc.run_post_auth_hook(None, authentication("olivia", preferred_username="olivia", sub="s-twin")))
    assert bindings(oidc) == {"olivia": "s-olivia"}


def test_an_account_without_an_id_is_refused_and_binds_nothing(oidc):
    with pytest.raises(web.HTTPError, match="no account id"):
        oidc.user_info_to_username({"preferred_username": "olivia"})
    with pytest.raises(web.HTTPError, match="no account id"):
        run(oidc.run_post_auth_hook(None, authentication("olivia", preferred_username="olivia")))
    with pytest.raises(FileNotFoundError):
        bindings(oidc)


def test_members_of_an_allowed_group_are_let_in_besides_the_listed_users(oidc):
    def allowed(name, groups):
        return run(oidc.check_allowed(name, authentication(name, sub="s", groups=groups)))

    assert allowed("olivia", [])
    assert allowed("omar", ["ml-2026", "other"])
    assert not allowed("otto", ["other"])
    assert not allowed("otto", "ml-2026")  # a claim that is not a list lets nobody in


def raising(error):
    async def authenticate(self, handler, data=None, **kwargs):
        raise error

    return authenticate


@pytest.mark.parametrize(
    "error",
    [OSError("connection refused"), HTTPClientError(599), HTTPClientError(502, response=None)],
    ids=["refused", "timeout", "bad-gateway"],
)
def test_a_provider_that_does_not_answer_gets_the_person_a_page_saying_so(oidc, monkeypatch, error):
    monkeypatch.setattr(GenericOAuthenticator, "authenticate", raising(error))
    with pytest.raises(web.HTTPError) as page:
        run(oidc.authenticate(None))
    assert page.value.status_code == 503 and "did not answer" in page.value.log_message


def test_a_provider_s_answer_is_not_an_outage(oidc, monkeypatch):
    response = HTTPResponse(HTTPRequest("https://login.example.org/token"), 400)
    monkeypatch.setattr(GenericOAuthenticator, "authenticate", raising(HTTPClientError(400, response=response)))
    with pytest.raises(HTTPClientError):
        run(oidc.authenticate(None))


def test_github_names_are_bound_to_github_s_numeric_id(tmp_path):
    github = UnixGitHubAuthenticator(names_file=str(tmp_path / "names.json"))
    run(github.run_post_auth_hook(None, authentication("gina", "github_user", login="Gina", id=4242)))
    assert bindings(github) == {"gina": "4242"}
    with pytest.raises(web.HTTPError, match="belongs to another account"):
        github.user_info_to_username({"login": "gina", "id": 7})


def test_a_name_the_settings_bind_is_its_account_s_alone_whoever_signs_in_first(tmp_path):
    """A stranger at the provider calls themselves the admin, then a listed name, before their
    owners ever sign in: refused; the owners get their names."""
    oidc = UnixOIDCAuthenticator(
        names_file=str(tmp_path / "oauth-names.json"),
        username_claim="preferred_username",
        bound_names={"prof": "sub-prof", "lena": "sub-lena"},
        allowed_users={"prof", "lena"},
        admin_users={"prof"},
        allowed_idp_groups={"ml-2026"},
    )
    for name in ("prof", "lena", "Prof"):
        with pytest.raises(web.HTTPError, match="belongs to another account"):
            oidc.user_info_to_username({"preferred_username": name, "sub": "sub-stranger", "groups": ["ml-2026"]})
        with pytest.raises(web.HTTPError, match="belongs to another account"):
            run(
                oidc.run_post_auth_hook(None, authentication(name.lower(), preferred_username=name, sub="sub-stranger"))
            )
    with pytest.raises(FileNotFoundError):
        bindings(oidc)  # nothing was bound by the attempts
    assert oidc.user_info_to_username({"preferred_username": "prof", "sub": "sub-prof"}) == "prof"
    run(oidc.run_post_auth_hook(None, authentication("prof", preferred_username="prof", sub="sub-prof")))
    with pytest.raises(FileNotFoundError):
        bindings(oidc)  # the settings hold it: the file need not


def test_the_settings_binding_wins_over_an_earlier_first_come_one(tmp_path):
    (tmp_path / "oauth-names.json").write_text('{"prof": "sub-stranger"}')
    oidc = UnixOIDCAuthenticator(
        names_file=str(tmp_path / "oauth-names.json"),
        username_claim="preferred_username",
        bound_names={"prof": "sub-prof"},
    )
    assert oidc.user_info_to_username({"preferred_username": "prof", "sub": "sub-prof"}) == "prof"
    with pytest.raises(web.HTTPError, match="belongs to another account"):
        oidc.user_info_to_username({"preferred_username": "prof", "sub": "sub-stranger"})


def test_an_outsider_with_an_unbound_listed_name_is_not_let_in(tmp_path):
    """A listed name without its account is let in through the groups alone (not by name)."""
    oidc = UnixOIDCAuthenticator(
        names_file=str(tmp_path / "oauth-names.json"), allowed_users=set(), allowed_idp_groups={"ml-2026"}
    )
    assert not run(oidc.check_allowed("liam", authentication("liam", sub="sub-x", groups=["physics"])))
    assert run(oidc.check_allowed("liam", authentication("liam", sub="sub-x", groups=["ml-2026"])))


def test_a_login_the_configured_hook_refuses_binds_nothing(tmp_path):
    """A stranger at the provider calling themselves a course's grader: the hub's hook
    (hubside.config.courses) refuses the login before the name is bound, so the name stays free
    for nobody, and a later login of theirs under another name is bound to that one alone."""
    from traitlets.config import Config

    from hubside import config as hub_config

    c = Config()
    c.JupyterHub.load_roles = []
    hub_config.courses(c, {"graders": ["grader-ml-2026"], "roles": []})
    oidc = UnixOIDCAuthenticator(
        config=c,
        names_file=str(tmp_path / "oauth-names.json"),
        username_claim="preferred_username",
        allowed_users={"olivia"},
        allowed_idp_groups={"ml-2026"},
    )
    stranger = authentication("grader-ml-2026", preferred_username="grader-ml-2026", sub="s-stranger")
    with pytest.raises(web.HTTPError) as refused:
        run(oidc.run_post_auth_hook(None, stranger))
    assert refused.value.status_code == 403
    with pytest.raises(FileNotFoundError):
        bindings(oidc)
    run(oidc.run_post_auth_hook(None, authentication("olivia", preferred_username="olivia", sub="s-olivia")))
    assert bindings(oidc) == {"olivia": "s-olivia"}


def test_the_login_s_state_cookie_is_the_hub_s_name_s_alone():
    """__Host-: a page on a server's subdomain cannot set it for the hub (jh_user_subdomains)."""
    from hubside import oauth

    for authenticator in (oauth.UnixOIDCAuthenticator, oauth.UnixGitHubAuthenticator):
        assert authenticator.login_handler is oauth.HostStateLogin
        assert authenticator.callback_handler is oauth.HostStateCallback
    assert oauth.STATE_COOKIE.startswith("__Host-")
