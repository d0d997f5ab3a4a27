"""The hub's configuration, applied from the data the deploy writes: one small function per concern.

The deploy decides everything once, in Python, from the settings (tasks/hub_data.py) and writes
it as hub.json beside jupyterhub_config.py (both root's). jupyterhub_config.py is the same on every
host: it calls apply(). Secrets are read here, from the files the deploy generated on the host;
hub.json holds none.
"""

from __future__ import annotations

import hashlib
import json
import re
import ssl
import sys
from pathlib import Path

import jupyterhub
from tornado import web

from hubside import group_shares, jobs

SPAWNER = "hubside.spawner.ServerSpawner"
DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
OAUTH_CLASSES = {"oidc": "hubside.oauth.UnixOIDCAuthenticator", "github": "hubside.oauth.UnixGitHubAuthenticator"}


def apply(c, config_file: str) -> dict:
    """Configure the hub (c) from the hub.json beside config_file; returns the data."""
    data = json.loads(Path(config_file).with_name("hub.json").read_text())
    state = Path(data["state_dir"])
    urls(c, data["urls"])
    proxy(c, data["proxy"], state)
    database(c, data["database"], state)
    login(c, data["login"])
    servers(c, data["servers"])
    services(c, data["services"], state)
    courses(c, data["courses"])
    sharing(c, data.get("sharing"))
    monitoring_gate(c, data["monitoring_gate"])
    return data


def secret(state: Path, name: str) -> str:
    """A secret the deploy generated once on this host (0600, the hub user's): its value."""
    return (state / name).read_text().strip().partition("=")[2]


def urls(c, urls: dict) -> None:
    """Browsers reach the proxy at bind_url (through nginx with a domain); the hub listens at
    hub_bind_url, on loopback (a cluster's nodes reach its API through nginx: ServerSpawner)."""
    c.JupyterHub.bind_url = urls["bind_url"]
    c.JupyterHub.hub_bind_url = urls["hub_bind_url"]
    if urls.get("subdomain_host"):
        per_user_origins(c, urls["subdomain_host"])


def per_user_origins(c, subdomain_host: str) -> None:
    """Each server on an origin of its own, <label>.<domain> (subdomain). The hub's login cookie gets
    the __Host- prefix, which a server's page cannot set from its subdomain for the hub's;
    JupyterHub recommends it with subdomains."""
    c.JupyterHub.subdomain_host = subdomain_host
    c.JupyterHub.cookie_host_prefix_enabled = True
    c.JupyterHub.subdomain_hook = subdomain


def subdomain(name: str, domain: str, kind: str) -> str:
    """A person's server's host: their name when it is a DNS label of at most 32 characters, else
    u-<160 bits of its SHA-256> (42 characters: no name of 32 or fewer looks like one). JupyterHub's
    own fallback keeps 28 bits of hash, few enough that someone can pick a name that lands on
    another's origin. Other kinds (services) get <kind>-<hash>."""
    if kind == "user" and len(name) <= 32 and DNS_LABEL.fullmatch(name) and "--" not in name:
        return f"{name}.{domain}"
    digest = hashlib.sha256(name.encode()).hexdigest()[:40]
    return f"{'u' if kind == 'user' else kind}-{digest}.{domain}"


def proxy(c, proxy: dict, state: Path) -> None:
    """The proxy runs in a unit of its own: routes outlive the hub's restarts."""
    c.ConfigurableHTTPProxy.should_start = False
    c.ConfigurableHTTPProxy.api_url = proxy["api_url"]
    c.ConfigurableHTTPProxy.auth_token = secret(state, proxy["token_file"])


def database(c, database: dict, state: Path) -> None:
    c.JupyterHub.db_url = database["url"]
    c.JupyterHub.cookie_secret_file = str(state / database["cookie_secret_file"])


def login(c, login: dict) -> None:
    """Who may log in, by the kind of login the settings chose."""
    kind, options = login["kind"], login["options"]
    LOGINS[kind](c, options)
    if login.get("allowed_users") is not None:
        c.Authenticator.allowed_users = set(login["allowed_users"])
    c.Authenticator.admin_users = set(login["admin_users"])
    # Who may log in is decided at each login: someone a group let in once and has left since, or
    # no longer listed, is not let in again for being in the hub's database.
    c.Authenticator.allow_existing_users = False


def pam(c, options: dict) -> None:
    """Unix accounts, checked through PAM by the unprivileged hub user."""
    c.JupyterHub.authenticator_class = "pam"
    c.PAMAuthenticator.service = options["service"]
    c.PAMAuthenticator.open_sessions = False
    c.PAMAuthenticator.allowed_groups = set(options["allowed_groups"])


