"""The structured values of settings: a hub user, a shared folder, a login provider, a
service under the site, a group's limits, a kernel, a spawn profile, the cluster's /home.

Each model's docstring and its fields' descriptions are the settings reference's text
(docs/settings.md, written by tasks/settings/reference.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from tasks.settings.constants import KERNEL_SETS
from tasks.settings.network import (
    DomainName,
    GitHubClientId,
    GitHubOrganization,
    HttpsUrl,
    LdapDn,
    LdapDnTemplate,
    LtiClaim,
    LtiId,
    LtiIssuer,
    OidcClaim,
    OidcClientId,
    OidcGroup,
    OidcScope,
    Port,
    ProviderAccount,
    Upstream,
    UrlPath,
)
from tasks.settings.types import (
    AccountName,
    CourseName,
    CpuCores,
    DisplayName,
    EnvironmentFile,
    GroupName,
    HostPath,
    KernelName,
    KernelSet,
    MemorySize,
    PasswordHash,
    ProfileText,
    RemotePath,
    RsaKeyFile,
    SecretFile,
    SlurmName,
    TasksLimit,
    environment_files,
    lock_sets,
    memory_bytes,
)


class Strict(BaseModel):
    # Numbers, booleans and names are strict (no "yes" -> True, no "60" -> 60);
    # paths, addresses and URLs may be given as strings.
    model_config = ConfigDict(extra="forbid", frozen=True)


class HubUser(Strict):
    """A Unix account the deploy creates for a hub user, or off-boards (state "absent")."""

    name: AccountName = Field(description="The account's Unix user name.")
    password_hash: PasswordHash | None = Field(
        None,
        description="A crypt(3) hash of its password, such as the output of `openssl passwd -6`: plaintext is "
        "refused, so the password never leaves the admin's machine. Logins through `ldap`, `oidc`, `github` or "
        "`lti13` need none.",
    )
    state: Literal["present", "absent"] = Field(
        "present",
        description='`"absent"` off-boards the account (docs/operations.md: People): its server stops, the hub '
        "user and its tokens are deleted, its home is archived to `jh_offboard_dir` and removed, then the account.",
    )
    account: ProviderAccount | None = Field(
        None,
        description="With `oidc`, `github` or `lti13`: the one account of the provider this name belongs to "
        "(OpenID Connect's `sub`, GitHub's numeric `id`, the learning platform's `sub`, never a name the person "
        "can edit). Only that account gets the name, whoever signs in first; a listed user without one is let in "
        "through `allowed_groups`, `allowed_organizations` or a course of `jh_lti13` alone. Every admin needs one.",
        examples=["f3a9c2d0-5b1e-4c8e-9f1a-2b7d6e4c8a10"],
    )

    @model_validator(mode="after")
    def _no_password_to_remove(self) -> HubUser:
        if self.state == "absent" and self.password_hash is not None:
            raise ValueError(f"{self.name} is absent: drop its password_hash")
        return self


class SharedDir(Strict):
    """A folder of shared data (jh_shared_dirs), linked from the homes of the users who may read it."""

    path: HostPath = Field(description="The folder; each reader's home gets a link named like it (`~/nlp`).")
    mode: Literal["read-only", "group-writable"] = Field(
        description="`read-only`: root's, readable by the hub users (or by the group's members); "
        "`group-writable`: the group's members write there, and each may change the others' files, not "
        "rename or delete them (setgid and sticky, 3770)."
    )
    group: GroupName | None = Field(
        None, description="The group that reads or writes it: `jh_users_group` or one of `jh_groups`."
    )

    @model_validator(mode="after")
    def _group_for_writers(self) -> SharedDir:
        if self.mode == "group-writable" and self.group is None:
            raise ValueError(f"{self.path}: a group-writable folder needs a group")
        return self

    @property
    def link_name(self) -> str:
        """The name of the link to it in each reader's home."""
        return self.path.name


