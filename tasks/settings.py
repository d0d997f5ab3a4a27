"""Every knob of the deploy: one typed model, its defaults and its checks.

Settings are pyinfra host/group data whose names start with ``jh_`` (``jh_users``,
``jh_idle_timeout``, ...), so that a misspelt setting is an error rather than a
silently ignored value. ``deploy.py`` validates the settings of every host before
any operation is planned: bad input stops the run, naming the setting and what it
allows, and no host is changed.
"""

from __future__ import annotations

import hashlib
import re
from ipaddress import IPv4Address
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    HttpUrl,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)
from pyinfra.api.exceptions import PyinfraError

PREFIX = "jh_"
REPO = Path(__file__).resolve().parent.parent
# Static inputs of the deploy: locks, PAM service, certbot hook, NLTK fetcher.
FILES = REPO / "files"
SERVER_RELEASES = FILES / "server"
KERNEL_SETS = FILES / "kernels"

# Debian's and Ubuntu's useradd default (NAME_REGEX), at most 32 characters.
USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
RESERVED_USERS = {"root", "daemon", "bin", "sys", "nobody", "www-data", "sshd"}
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
URL_PATH = re.compile(r"^/([A-Za-z0-9._~-]+/)*$")
# Paths the hub itself serves when it sits at /.
HUB_PATHS = ("/hub/", "/user/", "/users/", "/services/", "/api/", "/.well-known/")
NLTK_INDEX = "https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/index.xml"
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
CRYPT_HASH = re.compile(r"^\$(1|5|6|y|2[aby]|gy)\$[./A-Za-z0-9$=,]+$")
# Miniforge (conda-forge's installer) for x86_64, pinned; conda is updated only when this pin
# changes. Checksum as in spack-packages (miniforge3, 26.1.1-3); aarch64 sites set both settings.
MINIFORGE_VERSION = "26.1.1-3"
MINIFORGE_URL = (
    "https://github.com/conda-forge/miniforge/releases/download/"
    f"{MINIFORGE_VERSION}/Miniforge3-{MINIFORGE_VERSION}-Linux-x86_64.sh"
)
MINIFORGE_SHA256 = "b25b828b702df4dd2a6d24d4eb56cfa912471dd8e3342cde2c3d86fe3dc2d870"


class SettingsError(PyinfraError):
    """Raised for bad settings; pyinfra prints it without a traceback."""


def _user_name(value: str) -> str:
    if not USER_NAME.match(value):
        raise ValueError(
            "must be a Unix user name: a lowercase letter or _, then up to 31 of a-z 0-9 _ -"
        )
    if value in RESERVED_USERS:
        raise ValueError(f"{value!r} is a system account and cannot be used here")
    return value


def _absolute(value: PurePosixPath) -> PurePosixPath:
    if not value.is_absolute():
        raise ValueError("must be an absolute path (start with /)")
    if ".." in value.parts:
        raise ValueError("must not contain '..'")
    if value == PurePosixPath("/"):
        raise ValueError("must not be /")
    return value


def _crypt_hash(value: str) -> str:
    if not CRYPT_HASH.match(value):
        raise ValueError(
            "must be a crypt(3) hash such as the output of `openssl passwd -6` "
            "(starts with $6$, $5$, $y$ ...); plaintext passwords are not accepted"
        )
    return value


def _domain(value: str) -> str:
    if not DOMAIN.match(value):
        raise ValueError("must be a DNS name such as hub.example.org (lowercase letters, digits, dots, hyphens)")
    return value


def _email(value: str) -> str:
    if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
        raise ValueError("must be an e-mail address such as admin@example.org")
    return value


def _url_path(value: str) -> str:
    if not URL_PATH.match(value):
        raise ValueError("must be a URL path that starts and ends with / (such as /rstudio/)")
    return value


UserName = Annotated[StrictStr, AfterValidator(_user_name)]
AbsolutePath = Annotated[PurePosixPath, AfterValidator(_absolute)]
PasswordHash = Annotated[StrictStr, AfterValidator(_crypt_hash)]
Port = Annotated[StrictInt, Field(ge=1, le=65535)]
DomainName = Annotated[StrictStr, AfterValidator(_domain)]
UrlPath = Annotated[StrictStr, AfterValidator(_url_path)]


class Strict(BaseModel):
    # Numbers, booleans and names are strict (no "yes" -> True, no "60" -> 60);
    # paths, addresses and URLs may be given as strings.
    model_config = ConfigDict(extra="forbid", frozen=True)


