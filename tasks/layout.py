"""Where the deploy puts things on a host: the one owner of paths, unit names, file names and ports.

Tasks, templates, the day-2 entry points and the end-to-end tests read them from here; the
shipped scripts that handle the hub's state read them from ``libexec/layout.env``, which the
deploy writes from here (``layout_env``). Paths below the install root and the conda prefix
follow the settings (``settings.layout``); the rest are fixed.

Ownership, which the privilege boundary rests on (docs/security.md):
- root owns the install root and everything in it but ``state/``;
- the hub user owns ``state/`` and everything in it: root never writes, chowns or
  deletes below it (work there is done as the hub user).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tasks.platform import Platform
    from tasks.settings import Settings

# systemd
UNIT_DIR = PurePosixPath("/etc/systemd/system")
HUB_SERVICE = "jupyterhub.service"
# configurable-http-proxy in a unit of its own: routes outlive hub restarts.
PROXY_SERVICE = "jupyterhub-proxy.service"
CULLER_SERVICE = "jupyterhub-idle-culler.service"
# OnFailure= target of the services, started with the failed unit's name.
NOTIFY_UNIT = "jupyterhub-notify-failure@.service"
SERVICES = (HUB_SERVICE, PROXY_SERVICE, CULLER_SERVICE)
# Users' servers: transient units <prefix><user>.service in this slice (files/bin/user-server).
USERS_SLICE = "jupyterhub-users.slice"
USER_UNIT_PREFIX = "jupyter-singleuser@"
UNITS = (*SERVICES, NOTIFY_UNIT, USERS_SLICE)
# What earlier versions of the deploy put in libexec and this one keeps elsewhere (the hub's
# package, hub.json): removed when found.
OBSOLETE_LIBEXEC = (
    "unitspawner.py",
    "slurmspawner.py",
    "oauthunix.py",
    "user-servers.json",
    "hub-people",
    "merge-oauth-names",
    "nltk-fetch",
    "oidc-discover",
    "safe-extract",
)
# The ports users' servers listen on (half-open): outside the kernel's ephemeral ports, and the
# proxy's and root's alone to connect to (the firewall rule of tasks/confinement.py).
SERVER_PORTS = (20000, 30000)
# With JupyterHub 6, a server listens on a Unix socket instead: <this>/<user>/server.sock.
SERVER_SOCKETS = PurePosixPath("/run/jupyterhub-servers")
# Root-only: the environment file of a server being started (its API token), gone once it runs.
USER_ENV_DIR = PurePosixPath("/run/jupyter-singleuser")

# Logins and privilege
# Where accounts the helper makes get their homes (useradd's default).
HOMES = PurePosixPath("/home")
SUDOERS_RULE = PurePosixPath("/etc/sudoers.d/jupyterhub")
PAM_SERVICE_NAME = "jupyterhub"
PAM_SERVICE = PurePosixPath("/etc/pam.d") / PAM_SERVICE_NAME
# The group PAM's unix_chkpwd needs for a hub that is not root.
SHADOW_GROUP = "shadow"

# Trust
CA_DIR = PurePosixPath("/usr/local/share/ca-certificates/jupyterhub-deploy")
SYSTEM_CA_BUNDLE = PurePosixPath("/etc/ssl/certs/ca-certificates.crt")

# The web front
NGINX_SITE = PurePosixPath("/etc/nginx/sites-available/jupyterhub")
NGINX_SITE_ENABLED = PurePosixPath("/etc/nginx/sites-enabled/jupyterhub")
# Answers the ACME challenge for a new name while the previous site keeps serving.
NGINX_ACME_SITE = PurePosixPath("/etc/nginx/sites-available/jupyterhub-acme")
NGINX_ACME_SITE_ENABLED = PurePosixPath("/etc/nginx/sites-enabled/jupyterhub-acme")
ACME_WEBROOT = PurePosixPath("/var/www/letsencrypt")
LETSENCRYPT_LIVE = PurePosixPath("/etc/letsencrypt/live")
RENEW_HOOK = PurePosixPath("/etc/letsencrypt/renewal-hooks/deploy/jupyterhub-reload-nginx")
# certbot's RFC 2136 credentials (jh_dns01), in a folder only root may enter: the TSIG key is never readable.
DNS01_CREDENTIALS = PurePosixPath("/etc/letsencrypt/jupyterhub-dns01/rfc2136.ini")
# Manual and self-signed certificates.
TLS_DIR = PurePosixPath("/etc/ssl/jupyterhub")

# A Slurm cluster behind the hub (jh_cluster): the distribution's packages and their paths.
SLURM_CONF = PurePosixPath("/etc/slurm/slurm.conf")
SLURM_CGROUP_CONF = PurePosixPath("/etc/slurm/cgroup.conf")
MUNGE_KEY = PurePosixPath("/etc/munge/munge.key")
MUNGE_SERVICE = "munge.service"
SLURM_CONTROLLER_SERVICE = "slurmctld.service"
SLURM_NODE_SERVICE = "slurmd.service"
# jh_shared_home: the hub's export (hub-nfs), the mount of the nodes (and of the hub, site-nfs).
NFS_EXPORTS = PurePosixPath("/etc/exports.d/jupyterhub.exports")
NFS_SERVER_SERVICE = "nfs-server.service"
HOME_MOUNT = "home.mount"
SLURM_CLUSTER_NAME = "jupyterhub"
# Accounting (slurmdbd): the account the hub's people are in, and its MariaDB database.
SLURM_ACCOUNT = "jupyterhub"
SLURMDBD_CONF = PurePosixPath("/etc/slurm/slurmdbd.conf")
SLURMDBD_SERVICE = "slurmdbd.service"
SLURM_ACCOUNTING_DB = "slurm_acct_db"
MARIADB_SERVICE = "mariadb.service"
MARIADB_CONF = PurePosixPath("/etc/mysql/mariadb.conf.d/90-jupyterhub-slurm.cnf")
# The firewall rule that leaves the servers' ports to the proxy and root (tasks/confinement.py).
SERVER_PORTS_SERVICE = "jupyterhub-server-ports.service"
# cron or at installed after the deploy: apt gives them the hub's pam_access line (tasks/confinement.py).
APT_JOBS_HOOK = PurePosixPath("/etc/apt/apt.conf.d/50jupyterhub-jobs-pam-access")
# On the nodes: SSH lets a person in only into a job of theirs (pam_slurm_adopt); admins always.
SSHD_PAM = PurePosixPath("/etc/pam.d/sshd")
NODE_ACCESS = PurePosixPath("/etc/security/access-jupyterhub-nodes.conf")
# On the hub: the hub's API for the nodes' servers, on the cluster's network (nginx).
NGINX_CLUSTER_API = PurePosixPath("/etc/nginx/sites-available/jupyterhub-cluster-api")
NGINX_CLUSTER_API_ENABLED = PurePosixPath("/etc/nginx/sites-enabled/jupyterhub-cluster-api")
CLUSTER_SERVICES = (
    MUNGE_SERVICE,
    SLURM_CONTROLLER_SERVICE,
    SLURM_NODE_SERVICE,
    SLURMDBD_SERVICE,
    MARIADB_SERVICE,
    NFS_SERVER_SERVICE,
    HOME_MOUNT,
)
# A user's server job writes its output here, in the user's home (each job overwrites it).
SLURM_JOB_LOG = ".jupyterhub-slurm.log"

# Root-only working places of the deploy
INSTALLER_CACHE = PurePosixPath("/var/cache/jupyterhub-deploy")
BACKUP_STAGING = PurePosixPath("/var/backups/jupyterhub-deploy")
# The nightly backup (jh_nightly_backup): the repository's password, the SSH key and known_hosts
# that reach an SFTP repository, restic's cache (root's alone), and the units that run it.
RESTIC_DIR = PurePosixPath("/etc/jupyterhub-deploy/restic")
RESTIC_FILES = ("password", "ssh-key", "known_hosts")
BACKUP_SERVICE = "jupyterhub-backup.service"
BACKUP_TIMER = "jupyterhub-backup.timer"
# Monitoring (jh_monitoring): the distribution's Prometheus, Alertmanager and node exporter, each on
# loopback, configured through their /etc/default files and /etc/prometheus.
PROMETHEUS_PORT, ALERTMANAGER_PORT, NODE_EXPORTER_PORT = 9090, 9093, 9100
MONITORING_PACKAGES = {
    # package: its unit (its /etc/default file: the package's name)
    "prometheus": "prometheus.service",
    "prometheus-alertmanager": "prometheus-alertmanager.service",
    "prometheus-node-exporter": "prometheus-node-exporter.service",
}
DEFAULTS_DIR = PurePosixPath("/etc/default")
PROMETHEUS_DIR = PurePosixPath("/etc/prometheus")
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERT_RULES = PROMETHEUS_DIR / "jupyterhub-alerts.yml"
ALERTMANAGER_CONFIG = PROMETHEUS_DIR / "alertmanager.yml"
# The hub's read:metrics token as Prometheus reads it (root:prometheus, 0640), copied from the state.
METRICS_TOKEN_COPY = PROMETHEUS_DIR / "jupyterhub-metrics.token"
# What files/bin/jupyterhub-metrics writes for the node exporter, every 30 s (its timer): root's alone
# to write (the node exporter's own folder is its account's, where root would follow its links).
TEXTFILE_DIR = PurePosixPath("/var/lib/jupyterhub-metrics")
METRICS_SERVICE = "jupyterhub-metrics.service"
METRICS_TIMER = "jupyterhub-metrics.timer"
# Their ports are root's and their own account's alone to connect to (files/bin/monitoring-ports-firewall).
MONITORING_PORTS_SERVICE = "jupyterhub-monitoring-ports.service"
# A cluster's node: its node exporter for the hub server alone (files/bin/node-exporter-firewall).
NODE_EXPORTER_ACCESS_SERVICE = "jupyterhub-node-exporter-access.service"
# With jh_domain, admins reach Prometheus and Alertmanager at the site's MONITORING_PATH, once the hub's
# service of that name (hubside.monitoring_gate) says so; nginx asks it on its socket, in a folder
# systemd makes for the hub's unit (RuntimeDirectory: the hub's account's alone to write).
MONITORING_SERVICE_NAME = "monitoring"
# With jh_notify_command, Alertmanager posts alerts here too, and the socket's service runs the command.
NOTIFY_ALERTS_PORT = 9095
NOTIFY_ALERTS_SOCKET = "jupyterhub-alert-notify.socket"
NOTIFY_ALERTS_SERVICE = "jupyterhub-alert-notify@.service"
MONITORING_GATE_DIR = PurePosixPath("/run/jupyterhub-monitoring-gate")
MONITORING_GATE_SOCKET = MONITORING_GATE_DIR / "gate.sock"

# The hub's API (on loopback; on the cluster's network with jh_cluster, for the nodes' servers)
# and the proxy's: for the proxy, the culler and the deploy only.
HUB_API_PORT = 8081
PROXY_API_PORT = 8001
# With jh_monitoring: the proxy's metrics (loopback; monitoring's firewall), nginx's connection counts.
PROXY_METRICS_PORT = 8003
# What the deploy's own daemons serve on this host's loopback: a site's service may not point there,
# and the people's processes may not bind these ports (reserved_ports).
LOCAL_SERVICES = {
    HUB_API_PORT: "the hub's own API",
    PROXY_API_PORT: "the proxy's API",
    PROXY_METRICS_PORT: "the proxy's metrics",
    PROMETHEUS_PORT: "Prometheus",
    ALERTMANAGER_PORT: "Alertmanager",
    NOTIFY_ALERTS_PORT: "the alerts' notifier",
    NODE_EXPORTER_PORT: "the node exporter",
}


def reserved_ports(settings: Settings, platform: Platform) -> list[int]:
    """The ports the people's processes may not bind (their servers' and SSH sessions' slices), so
    nobody's takes the place of the proxy, a monitoring daemon or a jh_services upstream on this
    host while it restarts (nginx sends that one its visitors); none where systemd cannot refuse
    them (before 249)."""
    from tasks.settings.network import local_host  # the settings import this module

    services = {service.upstream.port for service in settings.services if local_host(service.upstream.host or "")}
    return sorted({settings.public_port, *LOCAL_SERVICES, *services}) if platform.socket_bind_deny else []


NGINX_STATUS_PATH = "/jupyterhub-nginx-status"
PROXY_API_URL = f"http://127.0.0.1:{PROXY_API_PORT}"

# The hub database in PostgreSQL (jh_db_url): the distribution's server, on its Unix socket.
POSTGRESQL_SERVICE = "postgresql.service"
POSTGRESQL_SOCKET_DIR = PurePosixPath("/var/run/postgresql")

# The hub's state (in Layout.state_dir, owned by the hub user)
DATABASE = "jupyterhub.sqlite"
# In libexec where the deploy keeps the hub's groups (jh_groups): the hub is asked for them.
HUB_GROUPS_MARKER = "hub-groups.kept"
# Unix name -> the OAuth provider's account it is bound to (hubside.names).
OAUTH_NAMES = "oauth-names.json"
# Each LTI course's context and service endpoints, as the launches gave them (hubside.lti).
LTI_COURSES = "lti-courses.json"
# The LTI launches' nonces used, until each launch expires (hubside.lti).
LTI_NONCES = "lti-nonces.json"
# The deploy's own token for the hub's API (groups, off-boarding; tasks/people.py), used as the hub user.
DEPLOY_TOKEN = "deploy.env"
# Secret file name -> the text written around the value: env files for systemd's
# EnvironmentFile=, the bare hex string where JupyterHub reads the file itself.
SECRETS = {
    "jupyterhub_cookie_secret": "",
    "proxy.env": "CONFIGPROXY_AUTH_TOKEN=",
    "idle_culler.env": "JUPYTERHUB_API_TOKEN=",
    DEPLOY_TOKEN: "JUPYTERHUB_API_TOKEN=",
}
# The secrets a restore puts back: the hub's own (sessions stay valid). The proxy's token
# stays the host's: the proxy runs on through a restore, with the token it started with; the
# deploy's token too (the hub registers it from the config at every start).
RESTORED_SECRETS = ("jupyterhub_cookie_secret", "idle_culler.env")
# The token of the hub's metrics service (read:metrics alone; jh_monitoring).
METRICS_TOKEN = "metrics.env"
# The database and config copies taken before a server upgrade (below the state dir).
UPGRADE_BACKUPS = "backups"


@dataclass(frozen=True)
class Layout:
    """Paths that follow jh_install_root and jh_conda_prefix."""

    install_root: PurePosixPath
    conda_prefix: PurePosixPath

    @property
    def venv(self) -> PurePosixPath:
        """The server venv: a link to one of server_envs, switched over on upgrades."""
        return self.install_root / ".venv"

    @property
    def previous_venv(self) -> PurePosixPath:
        """A link to the server venv before the last upgrade (kept for a rollback)."""
        return self.install_root / ".venv.previous"

    @property
    def server_envs(self) -> PurePosixPath:
        """Server venvs, one per lock: the current one and the one before it (for rollback)."""
        return self.install_root / "envs"

    @property
    def uv_tool(self) -> PurePosixPath:
        """A venv holding uv, which installs the server and kernel venvs."""
        return self.install_root / "tools" / "uv"

    @property
    def uv_cache(self) -> PurePosixPath:
        """uv's cache (root's alone): venvs hard-link their files from it, so identical
        files of two server venvs (Node.js, JupyterLab) are stored once."""
        return self.install_root / "cache" / "uv"

    @property
    def kernels_dir(self) -> PurePosixPath:
        """The kernel environments (a venv or a conda environment per kernel), owned by root."""
        return self.install_root / "kernels"

    @property
    def jupyter_data_dir(self) -> PurePosixPath:
        """Kernel specs live here, outside the server venv, so a rebuilt venv keeps them."""
        return self.install_root / "share" / "jupyter"

    @property
    def nltk_data(self) -> PurePosixPath:
        return self.install_root / "nltk_data"

    @property
    def libexec(self) -> PurePosixPath:
        """The scripts the deploy ships (files/bin), root-owned, run by root or the hub user."""
        return self.install_root / "libexec"

    @property
    def auth_dir(self) -> PurePosixPath:
        """What the hub needs of an identity provider (root's; the hub's group may read it)."""
        return self.install_root / "auth"

    @property
    def oauth_client_secret(self) -> PurePosixPath:
        """The OAuth client secret of the hub at the provider (OpenID Connect or GitHub)."""
        return self.auth_dir / "oauth-client-secret"

    @property
    def lti_tool_key(self) -> PurePosixPath:
        """The LTI tool's private key, root's alone: it signs the grades-back tool's service requests
        (the hub publishes the public half, which the deploy derives)."""
        return self.auth_dir / "lti-tool-key.pem"

    def oidc_endpoints(self, issuer: str) -> PurePosixPath:
        """The endpoints read from the issuer's discovery document (one file per issuer)."""
        return self.auth_dir / f"oidc-endpoints-{hashlib.sha256(issuer.encode()).hexdigest()[:12]}.json"

    @property
    def config_file(self) -> PurePosixPath:
        return self.install_root / "jupyterhub_config.py"

    @property
    def state_dir(self) -> PurePosixPath:
        """The hub's database and secrets, owned by the hub user (root never writes below it)."""
        return self.install_root / "state"

    @property
    def database(self) -> PurePosixPath:
        return self.state_dir / DATABASE

    @property
    def proxy_dir(self) -> PurePosixPath:
        """configurable-http-proxy's node_modules: inside the venv, replaced with it."""
        return self.venv / "share" / "configurable-http-proxy"

    @property
    def conda(self) -> PurePosixPath:
        return self.conda_prefix / "bin" / "conda"

    @property
    def conda_server_env(self) -> PurePosixPath:
        """The conda environment with the server's Python and Node.js (old distributions)."""
        return self.conda_prefix / "envs" / "jupyterhub-server"

    @property
    def conda_environment_files(self) -> PurePosixPath:
        """The environment files conda environments were last made from."""
        return self.conda_prefix / "deploy-environments"

    @property
    def conda_installer_stamp(self) -> PurePosixPath:
        """Holds the sha256 of the installer that made (or last updated) the installation."""
        return self.conda_prefix / ".installed-installer-sha256"

    @property
    def hub_data(self) -> PurePosixPath:
        """hub.json: the hub's configuration as data (tasks/hub_data.py), root's, beside the config
        file that applies it; root's helper for users' servers reads its user_servers part."""
        return self.install_root / "hub.json"

    @property
    def courses_file(self) -> PurePosixPath:
        """Each course's grader and the exchange (jh_courses), for nbgrader in every server (root's)."""
        return self.install_root / "courses.json"

    @property
    def grades_back_file(self) -> PurePosixPath:
        """The platform's services for grades back (hubside.grades): root's alone, beside the tool's key."""
        return self.auth_dir / "grades-back.json"

    @property
    def restart_marker(self) -> PurePosixPath:
        """There while the hub has yet to restart with a changed configuration or package (tasks/hub.py)."""
        return self.install_root / ".hub-restart-pending"

    def script(self, name: str) -> PurePosixPath:
        """Where the shipped script files/bin/<name> lives on the host."""
        return self.libexec / name

    @property
    def layout_env_file(self) -> PurePosixPath:
        """What the state scripts read of this layout (``layout_env``): root's, 0644, beside them."""
        return self.libexec / LAYOUT_ENV