class Ldap(Strict):
    """The LDAP directory that checks hub logins (jh_authenticator = "ldap"): the hub binds
    as the user over TLS, the server's certificate checked against the system's CAs (with
    jh_extra_ca_certificates) and its name. Passwords never cross the network in clear."""

    server: DomainName = Field(
        description="The directory's DNS name; its certificate must be valid for it.", examples=["ldap.example.org"]
    )
    port: Port | None = Field(None, description="Default: 389 with `starttls`, 636 with `ldaps`.")
    tls: Literal["starttls", "ldaps"] = Field(
        "starttls",
        description="`starttls`: TLS before the bind on port 389 (LDAPv3's way); `ldaps`: TLS from the start, "
        "port 636.",
    )
    bind_dn_template: LdapDnTemplate = Field(
        description="The DN a user binds as, `{username}` as one whole value.",
        examples=["uid={username},ou=people,dc=example,dc=org"],
    )
    allowed_groups: list[LdapDn] = Field(
        [],
        description="Members of any of these groups (member, uniqueMember or memberUid) may log in, and the "
        "people of `jh_users`; members not in `jh_users` get a Unix account at their first login.",
        examples=[["cn=ml-2026,ou=groups,dc=example,dc=org"]],
    )

    @property
    def server_port(self) -> int:
        return self.port or (636 if self.tls == "ldaps" else 389)


class Oidc(Strict):
    """The OpenID Connect provider that checks hub logins (jh_authenticator = "oidc"): Keycloak,
    Azure AD, Google... Its endpoints come from the issuer's discovery document, read by the
    deploy on the host; the hub reads the client secret from a file only it and root can read.
    The provider's redirect URI: `https://<jh_domain>/hub/oauth_callback`."""

    issuer: HttpsUrl = Field(
        description="The issuer's https:// URL.", examples=["https://login.example.org/realms/uni"]
    )
    client_id: OidcClientId = Field(description="The hub's client id at the provider.", examples=["jupyterhub"])
    client_secret_file: SecretFile = Field(
        description="A file on the controller holding the client secret alone (uploaded `root:<hub user>` 0640).",
        examples=["secrets/oidc-client-secret"],
    )
    scopes: list[OidcScope] = Field(["openid", "profile", "email"], description="Must include `openid`.")
    username_claim: OidcClaim = Field(
        "preferred_username",
        description="The claim whose value, lower-cased, becomes the Unix name (it must then be a Unix name).",
    )
    groups_claim: OidcClaim = Field("groups", description="The claim that lists a person's groups.")
    allowed_groups: list[OidcGroup] = Field(
        [],
        description="Members of any of these groups (the groups claim) may log in, and the people of `jh_users`.",
        examples=[["ml-2026"]],
    )

    @model_validator(mode="after")
    def _openid(self) -> Oidc:
        if "openid" not in self.scopes:
            raise ValueError("scopes must include openid")
        return self


class GitHub(Strict):
    """GitHub accounts log in (jh_authenticator = "github"): a GitHub OAuth app of the site, its
    callback `https://<jh_domain>/hub/oauth_callback`."""

    client_id: GitHubClientId = Field(description="The OAuth app's client id.", examples=["Iv1.0123"])
    client_secret_file: SecretFile = Field(
        description="A file on the controller holding the app's client secret alone.",
        examples=["secrets/github-client-secret"],
    )
    allowed_organizations: list[GitHubOrganization] = Field(
        [],
        description="Members of these organizations may log in (GitHub's API, scope read:org), and the people "
        "of `jh_users`.",
        examples=[["my-lab"]],
    )


