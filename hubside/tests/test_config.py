"""The hub's configuration, loaded by JupyterHub itself from the static config file and hub.json of
each kind the deploy writes; the classes it names are the real ones of the server venv's lock."""

from __future__ import annotations

import re
import ssl

import pytest
from jupyterhub.apihandlers import default_handlers
from jupyterhub.app import JupyterHub
from traitlets.config.loader import PyFileConfigLoader

from hubside import jobs
from hubside.spawner import ServerSpawner


def load(config_file):
    app = JupyterHub()
    app.load_config_file(str(config_file))
    return app


def test_a_pam_hub(hub_files):
    app = load(hub_files("pam"))
    c = app.config
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8000/"
    assert c.JupyterHub.hub_bind_url == "http://127.0.0.1:8081"
    assert "hub_connect_url" not in c.JupyterHub and "subdomain_host" not in c.JupyterHub
    # The proxy is a unit of its own; the hub leaves it and users' servers running when it stops.
    assert c.ConfigurableHTTPProxy.should_start is False
    assert c.ConfigurableHTTPProxy.auth_token == "proxy.env-secret"
    assert c.JupyterHub.cleanup_servers is False
    assert c.JupyterHub.db_url == "sqlite:////opt/jupyter/state/jupyterhub.sqlite"
    assert c.JupyterHub.cookie_secret_file.endswith("/state/jupyterhub_cookie_secret")
    assert app.authenticator_class.__name__ == "PAMAuthenticator"
    assert c.PAMAuthenticator.allowed_groups == {"students"}
    assert c.PAMAuthenticator.service == "jupyterhub"
    assert c.Authenticator.admin_users == {"alice"}
    assert "allowed_users" not in c.Authenticator
    assert app.spawner_class is ServerSpawner
    assert c.ServerSpawner.helper == "/opt/jupyter/libexec/user-server"
    assert c.ServerSpawner.create_accounts is False
    assert "profiles" not in c.ServerSpawner
    # A class arriving: in turns (the samples' host has one slot), no refusal for being many.
    assert c.ServerSpawner.start_slots == 1 and app.concurrent_spawn_limit == 0
    assert c.Spawner.start_timeout > c.ServerSpawner.server_start_timeout
    # JupyterHub 6 (this lock): servers on Unix sockets, and the proxy that reaches them.
    assert c.ServerSpawner.sockets_dir == "/run/jupyterhub-servers"
    assert app.proxy_class.__name__ == "UnixSocketProxy"
    assert c.JupyterHub.last_activity_interval == 300
    assert c.JupyterHub.services == [
        {"name": "idle-culler", "api_token": "idle_culler.env-secret"},
        {"name": "deploy", "api_token": "deploy.env-secret"},
    ]
    culler, deploy = c.JupyterHub.load_roles
    assert "admin" not in str(culler["scopes"]) and "delete:servers" in culler["scopes"]
    # Groups and off-boarding; not servers' or tokens' admin.
    assert deploy == {"name": "deploy", "scopes": ["admin:users", "admin:groups"], "services": ["deploy"]}


def test_an_ldap_hub_checks_the_directory_s_certificate(hub_files):
    app = load(hub_files("ldap"))
    c = app.config
    assert app.authenticator_class.__name__ == "LDAPAuthenticator"
    assert c.LDAPAuthenticator.tls_kwargs == {
        "validate": ssl.CERT_REQUIRED,
        "ca_certs_file": "/etc/ssl/certs/ca-certificates.crt",
    }
    assert c.LDAPAuthenticator.tls_strategy == "before_bind"
    assert c.LDAPAuthenticator.server_port == 389
    assert c.LDAPAuthenticator.bind_dn_template == ["uid={username},ou=people,dc=example,dc=org"]
    assert c.LDAPAuthenticator.valid_username_regex == r"^[a-z_][a-z0-9_-]{0,31}$"
    assert c.Authenticator.allowed_users == {"alice", "bob"}
    assert c.Authenticator.allow_existing_users is False
    # Its people get accounts at their first start.
    assert c.ServerSpawner.create_accounts is True
    authenticator = app.authenticator_class(config=c)
    assert authenticator.allowed_groups == ["cn=ml-2026,ou=groups,dc=example,dc=org"]


@pytest.mark.parametrize("kind", ["oidc", "github"])
def test_an_oauth_hub_reads_its_secret_and_endpoints_from_the_host(hub_files, kind):
    app = load(hub_files(kind))
    authenticator = app.authenticator_class(config=app.config)
    assert type(authenticator).__module__ == "hubside.oauth"
    assert authenticator.client_secret == "s3cret"
    assert authenticator.oauth_callback_url == "https://hub.example.org/hub/oauth_callback"
    assert authenticator.names_file.endswith("/state/oauth-names.json")
    # Listed names let in by name are the ones bound to their account; bob needs a group.
    assert authenticator.bound_names == {"alice": "sub-of-alice"}
    assert authenticator.allowed_users == {"alice"}
    assert authenticator.admin_users == {"alice"}
    assert authenticator.allow_existing_users is False
    if kind == "oidc":
        assert authenticator.authorize_url == "https://login.example.org/auth"
        assert authenticator.userdata_url == "https://login.example.org/userinfo"
        assert authenticator.enable_pkce is True
        assert authenticator.allowed_idp_groups == {"ml-2026"}
        assert authenticator.username_claim == "preferred_username"
    else:
        assert authenticator.allowed_organizations == {"my-lab"}