# Beside the shipped scripts: the paths, unit names and settings the hub's state scripts read
# (files/bin/hub-state.sh sources it once it is sure only root could have written it).
LAYOUT_ENV = "layout.env"
# What a value there may hold: in single quotes none of these means anything to a shell, and
# none makes a word split or a glob if a script ever forgets its double quotes (except the space,
# which separates the names of a list).
SHELL_VALUE = re.compile(r"[A-Za-z0-9 ._/:@%+=,~-]*")
SHELL_KEY = re.compile(r"[A-Z][A-Z0-9_]*")


def shell_value(value: object) -> str:
    """value in single quotes for a KEY='value' line a shell sources; refuses anything else."""
    text = str(value)
    if not SHELL_VALUE.fullmatch(text):
        raise ValueError(
            f"{text!r} cannot go in {LAYOUT_ENV}: only letters, digits, spaces and ._/:@%+=,~- are written there"
        )
    return f"'{text}'"


def layout_env(settings: Settings, host_name: str = "") -> str:
    """The text of libexec/layout.env: KEY='value' lines, for files/bin/hub-state.sh.

    host_name: the inventory's name of the host, the restic snapshots' host.
    """
    paths = settings.layout
    nightly = settings.nightly_backup
    values = {
        "INSTALL_ROOT": settings.install_root,
        "LIBEXEC": paths.libexec,
        # The server venv in use (a link), the one a rollback goes back to, and where they are.
        "VENV": paths.venv,
        "PREVIOUS_VENV": paths.previous_venv,
        "ENVS_DIR": paths.server_envs,
        "CONFIG": paths.config_file,
        "HUB_DATA": paths.hub_data,
        # The hub's own (root never writes below it).
        "STATE_DIR": paths.state_dir,
        # The SQLite file, or postgresql:NAME (jh_db_url).
        "DATABASE": settings.hub_database,
        "BACKUPS_DIR": paths.state_dir / UPGRADE_BACKUPS,
        "BACKUPS_KEPT": settings.upgrade_backups_kept,
        "HUB_USER": settings.hub_user,
        "USERS_GROUP": settings.users_group,
        "HUB_UNIT": HUB_SERVICE,
        "PROXY_UNIT": PROXY_SERVICE,
        "CULLER_UNIT": CULLER_SERVICE,
        "HEALTH_URL": f"{settings.local_url}hub/health",
        # nginx's connection counts (jh_monitoring with jh_domain): files/bin/jupyterhub-metrics.
        "NGINX_STATUS_URL": f"http://{settings.domain}{NGINX_STATUS_PATH}"
        if settings.monitoring and settings.domain
        else "",
        # Names in the state folder (lists: separated by spaces): the secrets a backup holds,
        # those a restore puts back, those that stay the host's own, and the OAuth name bindings.
        "SECRETS": " ".join(SECRETS),
        "RESTORED_SECRETS": " ".join(RESTORED_SECRETS),
        "HOST_SECRETS": " ".join(name for name in SECRETS if name not in RESTORED_SECRETS),
        "OAUTH_NAMES": OAUTH_NAMES,
        # The nightly backup (files/bin/nightly-backup, restic-run): empty without jh_nightly_backup.
        "BACKUP_STAGING": BACKUP_STAGING,
        "RESTIC_DIR": RESTIC_DIR,
        "BACKUP_REPOSITORY": nightly.repository if nightly else "",
        "BACKUP_SSH_PORT": nightly.sftp_port if nightly else "",
        "BACKUP_HOST": host_name,
        "BACKUP_HOMES": "yes" if settings.backup_home_dirs else "no",
        # restic forget's --keep-daily, --keep-weekly, --keep-monthly; the day of restic check.
        "BACKUP_KEEP": f"{nightly.keep_daily} {nightly.keep_weekly} {nightly.keep_monthly}" if nightly else "",
        "BACKUP_CHECK_DAY": nightly.check_day if nightly else "",
        # Monitoring (files/bin/jupyterhub-metrics, metrics-token).
        "USER_UNIT_PREFIX": USER_UNIT_PREFIX,
        "METRICS_TOKEN": METRICS_TOKEN,
    }
    lines = [
        "# Written by the deploy from tasks/layout.py and the settings; read by files/bin/hub-state.sh.",
        "# The next run writes it again: change the settings, not this file.",
    ]
    for key, value in values.items():
        assert SHELL_KEY.fullmatch(key), key
        lines.append(f"{key}={shell_value(value)}")
    return "\n".join(lines) + "\n"
