"""Sharing and real-time collaboration (jh_sharing, jh_collaboration): refused without per-user
origins, the hub's data for the shares, and what every user's server loads from the server venv
(the collaboration's extensions on or off, the shares' authorizer)."""

from __future__ import annotations

import re

import pytest

from tasks import hub_data, server_config
from tasks.platform import Platform
from tasks.settings import Settings, SettingsError
from tasks.settings.constants import SERVER_RELEASES

NOBLE = Platform("Ubuntu", "24.04", "3.12", "3.12")
SUBDOMAINS = {"jh_domain": "hub.example.org", "jh_certificate": "selfsigned", "jh_user_subdomains": True}
PEOPLE = {
    "jh_users": [{"name": name} for name in ("prof", "alice", "bob")],
    "jh_groups": {"pairs": ["alice", "bob"]},
    "jh_courses": {"ml-2026": {"instructors": ["prof"], "students": "pairs"}},
}


@pytest.mark.parametrize("setting", ["jh_sharing", "jh_collaboration"])
def test_sharing_and_collaboration_need_per_user_origins(setting):
    with pytest.raises(SettingsError) as refused:
        Settings.from_data({"jh_domain": "hub.example.org", setting: True})
    message = str(refused.value)
    assert f"{setting} needs jh_user_subdomains = True" in message
    # It says why: a page of a user's server runs with the visitor's session.
    assert "visitor's session" in message and "per-user subdomains" in message
    assert getattr(Settings.from_data({**SUBDOMAINS, setting: True}), setting[3:]) is True


def test_sharing_and_collaboration_are_taken_with_a_cluster():
    """Nothing of either depends on where a server runs: a job's server loads the same venv."""
    cluster = {"jh_cluster": True, "jh_cluster_address": "10.0.0.1", "jh_firewall": True}
    settings = Settings.from_data({**SUBDOMAINS, **cluster, "jh_sharing": True, "jh_collaboration": True})
    assert settings.sharing and settings.collaboration


def test_without_sharing_the_hub_is_as_before():
    settings = Settings.from_data(PEOPLE)
    data = hub_data.hub_data(settings, NOBLE, 1000, {})
    assert data["sharing"] is None
    (grading, _graders) = data["courses"]["roles"]
    assert not any(scope.startswith("custom:") for scope in grading["scopes"])


def test_with_sharing_everyone_shares_their_own_servers_at_two_levels():
    settings = Settings.from_data({**SUBDOMAINS, **PEOPLE, "jh_sharing": True})
    data = hub_data.hub_data(settings, NOBLE, 1000, {})
    sharing = data["sharing"]
    assert set(sharing["custom_scopes"]) == {hub_data.SERVER_READ, hub_data.SERVER_EXECUTE}
    assert sharing["custom_scopes"][hub_data.SERVER_EXECUTE]["subscopes"] == [hub_data.SERVER_READ]
    # Their own servers' shares, by the names of people and groups; 'self' kept.
    assert {"self", "shares!user", "read:users:name", "read:groups:name"} <= set(sharing["user_scopes"])
    assert f"{hub_data.SERVER_EXECUTE}!user" in sharing["user_scopes"]
    # A visitor's token at a server holds that server's scopes alone.
    assert all(scope.endswith("!server") for scope in sharing["oauth_scopes"])
    assert all(
        scope.endswith(("!server", "!user")) or scope.startswith("read:") for scope in sharing["server_token_scopes"]
    )
    # A course's staff keep their whole use of its grader's server.
    grading = data["courses"]["roles"][0]
    assert f"{hub_data.SERVER_EXECUTE}!user=grader-ml-2026" in grading["scopes"]


@pytest.mark.parametrize("collaboration", [False, True])
def test_the_servers_load_the_collaboration_only_when_it_is_on(collaboration):
    data = {**SUBDOMAINS, "jh_collaboration": collaboration}
    settings = Settings.from_data(data)
    config = server_config.server_config(settings)
    assert set(config) == {"ServerApp"}
    app = config["ServerApp"]
    assert app["jpserver_extensions"] == {"jupyter_server_ydoc": collaboration, "jupyter_server_fileid": collaboration}
    assert "authorizer_class" not in app
    disabled = server_config.page_config(settings)["disabledExtensions"]
    assert disabled == {
        "@jupyter/collaboration-extension": not collaboration,
        "@jupyter/docprovider-extension": not collaboration,
    }


def test_with_sharing_the_servers_load_the_shares_authorizer():
    settings = Settings.from_data({**SUBDOMAINS, "jh_sharing": True})
    config = server_config.server_config(settings)
    app = config["ServerApp"]
    assert app["authorizer_class"] == "hubside.sharing.ShareAuthorizer"
    # A withdrawn share stops working within half a minute (JupyterHub's cache: five).
    assert config["HubOAuth"] == {"cache_max_age": 30}
    # Its guard of every handler on; the collaboration's extensions off.
    assert app["jpserver_extensions"] == {
        "jupyter_server_ydoc": False,
        "jupyter_server_fileid": False,
        "hubside.sharing": True,
    }


def test_every_server_lock_holds_the_collaboration_the_servers_config_names():
    """The extensions server_config turns on or off are those of the locked jupyter-collaboration."""
    locks = sorted(SERVER_RELEASES.glob("*/py3.*.txt"))
    assert locks
    for lock in locks:
        text = lock.read_text()
        for package in ("jupyter-collaboration", "jupyter-server-ydoc", "jupyter-server-fileid", "jupyter-docprovider"):
            assert re.search(rf"^{package}==", text, re.MULTILINE), (lock, package)