class Lti13(Strict):
    """The learning platform (Moodle, Canvas, ...) whose LTI 1.3 launches log people in
    (jh_authenticator = "lti13"): the hub is a tool there. Register it with the login URL
    `https://<jh_domain>/hub/lti13/oauth_login`, the redirect URI
    `https://<jh_domain>/hub/lti13/oauth_callback`, the target link URI `https://<jh_domain>/hub/`,
    the public keyset URL `https://<jh_domain>/hub/lti13/jwks`, the custom parameter
    `username=$User.username`, and the names and roles and assignment and grade services. A
    launch from a course of `courses` logs its person in (an account made at their first start)
    as a member of `<course>-students` (learners) or `<course>-staff` (instructors, teaching
    assistants); a launch from any other course is refused, but for the people of `jh_users` bound
    to their platform account."""

    issuer: LtiIssuer = Field(
        description="The platform's issuer identifier, exactly as its launches carry it (https://, no "
        "query): Canvas's `https://canvas.instructure.com`, Moodle's address.",
        examples=["https://moodle.example.org"],
    )
    client_id: LtiId = Field(description="The tool's client id at the platform.", examples=["10000000000042"])
    deployment_ids: list[LtiId] = Field(
        min_length=1,
        description="The tool's deployments at the platform whose launches log in.",
        examples=[["1"]],
    )
    authorization_endpoint: HttpsUrl = Field(
        description="The platform's OpenID Connect authorization endpoint (its authentication request URL).",
        examples=["https://moodle.example.org/mod/lti/auth.php"],
    )
    jwks_url: HttpsUrl = Field(
        description="The platform's public keyset URL.", examples=["https://moodle.example.org/mod/lti/certs.php"]
    )
    token_url: HttpsUrl = Field(
        description="The platform's access token URL, for its names and roles and grade services.",
        examples=["https://moodle.example.org/mod/lti/token.php"],
    )
    tool_key_file: RsaKeyFile = Field(
        description="A file on the controller holding the tool's private RSA key (PEM, 2048 to 4096 bits; "
        "uploaded `root:root` 0600, not the hub's): the deploy gives the hub its public half to publish, and "
        "the tool that sends grades back, run as root, signs the requests to the platform's services with it.",
        examples=["secrets/lti-tool-key.pem"],
    )
    username_claim: LtiClaim = Field(
        "custom_username",
        description="The launch's claim whose value, lower-cased, becomes the Unix name (it must then be one, in "
        "ASCII): `custom_NAME`, the tool's custom parameter NAME, which the platform's admins set (not the "
        "person's own name or email, which they may edit).",
    )
    courses: dict[LtiId, CourseName] = Field(
        {},
        description="The platform's course (its context id) -> the hub's course, whose groups its people join. "
        "Two contexts may share a course (the sections of one). A context id is the platform's, whichever of "
        "`deployment_ids` launches from it: the same course in any of the tool's deployments.",
        examples=[{"8f2a61c7": "ml-2026"}],
    )


class SubPathService(Strict):
    """Another web app of this server that nginx serves under a path of the hub's site."""

    path: UrlPath = Field(description="Where it sits on the site, such as `/rstudio/`.")
    upstream: Upstream = Field(
        description="Where nginx finds it, literally `http(s)://host[:port]/path/`: it becomes nginx's proxy_pass.",
        examples=["http://127.0.0.1:8787/"],
    )
    websockets: StrictBool = Field(False, description="Pass websocket upgrades through.")


class Limits(Strict):
    """Per-user limits of the members of one group (jh_group_limits); unset ones fall back."""

    memory: MemorySize | None = Field(None, description='Like `jh_user_memory_limit`, such as `"8G"`.')
    cpu: CpuCores | None = Field(None, description="Like `jh_user_cpu_limit`, such as `4`.")
    tasks: TasksLimit | None = Field(None, description="Like `jh_user_tasks_limit`, such as `4096`.")

    @model_validator(mode="after")
    def _something(self) -> Limits:
        if not self.model_fields_set:
            raise ValueError("give at least one of memory, cpu, tasks")
        return self


class Kernel(Strict):
    """A kernel environment: a venv with a pinned package set, or a conda environment file."""

    name: KernelName = Field(
        description="The kernel's name: a-z 0-9 . _ - (up to 64, starting with a letter or digit)."
    )
    display_name: DisplayName = Field(
        description="Shown in JupyterLab's launcher (kernel.json) and in operation names; printable text."
    )
    packages: KernelSet | None = Field(
        None,
        description="A venv: a folder of `files/kernels/` (`teaching`, `minimal`, or your own with `make locks`) "
        "with requirements.in and one lock per Python (py3.12.txt, ...), installed with pip into a venv of the "
        "server's base Python.",
    )
    environment: EnvironmentFile | None = Field(
        None, description="A conda environment: a file of `files/kernels/` (`teaching.yml`, ...), made with conda."
    )

    @model_validator(mode="after")
    def _one_definition(self) -> Kernel:
        if (self.packages is None) == (self.environment is None):
            raise ValueError(
                "give either packages (a venv) or environment (a conda environment file), not both or neither"
            )
        if self.packages is not None and not (KERNEL_SETS / self.packages / "requirements.in").is_file():
            raise ValueError(
                f"packages: {self.packages!r} is not a folder of files/kernels/; choose one of {lock_sets(KERNEL_SETS)}"
            )
        if self.environment is not None and not (KERNEL_SETS / self.environment).is_file():
            raise ValueError(
                f"environment: {self.environment!r} is not an environment file of files/kernels/; "
                f"choose one of {environment_files()}"
            )
        return self

    @property
    def conda(self) -> bool:
        return self.environment is not None


