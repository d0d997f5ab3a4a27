"""hub.json: every decision about the hub made once, in Python, from the settings.

The hub's static jupyterhub_config.py (hubside/src/hubside/jupyterhub_config.py) applies it,
one function per concern (hubside.config); root's helper for users' servers
(files/bin/user-server) reads its ``user_servers`` part, which the hub cannot change (the file
is root's). No secret is in it: the hub reads its secrets from files the deploy made on the host.
"""

from __future__ import annotations

import json
from pathlib import Path

from tasks import layout
from tasks.platform import Platform
from tasks.settings import PRIVILEGED_GROUPS, SYSTEM_NAMES, Settings, memory_bytes, pem
from tasks.settings.courses import grader

# Login names from a directory or identity provider that may become Unix accounts: the helper's
# rule (files/bin/user-server), lower-case.
UNIX_NAME_PATTERN = r"^[a-z_][a-z0-9_-]{0,31}$"
# What the idle culler and the deploy's own service may do through the hub's API.
SERVICES = (
    ("idle-culler", "idle_culler.env", ["list:users", "read:users:activity", "read:servers", "delete:servers"]),
    # Groups (jh_groups) and off-boarding (tasks/people.py): not servers' or tokens' admin.
    ("deploy", layout.DEPLOY_TOKEN, ["admin:users", "admin:groups"]),
)


# What a course's staff may do with its grader's server (tasks/courses.py): open it, start and
# stop it, and see it in the hub's pages.
GRADING_SCOPES = ("access:servers", "servers", "read:users:name", "read:users:activity")

# What a person may do in a server they open (jh_sharing; hubside.sharing's authorizer decides in
# each server): read its files and notebooks, or everything its owner may, run code included.
SERVER_READ = "custom:jupyter_server:read:*"
SERVER_EXECUTE = "custom:jupyter_server:execute:*"

# Prometheus reads /hub/metrics with this service's token (jh_monitoring), and nothing else.
METRICS_SERVICE = ("metrics", layout.METRICS_TOKEN, ["read:metrics"])


def services(settings: Settings) -> tuple:
    return (*SERVICES, METRICS_SERVICE) if settings.monitoring else SERVICES


def creates_accounts(settings: Settings) -> bool:
    """Whether people the login lets in get a Unix account at their first start (a directory's or
    an identity provider's people; with PAM every account exists already)."""
    return settings.authenticator != "pam"