def ldap(c, options: dict) -> None:
    """The hub binds as the user, over TLS checked against the system's CAs and the server's
    name (ldap3 checks neither unless told). Login names are Unix names."""
    c.JupyterHub.authenticator_class = "ldapauthenticator.LDAPAuthenticator"
    c.LDAPAuthenticator.server_address = options["server"]
    c.LDAPAuthenticator.server_port = options["port"]
    c.LDAPAuthenticator.tls_strategy = "on_connect" if options["tls"] == "ldaps" else "before_bind"
    c.LDAPAuthenticator.tls_kwargs = {"validate": ssl.CERT_REQUIRED, "ca_certs_file": options["ca_bundle"]}
    c.LDAPAuthenticator.bind_dn_template = [options["bind_dn_template"]]
    c.LDAPAuthenticator.allowed_groups = options["allowed_groups"]
    c.LDAPAuthenticator.valid_username_regex = options["username_pattern"]


def oidc(c, options: dict) -> None:
    """OpenID Connect: the code flow with PKCE, at the endpoints the deploy read from the issuer's
    discovery document; members of the allowed groups (the groups claim) get in."""
    endpoints = json.loads(Path(options["endpoints_file"]).read_text())
    oauth(c, "oidc", options)
    c.UnixOIDCAuthenticator.authorize_url = endpoints["authorization_endpoint"]
    c.UnixOIDCAuthenticator.token_url = endpoints["token_endpoint"]
    c.UnixOIDCAuthenticator.userdata_url = endpoints["userinfo_endpoint"]
    c.UnixOIDCAuthenticator.enable_pkce = True
    c.UnixOIDCAuthenticator.scope = options["scopes"]
    c.UnixOIDCAuthenticator.username_claim = options["username_claim"]
    c.UnixOIDCAuthenticator.groups_claim = options["groups_claim"]
    c.UnixOIDCAuthenticator.allowed_idp_groups = set(options["allowed_groups"])
    c.UnixOIDCAuthenticator.login_service = "your institution's login"


def github(c, options: dict) -> None:
    """GitHub: members of the allowed organizations (read:org)."""
    oauth(c, "github", options)
    c.UnixGitHubAuthenticator.allowed_organizations = set(options["allowed_organizations"])
    c.UnixGitHubAuthenticator.scope = ["read:org"]


def oauth(c, kind: str, options: dict) -> None:
    """What OpenID Connect and GitHub share: the client, its secret (root's file the hub may read)
    and the file that binds each name to one account of the provider."""
    c.JupyterHub.authenticator_class = OAUTH_CLASSES[kind]
    section = c[OAUTH_CLASSES[kind].rpartition(".")[2]]
    section.client_id = options["client_id"]
    section.client_secret = Path(options["client_secret_file"]).read_text().strip()
    section.oauth_callback_url = options["callback_url"]
    section.names_file = options["names_file"]
    section.bound_names = options["bound_names"]


def lti13(c, options: dict) -> None:
    """LTI 1.3 launches from the learning platform (hubside.lti): its issuer, the tool's client id
    and deployments there; the launch's course puts its person in the course's groups. nginx is
    in front (jh_domain): the URLs the hub gives the platform are https."""
    c.JupyterHub.authenticator_class = "hubside.lti.UnixLTIAuthenticator"
    section = c.UnixLTIAuthenticator
    section.issuer = options["issuer"]
    section.client_id = {options["client_id"]}
    section.deployment_ids = set(options["deployment_ids"])
    section.authorize_url = options["authorization_endpoint"]
    section.jwks_endpoint = options["jwks_url"]
    section.uri_scheme = "https"
    section.username_claim = options["username_claim"]
    section.courses = options["courses"]
    section.courses_file = options["courses_file"]
    section.nonces_file = options["nonces_file"]
    section.tool_jwk = options["tool_jwk"]
    section.names_file = options["names_file"]
    section.bound_names = options["bound_names"]


def native(c, options: dict) -> None:
    """Sign-up at /hub/signup; an admin approves each newcomer at /hub/authorize (admins are
    approved at their own sign-up). Passwords stay in the hub's database (bcrypt)."""
    c.JupyterHub.authenticator_class = "native"
    c.NativeAuthenticator.open_signup = False
    c.NativeAuthenticator.minimum_password_length = 10
    c.NativeAuthenticator.check_common_password = True
    c.NativeAuthenticator.allowed_failed_logins = 5
    c.NativeAuthenticator.seconds_before_next_try = 60
    # The approval is the gate.
    c.Authenticator.allow_all = True
    c.Authenticator.username_pattern = options["username_pattern"]


LOGINS = {"pam": pam, "ldap": ldap, "oidc": oidc, "github": github, "lti13": lti13, "native": native}