class SpawnProfile(Strict):
    """A choice on the spawn page (jh_spawn_profiles): a server on the hub, or a Slurm job of this size.
    A job's partition, cpus, memory and minutes are for `cluster` profiles alone."""

    key: SlurmName = Field(description="The profile's own key.")
    display: ProfileText = Field(
        description="What users read on the spawn page: up to 80 letters, digits, spaces and , . : ( ) / + -."
    )
    where: Literal["hub", "cluster"] = Field(description="A server on the hub, or a Slurm job on a node.")
    partition: SlurmName | None = Field(
        None, description="The job's partition; default: the first of `jh_slurm_partitions`."
    )
    cpus: StrictInt = Field(1, ge=1, le=1024, description="The job's cores.")
    memory: MemorySize = Field("2G", description="The job's memory.")
    minutes: StrictInt = Field(120, ge=1, le=30 * 24 * 60, description="The job's time limit.")

    @model_validator(mode="after")
    def _sizes_for_jobs(self) -> SpawnProfile:
        given = self.model_fields_set & {"partition", "cpus", "memory", "minutes"}
        if self.where == "hub" and given:
            raise ValueError(
                f"{self.key}: {', '.join(sorted(given))} size Slurm jobs; a server on the hub has "
                "jh_user_memory_limit and the other limits"
            )
        return self

    @property
    def memory_mb(self) -> int:
        return -(-memory_bytes(self.memory) // 1024**2)


class SlurmLimits(Strict):
    """What one person may run on the cluster at once, their servers' jobs included (Slurm's
    accounting holds them to it, jh_slurm_user_limits); unset ones, in a group's, fall back."""

    jobs: StrictInt | None = Field(None, ge=1, le=10000, description="Jobs running at once.")
    queued: StrictInt | None = Field(
        None, ge=1, le=100000, description="Jobs submitted and not ended (running or waiting) at once."
    )
    cpus: StrictInt | None = Field(None, ge=1, le=100000, description="Cores of all their running jobs together.")
    memory: MemorySize | None = Field(None, description='Memory of all their running jobs together, such as `"16G"`.')

    @model_validator(mode="after")
    def _something(self) -> SlurmLimits:
        if not self.model_fields_set:
            raise ValueError("give at least one of jobs, queued, cpus, memory")
        return self

    @property
    def memory_mb(self) -> int | None:
        return -(-memory_bytes(self.memory) // 1024**2) if self.memory else None


DEFAULT_SLURM_LIMITS = SlurmLimits(jobs=4, queued=16, cpus=8, memory="32G")


class SharedHome(Strict):
    """How /home is the same folder on the hub and the nodes (jh_shared_home): users' servers
    run on any node and find their files."""

    kind: Literal["mounted", "hub-nfs", "site-nfs"] = Field(
        "mounted",
        description="`mounted`: the site mounts it already, e.g. its NFS (the deploy checks nothing of it); "
        "`hub-nfs`: the hub exports its /home to the nodes over NFS; `site-nfs`: the nodes mount "
        "`server:export`.",
    )
    server: DomainName | None = Field(None, description="With `site-nfs`: the NFS server.")
    export: RemotePath | None = Field(None, description="With `site-nfs`: the exported path on the NFS server.")

    @model_validator(mode="after")
    def _site_server(self) -> SharedHome:
        if (self.kind == "site-nfs") != (self.server is not None and self.export is not None):
            raise ValueError('kind "site-nfs" needs server and export, and only it takes them')
        return self


DEFAULT_PROFILES = [
    SpawnProfile(key="hub", display="On the hub server", where="hub"),
    SpawnProfile(key="small", display="Cluster: 1 CPU, 2 GB, 2 h", where="cluster"),
]
# The seed's teaching environment, as the default `python3` kernel.
TEACHING_KERNEL = Kernel(name="python3", display_name="Python 3", packages="teaching")