def start_slots(settings: Settings, cores: int, memory: int) -> int:
    """Servers that start at once on the hub server (jh_start_slots, or one per core and GiB)."""
    return settings.start_slots or max(1, min(cores, memory // 1024**3))


def hub_data(
    settings: Settings, platform: Platform, uid_min: int, node_addresses: dict[str, str], slots: int = 1
) -> dict:
    """node_addresses: a cluster's Slurm node names -> their addresses (tasks.cluster); slots:
    start_slots' for the host."""
    paths = settings.layout
    return {
        "state_dir": str(paths.state_dir),
        "urls": {
            "bind_url": f"http://{settings.public_ip}:{settings.public_port}{settings.base_url}",
            "hub_bind_url": settings.hub_api_url,
            "subdomain_host": f"https://{settings.domain}" if settings.user_subdomains else None,
        },
        "proxy": {"api_url": layout.PROXY_API_URL, "token_file": "proxy.env"},
        "database": {"url": database_url(settings), "cookie_secret_file": "jupyterhub_cookie_secret"},
        "login": login(settings),
        "servers": {
            "helper": str(paths.script("user-server")),
            "unit_prefix": layout.USER_UNIT_PREFIX,
            "create_accounts": creates_accounts(settings),
            "course_groups": lti_course_groups(settings),
            "activity_interval": settings.activity_interval,
            "ports": list(layout.SERVER_PORTS),
            "start_slots": slots,
            "sockets_dir": str(layout.SERVER_SOCKETS),
            "profiles": profiles(settings),
            "node_addresses": node_addresses,
            # A job's server reaches the hub's API here (nginx, for the nodes alone).
            "job_hub_url": settings.cluster_api_url,
        },
        "services": [
            {"name": name, "token_file": token, "scopes": scopes} for name, token, scopes in services(settings)
        ],
        "monitoring_gate": monitoring_gate(settings),
        "courses": courses(settings),
        "sharing": sharing(settings),
        "user_servers": user_servers(settings, platform, uid_min),
    }


def lti_course_groups(settings: Settings) -> list[str]:
    """The students' groups of the current courses whose students come from the learning platform."""
    return sorted(f"{name}-students" for name, course in settings.current_courses.items() if course.students is None)


def courses(settings: Settings) -> dict:
    """Each current course's staff (<course>-staff) may open and start its grader's server; nobody
    logs in as a grader (jh_courses)."""
    graders = {name: grader(name) for name in settings.courses}
    # With sharing, a server's authorizer asks what each visitor may do there: the staff everything.
    grading = (*GRADING_SCOPES, SERVER_EXECUTE) if settings.sharing else GRADING_SCOPES
    roles = [
        {
            "name": f"{name}-grading",
            "scopes": [f"{scope}!user={graders[name]}" for scope in grading],
            "groups": [f"{name}-staff"],
        }
        for name in settings.current_courses
    ]
    # The current graders are hub users from the hub's start (a role makes them), so that their
    # staff can start their servers before anyone logged in as them, which nobody can.
    current = sorted(graders[name] for name in settings.current_courses)
    if current:
        roles.append({"name": "course-graders", "scopes": ["self"], "users": current})
    return {"graders": sorted(graders.values()), "roles": roles}


def sharing(settings: Settings) -> dict | None:
    """JupyterHub's sharing (jh_sharing): each person shares their own servers, with people and
    groups they may name, read-only (SERVER_READ) or with execution (SERVER_EXECUTE)."""
    if not settings.sharing:
        return None
    return {
        "custom_scopes": {
            SERVER_READ: {"description": "Read the files and notebooks of a server; change and run nothing."},
            SERVER_EXECUTE: {
                "description": "Read, change and run anything in a server, as its owner may.",
                "subscopes": [SERVER_READ],
            },
        },
        # Everyone's own: share their servers, by the names of people and groups; do anything in them.
        "user_scopes": ["self", "shares!user", "read:users:name", "read:groups:name", f"{SERVER_EXECUTE}!user"],
        # What a visitor's token at a server may hold there (!server: that server alone), of what
        # they hold: a share's level, or an admin's (admin:servers) whole use of it.
        "oauth_scopes": [
            "access:servers!server",
            f"{SERVER_READ}!server",
            f"{SERVER_EXECUTE}!server",
            "admin:servers!server",
        ],
        # The server's own token (JUPYTERHUB_API_TOKEN, which every process of it holds): its
        # activity, as without sharing, and no change to shares. Anything running there (a visitor with
        # execution, a course's staff in its grader's server) could otherwise share the server on and
        # keep it after their own share ends; people share with a token of theirs (docs/sharing.md).
        # It reads the server's shares (hubside.sharing: the browser's tokens carry no share's level).
        "server_token_scopes": [
            "users:activity!user",
            "access:servers!server",
            f"{SERVER_EXECUTE}!server",
            "read:shares!server",
        ],
    }


def monitoring_gate(settings: Settings) -> dict | None:
    """The hub's service that lets its admins alone see Prometheus and Alertmanager through nginx."""
    if not (settings.monitoring and settings.domain):
        return None
    return {
        "name": layout.MONITORING_SERVICE_NAME,
        "prefix": monitoring_prefix(settings),
        "socket": str(layout.MONITORING_GATE_SOCKET),
    }


def monitoring_prefix(settings: Settings) -> str:
    return f"{settings.base_url}services/{layout.MONITORING_SERVICE_NAME}/"


def database_url(settings: Settings) -> str:
    if settings.postgresql_database:
        # The hub server's PostgreSQL, on its Unix socket, as the hub's account (peer authentication).
        return f"postgresql+psycopg:///{settings.postgresql_database}?host={layout.POSTGRESQL_SOCKET_DIR}"
    return f"sqlite:///{settings.layout.database}"


def login(settings: Settings) -> dict:
    paths, kind = settings.layout, settings.authenticator
    present = sorted(u.name for u in settings.present_users)
    # Names bound to one account of an OAuth provider: its claims are the person's to edit.
    bound = {u.name: u.account for u in settings.present_users if u.account}
    # PAM lets in the users group; sign-up lets in whom an admin approves; LDAP lets in jh_users
    # besides its groups; OAuth and LTI the names bound to their accounts besides their groups or courses.
    allowed = present if kind == "ldap" else sorted(bound) if settings.bound_login else None
    options: dict[str, object]
    if kind == "pam":
        options = {"service": layout.PAM_SERVICE_NAME, "allowed_groups": [settings.users_group]}
    elif kind == "native":
        options = {"username_pattern": UNIX_NAME_PATTERN}
    elif kind == "ldap":
        ldap = settings.ldap
        options = {
            "server": ldap.server,
            "port": ldap.server_port,
            "tls": ldap.tls,
            "bind_dn_template": ldap.bind_dn_template,
            "allowed_groups": list(ldap.allowed_groups),
            "ca_bundle": str(layout.SYSTEM_CA_BUNDLE),
            "username_pattern": UNIX_NAME_PATTERN,
        }
    elif kind == "lti13":
        lti = settings.lti13
        options = {
            "issuer": lti.issuer,
            "client_id": lti.client_id,
            "deployment_ids": list(lti.deployment_ids),
            "authorization_endpoint": str(lti.authorization_endpoint),
            "jwks_url": str(lti.jwks_url),
            "token_url": str(lti.token_url),
            # The public half only: the private key is root's (tasks/logins.py), not the hub's.
            "tool_jwk": pem.public_jwk(Path(lti.tool_key_file)),
            "username_claim": lti.username_claim,
            "courses": dict(lti.courses),
            "courses_file": str(paths.state_dir / layout.LTI_COURSES),
            "nonces_file": str(paths.state_dir / layout.LTI_NONCES),
            "names_file": str(paths.state_dir / layout.OAUTH_NAMES),
            # The platform's accounts are its sub within its issuer.
            "bound_names": {name: f"{lti.issuer} {account}" for name, account in bound.items()},
        }
    else:
        options = {
            "client_id": settings.oauth.client_id,
            "client_secret_file": str(paths.oauth_client_secret),
            "callback_url": f"https://{settings.domain}{settings.base_url}hub/oauth_callback",
            "names_file": str(paths.state_dir / layout.OAUTH_NAMES),
            "bound_names": bound,
        }
        if settings.oidc:
            oidc = settings.oidc
            options |= {
                "endpoints_file": str(paths.oidc_endpoints(str(oidc.issuer))),
                "scopes": list(oidc.scopes),
                "username_claim": oidc.username_claim,
                "groups_claim": oidc.groups_claim,
                "allowed_groups": list(oidc.allowed_groups),
            }
        else:
            options["allowed_organizations"] = list(settings.github.allowed_organizations)
    return {"kind": kind, "options": options, "allowed_users": allowed, "admin_users": sorted(settings.admin_users)}


def profiles(settings: Settings) -> list[dict]:
    """The spawn page's choices (a cluster's): the hub names a profile by its key, root's part
    below says what size a job of that key gets."""
    if not settings.cluster:
        return []
    return [{"key": p.key, "display": p.display, "where": p.where} for p in settings.spawn_profiles]


def user_servers(settings: Settings, platform: Platform, uid_min: int) -> dict:
    """What root's helper (files/bin/user-server) needs that the hub must not be able to change."""

    def limits(memory, cpu, tasks) -> dict:
        values = {"memory": memory_bytes(memory) if memory else None, "cpu": cpu, "tasks": tasks}
        return {kind: value for kind, value in values.items() if value is not None}

    paths = settings.layout
    config = {
        "hub_user": settings.hub_user,
        "users_group": settings.users_group,
        "privileged_groups": sorted(PRIVILEGED_GROUPS),
        "min_uid": uid_min,
        "server_env_link": str(paths.venv),
        "slice": layout.USERS_SLICE,
        "unit_prefix": layout.USER_UNIT_PREFIX,
        "env_dir": str(layout.USER_ENV_DIR),
        "server_ports": list(layout.SERVER_PORTS),
        "sockets_dir": str(layout.SERVER_SOCKETS),
        # How long a server may take to listen (a class arriving at once shares the CPU).
        "listen_timeout": 110,
        # The learning platform's courses' students join their Unix groups at each start; graders stay.
        "course_groups": lti_course_groups(settings),
        "graders": sorted(grader(name) for name in settings.courses),
        # With a directory's logins, its new members get accounts at their first start (in homes/).
        "create_accounts": creates_accounts(settings),
        "homes": str(layout.HOMES),
        "reserved_names": sorted(SYSTEM_NAMES | PRIVILEGED_GROUPS | {settings.hub_user, settings.users_group}),
        # Kernel specs outside the server venv, NLTK data shared by every kernel; how often the
        # server tells the hub it is in use (the culler decides on that).
        "environment": {
            "JUPYTER_PATH": str(paths.jupyter_data_dir),
            "NLTK_DATA": str(paths.nltk_data),
            "JUPYTERHUB_ACTIVITY_INTERVAL": str(settings.activity_interval),
            # Where a job's server picks its port on a node (hubside-job-server).
            "JHD_SERVER_PORTS": f"{layout.SERVER_PORTS[0]}-{layout.SERVER_PORTS[1] - 1}",
        },
        "memory_property": platform.memory_property,
        "oom_policy": platform.oom_policy,
        "limits": {
            "default": limits(settings.user_memory_limit, settings.user_cpu_limit, settings.user_tasks_limit),
            "groups": {
                group: limits(limit.memory, limit.cpu, limit.tasks) for group, limit in settings.group_limits.items()
            },
        },
    }
    if settings.cluster:
        # Users' servers as Slurm jobs (submit): each profile's size, by its key (the hub names one).
        config["job_name_prefix"] = "jupyterhub-"
        config["job_log"] = layout.SLURM_JOB_LOG
        config["profiles"] = {
            profile.key: {
                "partition": profile.partition or settings.partitions[0],
                "cpus": profile.cpus,
                "memory_mb": profile.memory_mb,
                "minutes": profile.minutes,
            }
            for profile in settings.spawn_profiles
            if profile.where == "cluster"
        }
    return config


def hub_json(
    settings: Settings, platform: Platform, uid_min: int, node_addresses: dict[str, str], slots: int = 1
) -> str:
    data = hub_data(settings, platform, uid_min, node_addresses, slots)
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