def test_an_lti_hub_takes_launches_of_its_platform_and_courses(hub_files):
    app = load(hub_files("lti13"))
    authenticator = app.authenticator_class(config=app.config)
    assert type(authenticator).__name__ == "UnixLTIAuthenticator"
    assert authenticator.issuer == "https://lms.example.org"
    assert authenticator.client_id == {"tool-1"} and authenticator.deployment_ids == {"dep-1"}
    assert authenticator.authorize_url == "https://lms.example.org/authorize"
    assert authenticator.jwks_endpoint == "https://lms.example.org/jwks"
    # Behind nginx: the URLs it gives the platform are https, whatever the hub's own request was.
    assert authenticator.uri_scheme == "https"
    assert authenticator.courses == {"ctx-ml": "ml-2026", "ctx-ml-b": "ml-2026"}
    assert authenticator.username_claim == "custom_username"
    assert authenticator.names_file.endswith("/state/oauth-names.json")
    assert authenticator.courses_file.endswith("/state/lti-courses.json")
    assert authenticator.bound_names == {"prof": "https://lms.example.org sub-prof"}
    assert authenticator.allowed_users == {"prof"} and authenticator.admin_users == {"prof"}
    assert authenticator.allow_all is False and authenticator.allow_existing_users is False
    assert authenticator.tool_jwk["kty"] == "RSA" and "d" not in authenticator.tool_jwk
    paths = [path for path, *_ in authenticator.get_handlers(app)]
    # Not ltiauthenticator's public /lti13/config, which advertises more scopes than the tool uses.
    assert paths == ["lti13/oauth_login", "lti13/oauth_callback", "lti13/jwks"]
    assert app.config.ServerSpawner.create_accounts is True


def test_a_sign_up_hub(hub_files):
    """NativeAuthenticator is in JupyterHub 5's lock only: the configuration as traitlets reads it."""
    config_file = hub_files("native")
    c = PyFileConfigLoader(config_file.name, str(config_file.parent)).load_config()
    assert c.JupyterHub.authenticator_class == "native"
    assert c.NativeAuthenticator.open_signup is False
    assert c.NativeAuthenticator.minimum_password_length == 10
    assert c.Authenticator.allow_all is True
    assert c.Authenticator.username_pattern == r"^[a-z_][a-z0-9_-]{0,31}$"


def test_a_postgresql_hub_uses_the_local_socket(hub_files):
    c = load(hub_files("postgresql")).config
    assert c.JupyterHub.db_url == "postgresql+psycopg:///jupyterhub?host=/var/run/postgresql"


def test_a_cluster_hub_offers_profiles_and_takes_job_ports_only_through_its_own_handler(hub_files):
    config_file = hub_files("cluster")
    c = load(config_file).config
    # The hub listens on loopback; a job's server reaches its API through nginx on the cluster's network.
    assert c.JupyterHub.hub_bind_url == "http://127.0.0.1:8081" and "hub_connect_url" not in c.JupyterHub
    assert c.ServerSpawner.job_hub_url == "http://10.0.0.1:8081"
    assert c.ServerSpawner.profiles == [
        {"display": "On the hub server", "key": "hub", "where": "hub"},
        {"display": "Cluster: 1 CPU, 2 GB, 2 h", "key": "small", "where": "cluster"},
    ]
    assert c.ServerSpawner.node_addresses == {"node1": "10.0.0.11", "node2": "10.0.0.12"}
    handlers = [handler for path, handler, *_ in default_handlers if "batchspawner" in path or path == jobs.PATH]
    assert handlers == [jobs.JobPortHandler]
    # Configured twice (a reload), registered once.
    load(config_file)
    assert sum(1 for path, *_ in default_handlers if path == jobs.PATH) == 1


def test_nothing_imports_batchspawner():
    import sys

    assert "batchspawner" not in sys.modules and "wrapspawner" not in sys.modules


def test_per_user_origins_put_each_server_on_its_own_name(hub_files):
    """jh_user_subdomains: the servers on <name>.<domain>, with JupyterHub's own escaping of names that are
    not DNS labels, and the hub's login cookie __Host- prefixed (a server's page cannot toss one)."""
    app = load(hub_files("subdomains"))
    assert app.subdomain_host == "https://hub.example.org"
    assert app.cookie_host_prefix_enabled is True
    app.init_hub()
    assert app.hub.cookie_name.startswith("__Host-")
    assert app.hub_routespec == "/"
    hook = app.subdomain_hook
    assert hook("alice", "hub.example.org", "user") == "alice.hub.example.org"
    escaped = hook("a_b", "hub.example.org", "user")
    assert re.fullmatch(r"u-[0-9a-f]{40}\.hub\.example\.org", escaped)
    # JupyterHub's own escaping puts these two on one origin (28 bits of hash); here they differ.
    assert hook("mariecur_acyjlzb", "hub.example.org", "user") != hook("marie_curie", "hub.example.org", "user")
    assert hook("ab--cd", "h.org", "user").startswith("u-") and hook("x" * 33, "h.org", "user").startswith("u-")