class HubUser(Strict):
    """A Unix account the deploy creates for a hub user."""

    name: UserName
    # Hashed only: the plaintext never leaves the admin's machine.
    password_hash: PasswordHash | None = None


class SubPathService(Strict):
    """Another web app of this server that nginx serves under a path of the hub's site."""

    path: UrlPath
    upstream: HttpUrl
    websockets: StrictBool = False


class Kernel(Strict):
    """A kernel environment: a venv with a pinned package set, or a conda environment file."""

    name: Annotated[StrictStr, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    display_name: Annotated[StrictStr, Field(min_length=1, max_length=100)]
    # venv: a folder of files/kernels/ with requirements.in and one lock per Python
    # (py3.12.txt, ...), installed with pip into a venv of the server's base Python.
    packages: StrictStr | None = None
    # conda: an environment file of files/kernels/ (teaching.yml, ...), made with conda.
    environment: StrictStr | None = None

    @model_validator(mode="after")
    def _one_definition(self) -> Kernel:
        if (self.packages is None) == (self.environment is None):
            raise ValueError("give either packages (a venv) or environment (a conda environment file), not both or neither")
        if self.packages is not None and not (KERNEL_SETS / self.packages / "requirements.in").is_file():
            known = sorted(p.parent.name for p in KERNEL_SETS.glob("*/requirements.in"))
            raise ValueError(f"packages: {self.packages!r} is not a folder of files/kernels/; choose one of {', '.join(known)}")
        if self.environment is not None and (
            "/" in self.environment or not self.environment.endswith(".yml") or not (KERNEL_SETS / self.environment).is_file()
        ):
            known = sorted(p.name for p in KERNEL_SETS.glob("*.yml"))
            raise ValueError(f"environment: {self.environment!r} is not an environment file of files/kernels/; choose one of {', '.join(known)}")
        return self

    @property
    def conda(self) -> bool:
        return self.environment is not None


# The seed's teaching environment, as the default `python3` kernel.
TEACHING_KERNEL = Kernel(name="python3", display_name="Python 3", packages="teaching")


class Settings(Strict):
    """The deploy's settings, with their defaults. Data key = ``jh_`` + field name."""

    # Layout and accounts
    install_root: AbsolutePath = PurePosixPath("/opt/jupyter")
    hub_user: UserName = "jupyter"
    users_group: UserName = "jupyterhub-users"
    users: list[HubUser] = []
    admin_users: list[UserName] = []

    # The server environment: a folder of files/server/ with requirements.in and
    # one lock per target Python (py3.12.txt, ...), or the absolute path of such a
    # folder on the controller (a site's own pinned set).
    server_release: StrictStr = "jupyterhub-6"
    # The Python the server venv (and venv kernels) are built from: the system's
    # python3, or conda's (files/conda/server-python.yml, with Node.js). auto: the
    # system's where it is 3.10 or newer, else conda's (Ubuntu 16.04-20.04, Debian 11).
    server_python: Literal["auto", "system", "conda"] = "auto"
    # Hub database and config backups taken before a server upgrade, kept this many times.
    upgrade_backups_kept: Annotated[StrictInt, Field(ge=1, le=100)] = 5

    # Conda (Miniforge by default; a Miniconda installer works too), installed when a
    # kernel has an environment file or the server Python comes from conda.
    conda_prefix: AbsolutePath = PurePosixPath("/opt/miniconda3")
    conda_installer_url: HttpUrl = HttpUrl(MINIFORGE_URL)
    conda_installer_sha256: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")] = MINIFORGE_SHA256
    # The installer as a file on the controller (offline sites): uploaded instead of
    # downloaded, and checked against jh_conda_installer_sha256 before any host is touched.
    conda_installer_file: FilePath | None = None
    conda_channels: list[Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_.-]+$")]] = Field(
        default=["conda-forge"], min_length=1
    )
    # A mirror of the channels (conda's channel_alias): channel names resolve below it.
    conda_channel_alias: HttpUrl | None = None

    # The hub
    # Where the proxy listens for browsers. Loopback by default: nginx (or an SSH
    # tunnel) faces the network.
    public_ip: IPv4Address = IPv4Address("127.0.0.1")
    public_port: Port = 8000
    idle_timeout: Annotated[StrictInt, Field(ge=60, le=30 * 86400)] = 3600
    idle_check_interval: Annotated[StrictInt, Field(ge=10, le=86400)] = 300
    # systemd OnFailure= notifier: off, or on (writes to the journal) with an
    # optional command run with the failed unit's name as its argument.
    notify_on_failure: StrictBool = False
    notify_command: StrictStr | None = None

    # Kernels users compute in, apart from the server venv; the one named python3
    # replaces the server's own default kernel.
    kernels: list[Kernel] = [TEACHING_KERNEL]
    # Keep the environment of a kernel removed from jh_kernels (it is unregistered either way).
    keep_removed_kernel_envs: StrictBool = False
    # NLTK data shared read-only by every kernel (NLTK_DATA), and packages to fetch into it.
    nltk_packages: list[Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")]] = []
    # The NLTK data index (index.xml) packages come from: NLTK's own, or a mirror.
    nltk_index_url: HttpUrl = HttpUrl(NLTK_INDEX)

    # The web front: with a domain, nginx terminates TLS for it and proxies to the
    # hub (and to jh_services); the proxy then stays on loopback. Without one, no nginx.
    domain: DomainName | None = None
    # letsencrypt: certbot over HTTP-01 (webroot); manual: files from the controller;
    # selfsigned: made on the server (intranets, the demo).
    certificate: Literal["letsencrypt", "manual", "selfsigned"] = "letsencrypt"
    acme_directory_url: HttpUrl = HttpUrl(LETS_ENCRYPT)
    acme_staging: StrictBool = False
    acme_email: Annotated[StrictStr, AfterValidator(_email)] | None = None
    certificate_file: FilePath | None = None
    certificate_key_file: FilePath | None = None
    # Where the hub sits on the site ("/" or a path like "/jupyter/").
    base_url: UrlPath = "/"
    services: list[SubPathService] = []

    # ufw: deny incoming traffic but SSH (this port) and the web ports (80 and 443
    # with jh_domain, else jh_public_port). Off: the firewall is left as it is.
    firewall: StrictBool = False
    firewall_ssh_port: Port = 22

    # Reaching the outside world from the targets
    # CA certificates (PEM files on the controller) the targets must trust, e.g.
    # a TLS-intercepting proxy's. Copied to /usr/local/share/ca-certificates.
    extra_ca_certificates: list[FilePath] = []
    # A package index for pip (a mirror); None keeps pip's own default.
    pip_index_url: HttpUrl | None = None
    # An npm registry (a mirror); None keeps npm's own default.
    npm_registry_url: HttpUrl | None = None

    # Day-2 operations (README: "Day-2 operations")
    # tasks.backup.backup: the controller folder archives go to (a subfolder per host),
    # and whether users' home directories go in too.
    backup_dir: Path = Path("backups")
    backup_home_dirs: StrictBool = False
    # tasks.backup.restore: the archive to put back (made by tasks.backup.backup).
    restore_archive: FilePath | None = None
    # tasks.uninstall.remove: also remove the conda installation / the hub users'
    # accounts and home directories (kept by default).
    uninstall_conda: StrictBool = False
    uninstall_users: StrictBool = False

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.hub_user == self.users_group:
            raise ValueError("jh_users_group must differ from jh_hub_user")
        names = [u.name for u in self.users]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"jh_users lists {', '.join(duplicates)} more than once")
        if self.hub_user in names or self.hub_user in self.admin_users:
            raise ValueError(
                f"the hub's own account {self.hub_user!r} cannot be a hub user or admin"
            )
        kernel_names = [k.name for k in self.kernels]
        if len(set(kernel_names)) != len(kernel_names):
            raise ValueError("jh_kernels: two kernels have the same name")
        if self.idle_check_interval > self.idle_timeout:
            raise ValueError("jh_idle_check_interval must not exceed jh_idle_timeout")
        if self.notify_command and not self.notify_on_failure:
            raise ValueError("jh_notify_command needs jh_notify_on_failure = True")
        self._check_web()
        if not (self.server_release_dir / "requirements.in").is_file():
            known = sorted(p.parent.name for p in SERVER_RELEASES.glob("*/requirements.in"))
            raise ValueError(
                f"jh_server_release: {self.server_release!r} is not a folder of files/server/ "
                f"(choose one of {', '.join(known)}) nor the absolute path of a folder with a requirements.in"
            )
        self._check_conda()
        return self

    def _check_conda(self) -> None:
        if self.conda_prefix == self.install_root or self.install_root in self.conda_prefix.parents:
            raise ValueError("jh_conda_prefix must be outside jh_install_root")
        if self.conda_installer_file is not None:
            actual = hashlib.sha256(self.conda_installer_file.read_bytes()).hexdigest()
            if actual != self.conda_installer_sha256:
                raise ValueError(
                    f"jh_conda_installer_file {self.conda_installer_file} has sha256 {actual}, "
                    f"but jh_conda_installer_sha256 is {self.conda_installer_sha256}: "
                    "give the installer that matches the pinned checksum"
                )

    def _check_web(self) -> None:
        if self.domain is None:
            web_only = ("certificate_file", "certificate_key_file", "services", "acme_email")
            given = [f"jh_{name}" for name in web_only if name in self.model_fields_set]
            if given or self.base_url != "/":
                raise ValueError(f"{', '.join(given) or 'jh_base_url'} needs jh_domain (the nginx front)")
            return
        if not self.public_ip.is_loopback:
            raise ValueError("with jh_domain set, nginx faces the network: jh_public_ip must stay on loopback")
        manual = self.certificate_file is not None, self.certificate_key_file is not None
        if self.certificate == "manual" and not all(manual):
            raise ValueError("jh_certificate = 'manual' needs jh_certificate_file and jh_certificate_key_file")
        if self.certificate != "manual" and any(manual):
            raise ValueError("jh_certificate_file and jh_certificate_key_file need jh_certificate = 'manual'")
        if self.acme_staging and str(self.acme_directory_url) != LETS_ENCRYPT:
            raise ValueError("jh_acme_staging chooses Let's Encrypt's staging server: leave jh_acme_directory_url unset")
        # The hub's own paths (all of its namespace when it sits below a base URL) and
        # earlier services: a service may neither sit inside one nor contain one.
        taken = [*HUB_PATHS] if self.base_url == "/" else [self.base_url, "/.well-known/"]
        for index, service in enumerate(self.services):
            for path in taken:
                if service.path == "/" or service.path.startswith(path) or path.startswith(service.path):
                    raise ValueError(f"jh_services[{index}]: path {service.path} overlaps {path}")
            taken.append(service.path)

    @property
    def server_release_dir(self) -> Path:
        release = Path(self.server_release)
        return release if release.is_absolute() else SERVER_RELEASES / self.server_release

    @property
    def local_url(self) -> str:
        """The hub's URL through the proxy, from the host itself."""
        address = "127.0.0.1" if str(self.public_ip) == "0.0.0.0" else self.public_ip
        return f"http://{address}:{self.public_port}{self.base_url}"

    @property
    def acme_server(self) -> str:
        return LETS_ENCRYPT_STAGING if self.acme_staging else str(self.acme_directory_url)

    # Derived paths, so templates and tasks agree on them.
    @property
    def venv(self) -> PurePosixPath:
        """The server venv: a link to one of server_envs, switched over on upgrades."""
        return self.install_root / ".venv"

    @property
    def server_envs(self) -> PurePosixPath:
        """Server venvs, one per lock: the current one and the one before it (for rollback)."""
        return self.install_root / "envs"

    @property
    def conda_server_env(self) -> PurePosixPath:
        """The conda environment with the server's Python and Node.js (old distributions)."""
        return self.conda_prefix / "envs" / "jupyterhub-server"

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
    def state_dir(self) -> PurePosixPath:
        """The hub's database and secrets, owned by the hub user."""
        return self.install_root / "state"

    @property
    def proxy_dir(self) -> PurePosixPath:
        """configurable-http-proxy's node_modules: inside the venv, replaced with it."""
        return self.venv / "share" / "configurable-http-proxy"

    @property
    def config_file(self) -> PurePosixPath:
        return self.install_root / "jupyterhub_config.py"

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Settings:
        """Build settings from host data (the ``jh_`` keys), or raise SettingsError."""
        values = {k[len(PREFIX) :]: v for k, v in data.items() if k.startswith(PREFIX)}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise SettingsError(_explain(error)) from None


def _explain(error: ValidationError) -> str:
    lines = ["invalid settings (no host was changed):"]
    for problem in error.errors():
        location = [str(part) for part in problem["loc"]]
        setting = PREFIX + location[0] if location else ""
        where = "".join(f"[{part}]" for part in location[1:]) + (": " if location else "")
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = f"unknown setting; known settings are: {', '.join(PREFIX + f for f in Settings.model_fields)}"
        lines.append(f"  {setting}{where}{message}")
    return "\n".join(lines)


def current_settings() -> Settings:
    """The current host's settings, after checking every host's.

    Checking all hosts at once means one bad inventory entry stops the whole run
    before any host is changed, not just the host it belongs to.
    """
    from pyinfra import host, state

    for other in state.inventory:
        if other.name not in _VALIDATED:
            try:
                _VALIDATED[other.name] = Settings.from_data(other.data.dict())
            except SettingsError as error:
                raise SettingsError(f"host {other.name}: {error}") from None
    return _VALIDATED[host.name]


_VALIDATED: dict[str, Settings] = {}