def servers(c, servers: dict) -> None:
    """Each user's server is a systemd unit of its own (or a Slurm job), started as the user by
    root's helper with the user's limits; it keeps running while the hub restarts."""
    c.JupyterHub.spawner_class = SPAWNER
    c.JupyterHub.cleanup_servers = False
    c.ServerSpawner.helper = servers["helper"]
    c.ServerSpawner.unit_prefix = servers["unit_prefix"]
    c.ServerSpawner.create_accounts = servers["create_accounts"]
    c.ServerSpawner.course_groups = servers["course_groups"]
    c.ServerSpawner.ports = servers["ports"]
    if jupyterhub.version_info[0] >= 6:
        # Servers on Unix sockets: JupyterHub 6 reaches them (its HTTP client), the proxy too.
        c.ServerSpawner.sockets_dir = servers["sockets_dir"]
        c.JupyterHub.proxy_class = "hubside.proxy.UnixSocketProxy"
    c.Spawner.default_url = "/lab"
    # A class arriving at once: servers start a few at a time, first come first served
    # (hubside.admission), everyone else waiting on the progress page, however many they are.
    # start_timeout covers the wait for a turn; each start, held to its CPU limit, has 120 s.
    c.ServerSpawner.start_slots = servers["start_slots"]
    c.JupyterHub.concurrent_spawn_limit = 0
    c.Spawner.start_timeout = 900
    c.ServerSpawner.server_start_timeout = 120
    c.Spawner.http_timeout = 90
    # The idle culler decides on the activity the hub knows: the proxy's routes are read, and
    # each server reports (JUPYTERHUB_ACTIVITY_INTERVAL, from root's part of hub.json), this often.
    c.JupyterHub.last_activity_interval = servers["activity_interval"]
    if servers["profiles"]:
        cluster(c, servers)


def cluster(c, servers: dict) -> None:
    """Users pick where their server runs; a job's server reports its port (hubside.jobs)."""
    c.ServerSpawner.profiles = servers["profiles"]
    c.ServerSpawner.node_addresses = servers["node_addresses"]
    c.ServerSpawner.job_hub_url = servers["job_hub_url"]
    jobs.register()


def services(c, services: list, state: Path) -> None:
    """The idle culler and the deploy itself, each with only the scopes it needs."""
    c.JupyterHub.services = [{"name": s["name"], "api_token": secret(state, s["token_file"])} for s in services]
    c.JupyterHub.load_roles = [{"name": s["name"], "scopes": s["scopes"], "services": [s["name"]]} for s in services]


def courses(c, courses: dict) -> None:
    """Each course's staff open its grader's server (roles on <course>-staff, which the deploy or
    the launches fill); nobody logs in as a grader, whatever the login says."""
    c.JupyterHub.load_roles = [*c.JupyterHub.load_roles, *courses["roles"]]
    graders = frozenset(courses["graders"])

    def no_graders(authenticator, handler, authentication):
        if authentication and authentication["name"] in graders:
            authenticator.log.warning("Refused %s: a course's grader account", authentication["name"])
            raise web.HTTPError(403, "This is a course's grader account: its staff open it from the hub.")
        return authentication

    if graders:
        c.Authenticator.post_auth_hook = no_graders


def sharing(c, sharing: dict | None) -> None:
    """JupyterHub's sharing (jh_sharing, docs/sharing.md): each person shares their servers with
    people and groups, read-only or with execution. Every server then asks its visitors' scopes what
    they may do there (hubside.sharing.ShareAuthorizer, in the server venv's config): a share names
    its level; the owner, the admins and a course's staff do anything."""
    if not sharing:
        return
    group_shares.install()
    c.JupyterHub.custom_scopes = sharing["custom_scopes"]
    c.JupyterHub.load_roles = [*c.JupyterHub.load_roles, {"name": "user", "scopes": sharing["user_scopes"]}]
    c.Spawner.oauth_client_allowed_scopes = sharing["oauth_scopes"]
    c.Spawner.server_token_scopes = sharing["server_token_scopes"]


def monitoring_gate(c, gate: dict | None) -> None:
    """Prometheus's and Alertmanager's pages for the hub's admins (jh_monitoring with jh_domain): a
    service the hub starts (hubside.monitoring_gate) that nginx asks before each request, signing
    people in through the hub's OAuth. It needs no scope of its own: the hub answers it about each
    person's token, and only the admin role holds access to it."""
    if not gate:
        return
    name, prefix = gate["name"], gate["prefix"]
    command = [sys.executable, "-m", "hubside.monitoring_gate", "--name", name, "--prefix", prefix]
    c.JupyterHub.services.append(
        {
            "name": name,
            "command": [*command, "--socket", gate["socket"]],
            "oauth_client_id": f"service-{name}",
            "oauth_redirect_uri": f"{prefix}oauth_callback",
            "oauth_no_confirm": True,
        }
    )
