"""The Settings model: every setting, its type, default and description (docs/settings.md is
generated from them: make docs), and the way from host data to Settings (from_data)."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import Field, FilePath, HttpUrl, StrictBool, StrictInt, StrictStr, ValidationError, model_validator

from tasks.settings import checks
from tasks.settings.backups import NightlyBackup, RestoreSnapshot
from tasks.settings.capacity import Capacity
from tasks.settings.constants import (
    LETS_ENCRYPT,
    MINIFORGE_SHA256,
    MINIFORGE_URL,
    NLTK_INDEX,
    PREFIX,
)
from tasks.settings.courses import Courses
from tasks.settings.derived import Derived
from tasks.settings.errors import SettingsError, explain
from tasks.settings.monitoring import Monitoring
from tasks.settings.network import DbUrl, DomainName, EmailAddress, NodeName, Port, Url, UrlPath
from tasks.settings.parts import (
    DEFAULT_PROFILES,
    DEFAULT_SLURM_LIMITS,
    TEACHING_KERNEL,
    GitHub,
    HubUser,
    Kernel,
    Ldap,
    Limits,
    Lti13,
    Oidc,
    SharedDir,
    SharedHome,
    SlurmLimits,
    SpawnProfile,
    Strict,
    SubPathService,
)
from tasks.settings.risks import Risks
from tasks.settings.sharing import Sharing
from tasks.settings.subdomains import Subdomains
from tasks.settings.types import (
    AccountName,
    CaFile,
    CertificateFile,
    CondaChannel,
    CpuCores,
    GroupName,
    HostPath,
    LabPlugin,
    MemorySize,
    NltkPackage,
    NotifyCommand,
    OffboardPath,
    PrivateKeyFile,
    ServerRelease,
    Sha256,
    SlurmName,
    TasksLimit,
    UnixGroup,
)


class Settings(Derived, Capacity, Courses, Subdomains, Sharing, Risks, Strict):
    """The deploy's settings, with their defaults. Data key = ``jh_`` + field name.

    A field's json_schema_extra "section" starts a section of docs/settings.md; derived
    values (settings.layout, ...) come from Derived (derived.py), the rules between
    settings from checks.py."""

    install_root: HostPath = Field(
        PurePosixPath("/opt/jupyter"),
        description="Everything the deploy installs; `.venv` and `state/` live here. Letters, digits and `._-` "
        "between single slashes; never `/` nor a system directory (`/etc`, `/home`, `/usr`, `/var`, ...) or a "
        "folder below one; `/opt` and `/srv` only below them.",
        json_schema_extra={"section": "Layout and accounts"},
    )
    hub_user: AccountName = Field(
        "jupyter", description="The system user that runs the hub; its home is `jh_install_root`."
    )
    users_group: GroupName = Field(
        "jupyterhub-users",
        description="The Unix group whose members may log in. The deploy puts the accounts of `jh_users` in it; "
        "an account that already exists on the host needs only be in it.",
    )
    users: list[HubUser] = Field(
        [],
        description='The Unix accounts the deploy creates for hub users; `"state": "absent"` off-boards one '
        "(docs/operations.md: People).",
        examples=[[{"name": "alice", "password_hash": "$6$..."}]],
    )
    admin_users: list[AccountName] = Field(
        [],
        description="Hub admins (user names): hub users, or existing accounts (checked on the host before it "
        "changes). An admin is never off-boarded.",
    )
    groups: dict[GroupName, list[AccountName]] = Field(
        {},
        description="Groups of hub users, as Unix groups (for `jh_group_limits` and `jh_shared_dirs`) and "
        "JupyterHub groups (for roles), with exactly the listed members on every run "
        "(docs/operations.md: People).",
        examples=[{"ml-2026": ["alice", "bob"]}],
    )
    shared_dirs: list[SharedDir] = Field(
        [],
        description="Folders of shared data, root's, linked from the homes of the users who may read them "
        "(docs/operations.md: People).",
        examples=[
            [
                {"path": "/srv/data/nlp", "mode": "read-only"},
                {"path": "/srv/share/ml-2026", "group": "ml-2026", "mode": "group-writable"},
            ]
        ],
    )
    offboard_dir: OffboardPath = Field(
        PurePosixPath("/var/backups/jupyterhub-offboard"),
        description="Where off-boarded users' homes are archived (root's, 0700; one tar.gz per user, 0600): a "
        "folder of its own, outside the trees users and the system write (`/home`, `/tmp`, `/var/tmp`, ...).",
    )

    authenticator: Literal["pam", "ldap", "oidc", "github", "lti13", "native"] = Field(
        "pam",
        description="Who may log in (docs/operations.md: People): `pam`, Unix accounts and their passwords; "
        "`ldap`, the directory in `jh_ldap`; `oidc`, the OpenID Connect provider in `jh_oidc`; `github`, GitHub "
        "accounts (`jh_github`); `lti13`, launches from the courses of a learning platform (`jh_lti13`); "
        "`native`, people who sign up at the hub and whom an admin approves "
        '(NativeAuthenticator runs on JupyterHub 5, not 6: it needs `jh_server_release = "jupyterhub-5"`).',
        json_schema_extra={"section": "Logins"},
    )
    ldap: Ldap | None = Field(None, description="With `ldap`: the directory.")
    oidc: Oidc | None = Field(None, description="With `oidc` (needs `jh_domain`): the provider.")
    github: GitHub | None = Field(None, description="With `github` (needs `jh_domain`): the site's GitHub OAuth app.")
    lti13: Lti13 | None = Field(None, description="With `lti13` (needs `jh_domain`): the learning platform.")

    server_release: ServerRelease = Field(
        "jupyterhub-6",
        description="The server environment: a folder of `files/server/` with requirements.in and one lock per "
        "target Python (py3.12.txt, ...), such as `jupyterhub-5` (JupyterHub 5.5.4), or the absolute path of "
        "such a folder on the controller (a site's own pinned set).",
        json_schema_extra={"section": "Server environment"},
    )
    server_python: Literal["auto", "system", "conda"] = Field(
        "auto",
        description="The Python the server venv (and venv kernels) are built from. `auto`: the newest Python of "
        "the target's release that `jh_server_release` has a lock for, else conda's; `system`: the release's "
        "or refuse; `conda`: Python 3.12 and Node.js from conda (`files/conda/server-python.yml`). The run "
        "prints its choice.",
    )
    allow_untested_release: StrictBool = Field(
        False,
        description="Deploy to a release this deploy does not know (Ubuntu 26.04, Debian 14, ...) with its own "
        "python3, if `jh_server_release` has a lock for it; the run says it is untested. Without it such a "
        "release is refused before any change.",
    )
    upgrade_backups_kept: StrictInt = Field(
        5,
        ge=1,
        le=100,
        description="How many backups of the hub's database and config, taken before each server upgrade, are kept.",
    )

    conda_prefix: HostPath = Field(
        PurePosixPath("/opt/miniconda3"),
        description="Where conda is installed (outside `jh_install_root`). Conda is installed only when a "
        "kernel has an environment file or the server Python comes from conda.",
        json_schema_extra={"section": "Conda"},
    )
    conda_installer_url: Url = Field(
        HttpUrl(MINIFORGE_URL),
        description="The conda installer: Miniforge (conda-forge's) for x86_64, pinned; a Miniconda installer "
        "works too. Set it and `jh_conda_installer_sha256` together (for aarch64, say).",
    )
    conda_installer_sha256: Sha256 = Field(
        MINIFORGE_SHA256, description="The installer's sha256 checksum, checked before it runs."
    )
    conda_installer_file: FilePath | None = Field(
        None,
        description="The installer as a file on the controller (offline sites): uploaded instead of downloaded, "
        "and checked against `jh_conda_installer_sha256` before any host is touched.",
    )
    conda_channels: list[CondaChannel] = Field(
        ["conda-forge"],
        min_length=1,
        description="Conda's channels, written to the installation's `.condarc` (which also trusts the "
        "system's CA store).",
    )
    conda_channel_alias: Url | None = Field(
        None,
        description="A mirror of the channels (conda's channel_alias): channel names resolve below it. "
        "None: conda's default.",
    )

    public_ip: IPv4Address = Field(
        IPv4Address("127.0.0.1"),
        description="Where the proxy listens for browsers. Loopback unless you open it: nginx (`jh_domain`) or "
        "an SSH tunnel faces the network.",
        json_schema_extra={"section": "Hub"},
    )
    public_port: Port = Field(8000, description="The proxy's port.")
    idle_timeout: StrictInt = Field(
        3600,
        ge=60,
        le=30 * 86400,
        description="Seconds without activity before the culler stops a user's server (60 s to 30 days).",
    )
    idle_check_interval: StrictInt = Field(
        300, ge=10, le=86400, description="Seconds between the culler's checks (at most `jh_idle_timeout`)."
    )
    notify_on_failure: StrictBool = Field(
        False,
        description="Add systemd's `OnFailure=` to the units: a failure is logged to the journal (tag "
        "`jupyterhub-notify`).",
    )
    notify_command: NotifyCommand | None = Field(
        None,
        description="Also run this command with the failed unit's name as its argument (needs "
        "`jh_notify_on_failure`); it becomes `ExecStart=<command> %i`, so it is a program's absolute path and "
        "plain arguments only (letters, digits and `._/:=@+,-`).",
    )
    lab_settings: dict[LabPlugin, dict[StrictStr, Any]] = Field(
        {},
        description="JupyterLab's defaults for every user (its `overrides.json`): `{plugin id: {setting: value}}`, "
        "JSON values only. Merged over the deploy's own, which turns off JupyterLab's news pop-up (fetchNews) "
        "on a managed hub.",
        examples=[{"@jupyterlab/notebook-extension:tracker": {"codeCellConfig": {"lineNumbers": True}}}],
    )

    user_memory_limit: MemorySize | None = Field(
        None,
        description='Memory per user\'s server, such as `"2G"` (K, M, G, T; at least 64M): the OOM killer ends '
        "a kernel above it, the server lives on. Each user's server runs in a systemd unit of its own "
        "(`jupyter-singleuser@<user>`). None: no per-user limit; the users' servers together never take the "
        "memory the system needs (a reserve of 1 GiB or 10 %, whichever is larger).",
        json_schema_extra={"section": "Limits"},
    )
    user_cpu_limit: CpuCores | None = Field(
        None, description="CPU cores per user's server, such as `1.5` (to the hundredth). None: no limit."
    )
    user_tasks_limit: TasksLimit | None = Field(
        1024, description="Processes and threads per user's server (a fork bomb stops there)."
    )
    group_limits: dict[UnixGroup, Limits] = Field(
        {},
        description="Limits per Unix group (one that exists on the host or is in `jh_groups`). A user in several "
        "gets, for each limit, the most generous of their groups that set it; unset ones fall back to the "
        "`jh_user_*_limit` settings.",
        examples=[{"ml-2026": {"memory": "8G", "cpu": 4, "tasks": 4096}}],
    )
    users_ssh: StrictBool = Field(
        False,
        description="Members of `jh_users_group` may log in over SSH; their sessions are then held to the limits "
        "of their servers. Off: they work through the hub alone, every process of theirs in their server, ended "
        "with it. cron and at jobs are never theirs (nor the hub account's).",
    )

    kernels: list[Kernel] = Field(
        [TEACHING_KERNEL],
        description="Kernels users compute in, apart from the server venv; the one named `python3` replaces the "
        "server's own default kernel.",
        json_schema_extra={"section": "Kernels"},
    )
    keep_removed_kernel_envs: StrictBool = Field(
        False,
        description="Keep the environment of a kernel removed from `jh_kernels` (it is unregistered either way).",
    )
    nltk_packages: list[NltkPackage] = Field(
        [],
        description="NLTK data packages fetched into the NLTK data every kernel shares read-only "
        "(`/opt/jupyter/nltk_data`, its NLTK_DATA).",
        examples=[["stopwords", "punkt"]],
    )
    nltk_index_url: Url = Field(
        HttpUrl(NLTK_INDEX), description="The NLTK data index (index.xml) packages come from: NLTK's own, or a mirror."
    )

    domain: DomainName | None = Field(
        None,
        description="The site's DNS name: nginx terminates TLS for it and proxies to the hub (and to "
        "`jh_services`); the proxy then stays on loopback. None: no nginx.",
        json_schema_extra={"section": "Web front and firewall"},
    )
    certificate: Literal["letsencrypt", "manual", "selfsigned"] = Field(
        "letsencrypt",
        description="`letsencrypt`: certbot over HTTP-01 (webroot); `manual`: your files (`jh_certificate_file`, "
        "`jh_certificate_key_file`); `selfsigned`: made on the server (intranets, the demo).",
    )
    acme_directory_url: Url = Field(
        HttpUrl(LETS_ENCRYPT), description="The ACME server certbot uses: Let's Encrypt, another CA, or a test CA."
    )
    acme_staging: StrictBool = Field(False, description="Use Let's Encrypt's staging server (for trying things out).")
    acme_email: EmailAddress | None = Field(
        None, description="The contact address of the ACME account. None: registered without one."
    )
    certificate_file: CertificateFile | None = Field(
        None,
        description="With `manual`: a PEM file on the controller holding the site's certificate first, then "
        "its chain; certificates only.",
    )
    certificate_key_file: PrivateKeyFile | None = Field(
        None,
        description="With `manual`: a PEM file on the controller holding the certificate's one unencrypted "
        "private key (it lands 0600).",
    )
    base_url: UrlPath = Field("/", description='Where the hub sits on the site: "/" or a path such as `/jupyter/`.')
    services: list[SubPathService] = Field(
        [],
        description="Other web apps of this server under paths of the site.",
        examples=[[{"path": "/rstudio/", "upstream": "http://127.0.0.1:8787/", "websockets": True}]],
    )
    firewall: StrictBool = Field(
        False,
        description="ufw: deny incoming traffic but SSH and the web ports (80 and 443 with `jh_domain`, else "
        "`jh_public_port`); in a cluster the hub and its nodes let each other in, and nodes open SSH alone. "
        "Off: the firewall is left as it is.",
    )
    firewall_ssh_port: Port = Field(22, description="The SSH port the firewall keeps open.")

    extra_ca_certificates: list[CaFile] = Field(
        [],
        description="CA certificates (PEM files on the controller) the targets must trust, such as a "
        "TLS-intercepting proxy's: pip, npm and apt on the servers need them. Copied to "
        "`/usr/local/share/ca-certificates` as `<stem>.crt`: CA certificates only (never a key), plain file "
        "names, no two with one stem.",
        json_schema_extra={"section": "Outside world"},
    )
    pip_index_url: Url | None = Field(
        None,
        description="A package index for pip and uv (a mirror), which install the venvs of the server and the "
        "kernels. None: pip's own.",
    )
    npm_registry_url: Url | None = Field(
        None, description="An npm registry (a mirror), for configurable-http-proxy. None: npm's own."
    )

    cluster: StrictBool = Field(
        False,
        description="A Slurm cluster behind the hub (docs/cluster.md): the hosts of the inventory's `nodes` "
        "run users' servers as Slurm jobs, chosen on the spawn page. Off: one server.",
        json_schema_extra={"section": "Cluster"},
    )
    cluster_address: IPv4Address | None = Field(
        None,
        description="With a cluster, on every host: its address on the private network the hub and the nodes "
        "share (10/8, 172.16/12 or 192.168/16). On the hub, nginx passes the hub's API (never its login page) "
        "to the nodes alone there; the hub itself listens on loopback.",
    )
    slurm_partitions: dict[SlurmName, list[NodeName]] = Field(
        {},
        description="Partition name: the inventory names of its nodes; the first is the default. Default: all "
        "nodes in one partition `jupyter`.",
        examples=[{"jupyter": ["node1", "node2"], "bigmem": ["node3"]}],
    )
    spawn_profiles: list[SpawnProfile] = Field(
        DEFAULT_PROFILES,
        description="What users pick on the spawn page; a profile no node can hold is refused.",
        examples=[
            [
                {"key": "hub", "display": "On the hub server", "where": "hub"},
                {
                    "key": "large",
                    "display": "Cluster: 8 CPUs, 32 GB, 8 h",
                    "where": "cluster",
                    "cpus": 8,
                    "memory": "32G",
                    "minutes": 480,
                    "partition": "bigmem",
                },
            ]
        ],
    )
    shared_home: SharedHome = Field(
        SharedHome(kind="mounted"), description="How `/home` is the same folder on the hub and the nodes."
    )
    slurm_user_limits: SlurmLimits = Field(
        DEFAULT_SLURM_LIMITS,
        description="What each person may run on the cluster at once, the server the hub starts for them "
        "included, enforced by Slurm's accounting (slurmdbd): jobs running, jobs queued, cores and memory of "
        "their running jobs together. More waits in the queue or is refused at `sbatch`. It must admit the "
        "largest profile.",
    )
    slurm_group_limits: dict[UnixGroup, SlurmLimits] = Field(
        {},
        description="Like `jh_slurm_user_limits`, per group of `jh_groups`: a person in several gets, for each "
        "limit, the most generous of their groups that set it; unset ones fall back to `jh_slurm_user_limits`.",
        examples=[{"ml-2026": {"jobs": 8, "cpus": 32, "memory": "128G"}}],
    )

    db_url: DbUrl | None = Field(
        None,
        description='The hub\'s database. None: SQLite in the state folder. `"postgresql:///NAME"`: the '
        "database NAME of the hub server's own PostgreSQL (the distribution's), owned by the hub's account, "
        "which logs in on the Unix socket (peer authentication: no password anywhere). Another server is not "
        "supported yet.",
        examples=["postgresql:///jupyterhub"],
        json_schema_extra={"section": "Database"},
    )

    backup_dir: Path = Field(
        Path("backups"),
        description="The controller folder `tasks.backup.backup` writes archives to (a subfolder per host).",
        json_schema_extra={"section": "Day-2 operations"},
    )
    backup_home_dirs: StrictBool = Field(False, description="Backups hold the hub users' home directories too.")
    monitoring: Monitoring | None = Field(
        None,
        description="Metrics and alerts (None: none). Off by default: alerts need a receiver only you can "
        "name, and the three daemons take memory the users could have (some 30 MiB at first, 60 MiB after "
        "minutes, growing with Prometheus's data).",
    )
    nightly_backup: NightlyBackup | None = Field(
        None, description="Back the hub up every night into a restic repository (None: only by hand)."
    )
    restore_archive: FilePath | None = Field(
        None, description="The archive `tasks.backup.restore` puts back (made by `tasks.backup.backup`)."
    )
    restore_snapshot: RestoreSnapshot | None = Field(
        None,
        description="What `tasks.backup.restore` takes from `jh_nightly_backup`'s repository instead: `latest` "
        "(this host's newest complete backup) or a snapshot's id (`libexec/restic-run snapshots` lists them).",
    )
    report_days: StrictInt = Field(
        7, ge=1, le=366, description="The days `tasks.status.report` covers, today (UTC) the last of them."
    )
    report_dir: Path = Field(
        Path("reports"),
        description="The controller folder `tasks.status.report` writes its pages to (0700; pages 0600: they "
        "name people).",
    )
    uninstall_conda: StrictBool = Field(
        False, description="`tasks.uninstall.remove` also removes the conda installation (kept by default)."
    )
    uninstall_users: StrictBool = Field(
        False,
        description="`tasks.uninstall.remove` also removes the hub users' accounts and home directories (kept "
        "by default).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        checks.check(self)
        return self

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Settings:
        """Build settings from host data (the ``jh_`` keys), or raise SettingsError."""
        values = {k[len(PREFIX) :]: v for k, v in data.items() if k.startswith(PREFIX)}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise SettingsError(explain(error, cls.model_fields)) from None
