"""Every knob of the deploy: one typed model, its defaults and its checks.

Settings are pyinfra host/group data whose names start with ``jh_`` (``jh_users``,
``jh_idle_timeout``, ...), so that a misspelt setting is an error rather than a
silently ignored value. ``deploy.py`` validates the settings of every host before
any operation is planned: bad input stops the run, naming the setting and what it
allows, and no host is changed.

No setting can inject into a shell line, a unit file, the sudoers rule, the nginx site
or the hub's Python config: every string is checked against a whitelist, matched
against the whole value (``re.fullmatch``; no trailing newline slips through), and
what is checked is what the deploy renders. Names, paths and URLs are checked here,
with the rule in the error message; what depends on a host (its existing accounts)
is checked from facts before that host changes (tasks/preflight.py).
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path, PurePath, PurePosixPath
from typing import Annotated, Any, Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.utils import CryptographyDeprecationWarning
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FilePath,
    HttpUrl,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)
from pyinfra.api.exceptions import PyinfraError

from tasks.layout import HUB_API_PORT, PROXY_API_PORT, Layout

PREFIX = "jh_"
REPO = Path(__file__).resolve().parent.parent
# Static inputs of the deploy: locks, PAM service, certbot hook, NLTK fetcher.
FILES = REPO / "files"
SERVER_RELEASES = FILES / "server"
KERNEL_SETS = FILES / "kernels"

# Every pattern here is used with re.fullmatch: it must match the whole value.
# Debian's and Ubuntu's useradd default (NAME_REGEX), at most 32 characters.
USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN = re.compile(rf"(?=.{{1,253}}\Z)(?:{_LABEL}\.)*{_LABEL}")
URL_PATH = re.compile(r"/(?:[A-Za-z0-9._~-]+/)*")
CRYPT_HASH = re.compile(r"\$(?:1|5|6|y|2[aby]|gy)\$[./A-Za-z0-9$=,]+")
EMAIL = re.compile(r"[A-Za-z0-9_%+][A-Za-z0-9._%+-]{0,63}@(?P<domain>.+)")
# A file or folder name of files/ (a kernel set, an environment file, a server release, a CA file's stem).
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# An LDAP distinguished name of plain attribute=value parts (values: letters, digits, space . _ -,
# no space at either end); in a bind DN template one value is exactly {username}.
_RDN_VALUE = r"[A-Za-z0-9._-](?:[A-Za-z0-9 ._-]*[A-Za-z0-9._-])?"
_RDN = rf"[A-Za-z][A-Za-z0-9-]*=(?:{_RDN_VALUE})"
LDAP_DN = re.compile(rf"{_RDN}(?:,{_RDN})*")
LDAP_DN_TEMPLATE = re.compile(rf"(?:{_RDN},)*[A-Za-z][A-Za-z0-9-]*=\{{username\}}(?:,{_RDN})+")
KERNEL_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
NLTK_PACKAGE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
CONDA_CHANNEL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
SHA256 = re.compile(r"[0-9a-f]{64}")
# Absolute paths: letters, digits and . _ - between single slashes. No %, so no systemd
# specifiers; no spaces, quotes or $, so nothing a shell line, a unit or sudoers reads.
HOST_PATH = re.compile(r"(?:/[A-Za-z0-9._-]+)+/?")
NOTIFY_ARGUMENT = re.compile(r"[A-Za-z0-9._/:=@+,-]+")
# URLs as given: letters, digits, -._~:/?#[]@!+,= and %XX escapes. Not &: URLs reach shell
# lines unquoted, where & ends a command; not $ ; | < > ( ) { } \ * ' " ` or whitespace.
URL_CHAR = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!+,=-]")
URL_TEXT = re.compile(r"(?:[A-Za-z0-9._~:/?#\[\]@!+,=-]|%[0-9A-Fa-f]{2})+")
# A jh_services upstream: http(s)://host[:port]/path/, nothing else (nginx's proxy_pass).
UPSTREAM = re.compile(
    r"https?://(?P<host>\[[0-9A-Fa-f:.]+\]|[a-z0-9.-]+)(?::(?P<port>[1-9][0-9]{0,4}))?(?P<path>(?:/[A-Za-z0-9._~-]+)*/)?"
)
# Names a host resolves to itself (Debian's /etc/hosts, RFC 6761).
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})

# Where jh_install_root and jh_conda_prefix may not be (nor below): the system's own trees.
SYSTEM_DIRS = tuple(
    PurePosixPath(p)
    for p in (
        "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt",
        "/proc", "/root", "/run", "/sbin", "/snap", "/sys", "/tmp", "/usr", "/var",
    )
)  # fmt: skip
# Folders for sites' own software: a folder below them is fine, they themselves are not.
SHARED_DIRS = (PurePosixPath("/opt"), PurePosixPath("/srv"))

# Accounts and groups of Debian's base-passwd, systemd and Ubuntu's server image: the
# deploy must neither make nor reuse them (names starting with _ or systemd- are theirs too).
SYSTEM_NAMES = frozenset({
    # base-passwd users
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy",
    "www-data", "backup", "list", "irc", "gnats", "nobody",
    # base-passwd groups
    "adm", "tty", "disk", "kmem", "dialout", "fax", "voice", "cdrom", "floppy", "tape", "sudo", "audio",
    "dip", "operator", "src", "shadow", "utmp", "video", "sasl", "plugdev", "staff", "users", "nogroup",
    # systemd, dbus, OpenSSH, rsyslog, cron, udev and Ubuntu's server image
    "messagebus", "sshd", "ssh", "syslog", "crontab", "input", "kvm", "render", "sgx", "netdev", "uuidd",
    "tcpdump", "tss", "landscape", "pollinate", "polkitd", "dnsmasq", "usbmux", "fwupd-refresh", "ssl-cert",
})  # fmt: skip
SYSTEM_PREFIXES = ("_", "systemd-")
# Groups whose members are root in all but name or read what only root should
# (tasks/preflight.py refuses memberships in them on the host).
# Groups whose members are root in all but name, or read what only root should (Debian, Ubuntu).
PRIVILEGED_GROUPS = frozenset(
    # sudo and polkit administrators (admin: Ubuntu before 12.04; wheel: where sites add it)
    ["sudo", "admin", "wheel", "lpadmin"]
    # root's group; raw disks and memory; /usr/local (in root's PATH) on Debian
    + ["root", "sys", "disk", "kmem", "staff"]
    # password hashes, logs (with other users' secrets), TLS private keys
    + ["shadow", "adm", "systemd-journal", "ssl-cert"]
    # container and VM daemons that start root-owned containers on request
    + ["docker", "lxd", "incus-admin", "libvirt", "libvirtd", "microk8s"]
)

# Paths the hub itself serves when it sits at /.
HUB_PATHS = ("/hub/", "/user/", "/users/", "/services/", "/api/", "/.well-known/")
NLTK_INDEX = "https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/index.xml"
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
# Miniforge (conda-forge's installer) for x86_64, pinned; conda is updated only when this pin
# changes. Checksum as in spack-packages (miniforge3, 26.1.1-3); aarch64 sites set both settings.
MINIFORGE_VERSION = "26.1.1-3"
MINIFORGE_URL = (
    "https://github.com/conda-forge/miniforge/releases/download/"
    f"{MINIFORGE_VERSION}/Miniforge3-{MINIFORGE_VERSION}-Linux-x86_64.sh"
)
MINIFORGE_SHA256 = "b25b828b702df4dd2a6d24d4eb56cfa912471dd8e3342cde2c3d86fe3dc2d870"
# PEM files larger than this are not certificates or keys (Mozilla's whole CA bundle is a fifth of it).
PEM_LIMIT = 1024 * 1024
PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)
PRIVATE_KEY_BLOCK = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
# A memory size as systemd reads it: bytes, or a number with a K, M, G or T suffix (base 1024).
MEMORY_SIZE = re.compile(r"(?P<number>[1-9][0-9]{0,12})(?P<unit>[KMGT]?)")
MEMORY_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
# A JupyterLab plugin id, as its settings schema names it ("@jupyterlab/apputils-extension:notification").
LAB_PLUGIN = re.compile(r"@?[a-z0-9][a-z0-9._-]*(?:/[a-z0-9][a-z0-9._-]*)?:[a-zA-Z0-9][a-zA-Z0-9._-]*")
LAB_PLUGIN_RULE = 'must be a JupyterLab plugin id such as "@jupyterlab/apputils-extension:notification"'
# What every managed hub's JupyterLab does differently from JupyterLab's defaults: no news
# pop-up asking each user whether to fetch Jupyter news from the internet.
LAB_DEFAULTS = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}
# Below this no JupyterLab server starts; a limit under it is a typo (256 for 256M).
MIN_USER_MEMORY = 64 * 1024**2


class SettingsError(PyinfraError):
    """Raised for bad settings; pyinfra prints it without a traceback."""


def _whole(pattern: re.Pattern[str], allowed: str) -> AfterValidator:
    """A check that the whole string matches pattern; the message says what is allowed."""

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(allowed)
        return value

    return AfterValidator(check)


def _user_name(value: str) -> str:
    if not USER_NAME.fullmatch(value):
        raise ValueError("must be a Unix user name: a lowercase letter or _, then up to 31 of a-z 0-9 _ -")
    return value


def _system_name(value: str) -> bool:
    return value in SYSTEM_NAMES or value.startswith(SYSTEM_PREFIXES)


def _account_name(value: str) -> str:
    _user_name(value)
    if _system_name(value):
        raise ValueError(f"{value!r} is a system account or group on Debian/Ubuntu; choose another name")
    if value in PRIVILEGED_GROUPS:
        raise ValueError(f"{value!r} is a privileged group: an account of that name would get it; choose another name")
    return value


def _group_name(value: str) -> str:
    _user_name(value)
    if value in PRIVILEGED_GROUPS:
        raise ValueError(f"{value!r} is a privileged group (its members would get hub logins); choose another group")
    if _system_name(value):
        raise ValueError(f"{value!r} is a system group or account on Debian/Ubuntu; choose another group")
    return value


def _path_problem(text: str) -> str | None:
    """Why text is not an absolute path of the conservative kind, or None."""
    if not text.startswith("/"):
        return "must be an absolute path (start with /)"
    parts = text.rstrip("/").split("/")[1:]
    if text == "/":
        return "must not be /"
    if ".." in parts:
        return "must not contain '..'"
    if not HOST_PATH.fullmatch(text) or "." in parts:
        return "must be an absolute path of letters, digits and . _ - between single slashes (no //, no . parts)"
    return None


def _host_path_text(value: Any) -> Any:
    """The path as given (before pathlib drops // and . parts)."""
    if isinstance(value, PurePath):
        value = str(value)
    if isinstance(value, str) and (problem := _path_problem(value)):
        raise ValueError(problem)
    return value


def _host_path(value: PurePosixPath) -> PurePosixPath:
    for system in SYSTEM_DIRS:
        if value == system or system in value.parents:
            raise ValueError(
                f"must not be {system} or below it (a system directory); use e.g. /opt/jupyter or /srv/jupyter"
            )
    if value in SHARED_DIRS:
        raise ValueError(f"must not be {value} itself; use a folder below it such as {value}/jupyter")
    return value


# Where off-boarded homes may not go: trees users, the system or the kernel write.
NOT_FOR_ARCHIVES = tuple(
    PurePosixPath(p) for p in ("/home", "/tmp", "/var/tmp", "/run", "/dev", "/proc", "/sys", "/boot", "/etc", "/usr")
)


def _offboard_path(value: PurePosixPath) -> PurePosixPath:
    for tree in NOT_FOR_ARCHIVES:
        if value == tree or tree in value.parents:
            raise ValueError(f"must not be {tree} or below it; use e.g. /var/backups/jupyterhub-offboard")
    if len(value.parts) < 3:
        raise ValueError(
            "must be a folder of its own, two levels down at least (e.g. /var/backups/jupyterhub-offboard)"
        )
    return value


def _server_release(value: str) -> str:
    # A path here is read on the controller (a site's own locks, in a home folder or a
    # temporary one), never written on a host: the host-path characters apply, the
    # system-directory rule does not. Its folder name names the server venv on the host.
    if value.startswith("/"):
        problem = _path_problem(value)
        if problem:
            raise ValueError(problem)
        if not PLAIN_NAME.fullmatch(PurePosixPath(value).name):
            raise ValueError("the folder's name must start with a letter or digit (it names the server venv)")
    elif not PLAIN_NAME.fullmatch(value):
        raise ValueError(
            "must be a folder name of files/server/ (letters, digits, . _ -, starting with a letter or digit) "
            "or the absolute path of such a folder"
        )
    return value


def _crypt_hash(value: str) -> str:
    if not CRYPT_HASH.fullmatch(value):
        raise ValueError(
            "must be a crypt(3) hash such as the output of `openssl passwd -6` "
            "(starts with $6$, $5$, $y$ ...); plaintext passwords are not accepted"
        )
    return value


def _domain(value: str) -> str:
    if not DOMAIN.fullmatch(value):
        raise ValueError("must be a DNS name such as hub.example.org (lowercase letters, digits, dots, hyphens)")
    return value


def _email(value: str) -> str:
    match = EMAIL.fullmatch(value)
    if not match or not DOMAIN.fullmatch(match["domain"]) or "." not in match["domain"]:
        raise ValueError(
            "must be an e-mail address such as admin@example.org: letters, digits and . _ % + - "
            "(not first: . -), then @ and a DNS name with a dot (lowercase)"
        )
    return value


def _url_path(value: str) -> str:
    if not URL_PATH.fullmatch(value) or {".", ".."} & set(value.split("/")):
        raise ValueError("must be a URL path that starts and ends with / (such as /rstudio/): letters, digits, . _ ~ -")
    return value


def _url_text(value: Any) -> Any:
    """The URL as given: pydantic would drop tabs and newlines, and escape spaces, silently."""
    if isinstance(value, HttpUrl):
        value = str(value)
    if isinstance(value, str) and value and not URL_TEXT.fullmatch(value):
        bad = next(c for c in re.sub(r"%[0-9A-Fa-f]{2}", "", value) if not URL_CHAR.fullmatch(c))
        found = "a % that starts no %XX escape" if bad == "%" else repr(bad)
        raise ValueError(f"must be an http(s) URL of letters, digits, -._~:/?#[]@!+,= and %XX escapes; it has {found}")
    return value


def _url(value: HttpUrl) -> HttpUrl:
    if value.username is not None or value.password is not None:
        raise ValueError("must not hold a user name or password (user:password@); give credentials another way")
    # What the deploy renders is str(value), which pydantic normalised: check it too.
    if not URL_TEXT.fullmatch(str(value)):
        raise ValueError("must be an http(s) URL of letters, digits, -._~:/?#[]@!+,= and %XX escapes")
    return value


UPSTREAM_FORM = (
    "must be http(s)://host[:port]/path/ with a lowercase DNS name or an IP address as host and a path "
    "ending in / (letters, digits, . _ ~ -); no query, fragment, user:password or nginx variables"
)


def _upstream_problem(text: str) -> str | None:
    match = UPSTREAM.fullmatch(text)
    if not match:
        return UPSTREAM_FORM
    host = match["host"]
    if host.startswith("["):
        try:
            IPv6Address(host[1:-1])
        except ValueError:
            return f"{UPSTREAM_FORM}; {host} is not an IPv6 address"
    else:
        try:
            IPv4Address(host)
        except ValueError:
            # A name ending in a number is an address in another spelling (2130706433, 127.1, 0x7f.1).
            if not DOMAIN.fullmatch(host) or not host.rsplit(".", 1)[-1][0].isalpha():
                return f"{UPSTREAM_FORM}; {host!r} is neither a DNS name nor a dotted IPv4 address"
    if match["port"] and int(match["port"]) > 65535:
        return "the port must be 1-65535"
    if {".", ".."} & set((match["path"] or "/").split("/")):
        return f"{UPSTREAM_FORM}; no . or .. parts"
    return None


def _local_host(host: str) -> bool:
    """Whether host (as in a URL) is this machine's loopback or unspecified address, or localhost."""
    host = host.removeprefix("[").removesuffix("]")
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        address = ip_address(host)
    except ValueError:
        return False
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _upstream_text(value: Any) -> Any:
    value = _url_text(value)
    if isinstance(value, str) and (problem := _upstream_problem(value)):
        raise ValueError(problem)
    return value


def _upstream(value: HttpUrl) -> HttpUrl:
    _url(value)
    if problem := _upstream_problem(str(value)):
        raise ValueError(problem)
    if _local_host(value.host or ""):
        if value.port == HUB_API_PORT:
            raise ValueError(f"must not point at the hub's own API (port {HUB_API_PORT} on this host)")
        if value.port == PROXY_API_PORT:
            raise ValueError(f"must not point at the proxy's API (port {PROXY_API_PORT} on this host)")
    return value


def _notify_command(value: str) -> str:
    program, *arguments = value.split(" ")
    if _path_problem(program) or program.endswith("/") or not all(NOTIFY_ARGUMENT.fullmatch(a) for a in arguments):
        raise ValueError(
            "must be the absolute path of a program, then arguments separated by single spaces, each of "
            "letters, digits and . _ / : = @ + , - (no quotes, $, %, ; or backslashes)"
        )
    return value


def memory_bytes(value: str) -> int:
    """A checked memory size ("256M") in bytes."""
    match = MEMORY_SIZE.fullmatch(value)
    assert match, value
    return int(match["number"]) * MEMORY_UNITS[match["unit"]]


def _memory_size(value: str) -> str:
    if not MEMORY_SIZE.fullmatch(value):
        raise ValueError('must be a memory size: a whole number with a K, M, G or T suffix such as "512M" or "8G"')
    if memory_bytes(value) < MIN_USER_MEMORY:
        raise ValueError(f"{value} is too small for a JupyterLab server: at least 64M")
    return value


def _cpu_cores(value: float) -> float:
    # systemd's CPUQuota= is a whole percentage of one core.
    if abs(value * 100 - round(value * 100)) > 1e-6:
        raise ValueError(f"{value} has more than two decimals: give cores to the hundredth, such as 1.5 or 0.25")
    return value


def _unix_group(value: str) -> str:
    if not USER_NAME.fullmatch(value):
        raise ValueError("must be a Unix group name: a lowercase letter or _, then up to 31 of a-z 0-9 _ -")
    return value


def _display_name(value: str) -> str:
    for char in value:
        if not char.isprintable():
            raise ValueError(
                f"must be printable text; it has {char!r} (U+{ord(char):04X}), a control or invisible character"
            )
    if value != value.strip():
        raise ValueError("must not start or end with a space")
    return value


def _kernel_set(value: str) -> str:
    if not PLAIN_NAME.fullmatch(value):
        raise ValueError(
            f"must be a folder name of files/kernels/ (letters, digits, . _ -; no /); choose one of {_known_sets()}"
        )
    return value


def _environment_file(value: str) -> str:
    if not PLAIN_NAME.fullmatch(value) or not value.endswith(".yml"):
        known = ", ".join(sorted(p.name for p in KERNEL_SETS.glob("*.yml")))
        raise ValueError(
            f"{value!r} is not an environment file of files/kernels/ (a file name ending in .yml, no /); choose one of {known}"
        )
    return value


def _known_sets() -> str:
    return ", ".join(sorted(p.parent.name for p in KERNEL_SETS.glob("*/requirements.in")))


def _pem_blocks(path: Path, what: str) -> list[tuple[str, str]]:
    """The PEM blocks of path as (label, text); refuses anything but blocks and whitespace."""
    if path.stat().st_size > PEM_LIMIT:
        raise ValueError(f"is larger than 1 MiB: not {what} in PEM form")
    try:
        text = path.read_bytes().decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(
            f"is not a PEM text file (binary or non-ASCII content); it must hold {what} in PEM form "
            "(a DER file converts with `openssl x509 -inform der`)"
        ) from None
    if what != "a private key" and PRIVATE_KEY_BLOCK.search(text):
        # The key itself is not repeated in the message.
        where = "it goes in jh_certificate_key_file" if what == "a certificate" else "give the certificate only"
        raise ValueError(f"holds a private key where {what} belongs ({where}); the key is not shown here")
    blocks = [(match[1], match[0]) for match in PEM_BLOCK.finditer(text)]
    if PEM_BLOCK.sub("", text).strip():
        raise ValueError(f"holds text outside its PEM blocks: it must hold {what} in PEM form and nothing else")
    return blocks


def _certificates(path: Path, what: str) -> list[x509.Certificate]:
    """The certificates of a PEM file that holds certificates and nothing else."""
    blocks = _pem_blocks(path, what)
    if not blocks:
        raise ValueError(f"holds no PEM certificate (-----BEGIN CERTIFICATE-----); it must hold {what}")
    certificates = []
    for number, (label, block) in enumerate(blocks, 1):
        if label != "CERTIFICATE":
            raise ValueError(f"holds a {label} block (block {number}): only CERTIFICATE blocks are allowed")
        try:
            with warnings.catch_warnings():  # old roots with a negative serial number
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                certificates.append(x509.load_pem_x509_certificate(block.encode()))
        except ValueError:
            raise ValueError(f"block {number} is not a valid certificate") from None
    return certificates


def _ca_file(path: Path) -> Path:
    # Uploaded as <stem>.crt (tasks/system.py); update-ca-certificates reads only *.crt.
    if not PLAIN_NAME.fullmatch(path.stem):
        raise ValueError(
            f"the file name {path.name!r} must start with a letter or digit and hold only letters, digits "
            "and . _ - (it is uploaded as <name without suffix>.crt)"
        )
    # A CA certificate: basicConstraints CA:TRUE, or no basicConstraints at all (old v1
    # roots, and self-signed certificates made without extensions). CA:FALSE is a
    # server's certificate: its issuer belongs here, not it.
    for number, certificate in enumerate(_certificates(path, "a CA certificate"), 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            continue
        except ValueError:
            raise ValueError(f"certificate {number} has malformed extensions") from None
        if not constraints.ca:
            raise ValueError(
                f"certificate {number} is not a CA certificate (basicConstraints CA:FALSE): "
                "give the certificate of the CA that issued it"
            )
    return path


def _certificate_file(path: Path) -> Path:
    _certificates(path, "a certificate")
    return path


def _private_key(path: Path) -> Any:
    blocks = _pem_blocks(path, "a private key")
    if len(blocks) != 1 or not blocks[0][0].endswith("PRIVATE KEY"):
        raise ValueError("must hold exactly one PEM private key (-----BEGIN PRIVATE KEY-----) and nothing else")
    try:
        return serialization.load_pem_private_key(blocks[0][1].encode(), password=None)
    except TypeError:
        raise ValueError("holds an encrypted private key: nginx needs it without a passphrase") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError("does not hold a valid PEM private key") from None


def _private_key_file(path: Path) -> Path:
    _private_key(path)
    return path


def _public_key(key: Any) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


AccountName = Annotated[StrictStr, AfterValidator(_account_name)]
GroupName = Annotated[StrictStr, AfterValidator(_group_name)]
HostPath = Annotated[PurePosixPath, BeforeValidator(_host_path_text), AfterValidator(_host_path)]
LdapDn = Annotated[
    StrictStr,
    _whole(
        LDAP_DN,
        "must be an LDAP DN such as cn=ml-2026,ou=groups,dc=example,dc=org "
        "(attribute=value parts; values of letters, digits, space . _ -)",
    ),
]
OffboardPath = Annotated[PurePosixPath, BeforeValidator(_host_path_text), AfterValidator(_offboard_path)]
PasswordHash = Annotated[StrictStr, AfterValidator(_crypt_hash)]
Port = Annotated[StrictInt, Field(ge=1, le=65535)]
DomainName = Annotated[StrictStr, AfterValidator(_domain)]
UrlPath = Annotated[StrictStr, AfterValidator(_url_path)]
Url = Annotated[HttpUrl, BeforeValidator(_url_text), AfterValidator(_url)]
Upstream = Annotated[HttpUrl, BeforeValidator(_upstream_text), AfterValidator(_upstream)]
CaFile = Annotated[FilePath, AfterValidator(_ca_file)]
MemorySize = Annotated[StrictStr, AfterValidator(_memory_size)]
CpuCores = Annotated[StrictInt | StrictFloat, Field(ge=0.01, le=1024), AfterValidator(_cpu_cores)]
TasksLimit = Annotated[StrictInt, Field(ge=32, le=4194304)]


class Strict(BaseModel):
    # Numbers, booleans and names are strict (no "yes" -> True, no "60" -> 60);
    # paths, addresses and URLs may be given as strings.
    model_config = ConfigDict(extra="forbid", frozen=True)


class HubUser(Strict):
    """A Unix account the deploy creates for a hub user, or off-boards (state "absent")."""

    name: AccountName
    # Hashed only: the plaintext never leaves the admin's machine.
    password_hash: PasswordHash | None = None
    # absent: server stopped, hub user and tokens deleted, home archived to jh_offboard_dir
    # and removed, account removed (tasks/people.py).
    state: Literal["present", "absent"] = "present"

    @model_validator(mode="after")
    def _no_password_to_remove(self) -> HubUser:
        if self.state == "absent" and self.password_hash is not None:
            raise ValueError(f"{self.name} is absent: drop its password_hash")
        return self


class SharedDir(Strict):
    """A folder of shared data (jh_shared_dirs), linked from the homes of the users who may read it."""

    path: HostPath
    # read-only: root's, readable by the hub users (or by group's members); group-writable:
    # the group's members write there, each may change the others' files (setgid, 2770).
    mode: Literal["read-only", "group-writable"]
    group: GroupName | None = None

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

    server: DomainName
    port: Port | None = None
    # starttls: TLS before the bind on port 389 (LDAPv3's way); ldaps: TLS from the start, 636.
    tls: Literal["starttls", "ldaps"] = "starttls"
    bind_dn_template: Annotated[
        StrictStr,
        _whole(
            LDAP_DN_TEMPLATE,
            "must be the DN a user binds as, with {username} as one whole value, such as "
            "uid={username},ou=people,dc=example,dc=org",
        ),
    ]
    # Members of any of these groups may log in (member, uniqueMember or memberUid); the people
    # of jh_users too. Members not in jh_users get a Unix account at their first login.
    allowed_groups: list[LdapDn] = []

    @property
    def server_port(self) -> int:
        return self.port or (636 if self.tls == "ldaps" else 389)


def _https(value: HttpUrl) -> HttpUrl:
    if value.scheme != "https":
        raise ValueError("must be an https:// URL (tokens and secrets cross it)")
    return value


def _secret_file(path: Path) -> Path:
    text = path.read_bytes()
    if not 0 < len(text.strip()) <= 1024 or b"\n" in text.strip() or not text.strip().isascii():
        raise ValueError(f"{path} must hold the secret alone: one line of printable ASCII, at most 1 KiB")
    return path


NATIVE_PACKAGE = "jupyterhub-nativeauthenticator"
GITHUB_ORG = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?")
OIDC_NAME = re.compile(r"[A-Za-z0-9._:/@-]{1,200}")


class Oidc(Strict):
    """The OpenID Connect provider that checks hub logins (jh_authenticator = "oidc"): Keycloak,
    Azure AD, Google... Its endpoints come from the issuer's discovery document, read by the
    deploy on the host; the hub reads the client secret from a file only it and root can read."""

    issuer: Annotated[Url, AfterValidator(_https)]
    client_id: Annotated[StrictStr, _whole(OIDC_NAME, "must be letters, digits and . _ : / @ - (the provider's id)")]
    # A file on the controller holding the client secret (uploaded root:<hub user> 0640).
    client_secret_file: Annotated[FilePath, AfterValidator(_secret_file)]
    scopes: list[Annotated[StrictStr, _whole(OIDC_NAME, "must be a scope name")]] = ["openid", "profile", "email"]
    # The claim whose value becomes the Unix name (lower-cased; must then be a Unix name).
    username_claim: Annotated[StrictStr, _whole(OIDC_NAME, "must be a claim name")] = "preferred_username"
    groups_claim: Annotated[StrictStr, _whole(OIDC_NAME, "must be a claim name")] = "groups"
    # Members of any of these groups (the groups claim) may log in; the people of jh_users too.
    allowed_groups: list[Annotated[StrictStr, _whole(OIDC_NAME, "must be a group name of the provider")]] = []

    @model_validator(mode="after")
    def _openid(self) -> Oidc:
        if "openid" not in self.scopes:
            raise ValueError("scopes must include openid")
        return self


class GitHub(Strict):
    """GitHub accounts log in (jh_authenticator = "github"): a GitHub OAuth app of the site, its
    callback https://<jh_domain>/hub/oauth_callback."""

    client_id: Annotated[StrictStr, _whole(OIDC_NAME, "must be letters, digits and . _ : / @ - (the app's id)")]
    client_secret_file: Annotated[FilePath, AfterValidator(_secret_file)]
    # Members of these organizations may log in (GitHub's API, scope read:org); jh_users too.
    allowed_organizations: list[
        Annotated[StrictStr, _whole(GITHUB_ORG, "must be a GitHub organization name (letters, digits, -)")]
    ] = []


class SubPathService(Strict):
    """Another web app of this server that nginx serves under a path of the hub's site."""

    path: UrlPath
    # Literally http(s)://host:port/path/: it becomes nginx's proxy_pass.
    upstream: Upstream
    websockets: StrictBool = False


class Limits(Strict):
    """Per-user limits of the members of one group (jh_group_limits); unset ones fall back."""

    memory: MemorySize | None = None
    cpu: CpuCores | None = None
    tasks: TasksLimit | None = None

    @model_validator(mode="after")
    def _something(self) -> Limits:
        if not self.model_fields_set:
            raise ValueError("give at least one of memory, cpu, tasks")
        return self


class Kernel(Strict):
    """A kernel environment: a venv with a pinned package set, or a conda environment file."""

    name: Annotated[
        StrictStr,
        Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$"),
        _whole(KERNEL_NAME, "must be a-z 0-9 . _ - (up to 64, starting with a letter or digit)"),
    ]
    # Shown in JupyterLab's launcher (kernel.json) and in operation names.
    display_name: Annotated[StrictStr, Field(min_length=1, max_length=100), AfterValidator(_display_name)]
    # venv: a folder of files/kernels/ with requirements.in and one lock per Python
    # (py3.12.txt, ...), installed with pip into a venv of the server's base Python.
    packages: Annotated[StrictStr, AfterValidator(_kernel_set)] | None = None
    # conda: an environment file of files/kernels/ (teaching.yml, ...), made with conda.
    environment: Annotated[StrictStr, AfterValidator(_environment_file)] | None = None

    @model_validator(mode="after")
    def _one_definition(self) -> Kernel:
        if (self.packages is None) == (self.environment is None):
            raise ValueError(
                "give either packages (a venv) or environment (a conda environment file), not both or neither"
            )
        if self.packages is not None and not (KERNEL_SETS / self.packages / "requirements.in").is_file():
            raise ValueError(
                f"packages: {self.packages!r} is not a folder of files/kernels/; choose one of {_known_sets()}"
            )
        if self.environment is not None and not (KERNEL_SETS / self.environment).is_file():
            known = sorted(p.name for p in KERNEL_SETS.glob("*.yml"))
            raise ValueError(
                f"environment: {self.environment!r} is not an environment file of files/kernels/; "
                f"choose one of {', '.join(known)}"
            )
        return self

    @property
    def conda(self) -> bool:
        return self.environment is not None


# The hub server's own PostgreSQL, one database of a plain name.
DB_URL = re.compile(r"postgresql:///(?P<name>[a-z_][a-z0-9_]{0,62})")
DB_URL_RULE = (
    'must be "postgresql:///NAME" (the hub server\'s own PostgreSQL, NAME of a-z 0-9 _); '
    "another server is not supported yet"
)
# A Slurm partition name or a spawn profile's key: it reaches slurm.conf, sbatch and the hub's config.
SLURM_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
SLURM_NAME_RULE = "must be a lowercase letter, then up to 31 of a-z 0-9 _ -"
# What users read on the spawn page: plain words, sizes and punctuation that no language here interprets.
PROFILE_TEXT = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ,.:()/+-]{0,79}")
SlurmName = Annotated[StrictStr, _whole(SLURM_NAME, SLURM_NAME_RULE)]
DEFAULT_PARTITION = "jupyter"


class SpawnProfile(Strict):
    """A choice on the spawn page (jh_spawn_profiles): a server on the hub, or a Slurm job of this size."""

    key: SlurmName
    display: Annotated[StrictStr, _whole(PROFILE_TEXT, "must be up to 80 letters, digits, spaces and , . : ( ) / + -")]
    where: Literal["hub", "cluster"]
    # A Slurm job's partition (default: the first of jh_slurm_partitions), cores, memory and time limit.
    partition: SlurmName | None = None
    cpus: Annotated[StrictInt, Field(ge=1, le=1024)] = 1
    memory: MemorySize = "2G"
    minutes: Annotated[StrictInt, Field(ge=1, le=30 * 24 * 60)] = 120

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


DEFAULT_PROFILES = [
    SpawnProfile(key="hub", display="On the hub server", where="hub"),
    SpawnProfile(key="small", display="Cluster: 1 CPU, 2 GB, 2 h", where="cluster"),
]


class SharedHome(Strict):
    """How /home is the same folder on the hub and the nodes (jh_shared_home): users' servers
    run on any node and find their files.

    mounted: the site mounts it already (the deploy checks nothing of it); hub-nfs: the hub
    exports its /home to the nodes over NFS; site-nfs: the nodes mount server:export."""

    kind: Literal["mounted", "hub-nfs", "site-nfs"] = "mounted"
    server: DomainName | None = None
    # A path on the NFS server (checked as a path, not against this host's system folders).
    export: Annotated[PurePosixPath, BeforeValidator(_host_path_text)] | None = None

    @model_validator(mode="after")
    def _site_server(self) -> SharedHome:
        if (self.kind == "site-nfs") != (self.server is not None and self.export is not None):
            raise ValueError('kind "site-nfs" needs server and export, and only it takes them')
        return self


# The seed's teaching environment, as the default `python3` kernel.
TEACHING_KERNEL = Kernel(name="python3", display_name="Python 3", packages="teaching")


class Settings(Strict):
    """The deploy's settings, with their defaults. Data key = ``jh_`` + field name."""

    # Layout and accounts
    # Never / nor a system directory (/etc, /usr, ...); /opt and /srv only below them.
    install_root: HostPath = PurePosixPath("/opt/jupyter")
    hub_user: AccountName = "jupyter"
    users_group: GroupName = "jupyterhub-users"
    users: list[HubUser] = []
    # Hub users, or existing accounts (tasks/preflight.py checks those on the host).
    admin_users: list[AccountName] = []
    # Who may log in: Unix accounts (PAM, their passwords), an LDAP directory (jh_ldap), an
    # OpenID Connect provider (jh_oidc), or people who sign up at the hub and whom an admin
    # approves (native; NativeAuthenticator runs on JupyterHub 5, not 6).
    authenticator: Literal["pam", "ldap", "oidc", "github", "native"] = "pam"
    ldap: Ldap | None = None
    oidc: Oidc | None = None
    github: GitHub | None = None
    # Groups of hub users, as Unix groups (for jh_group_limits and jh_shared_dirs) and
    # JupyterHub groups (for roles), members kept as listed on every run.
    groups: dict[GroupName, list[AccountName]] = {}
    shared_dirs: list[SharedDir] = []
    # Off-boarded users' homes are archived here (root's, 0700; one tar.gz per user, 0600).
    offboard_dir: OffboardPath = PurePosixPath("/var/backups/jupyterhub-offboard")

    # The server environment: a folder of files/server/ with requirements.in and
    # one lock per target Python (py3.12.txt, ...), or the absolute path of such a
    # folder on the controller (a site's own pinned set).
    server_release: Annotated[StrictStr, AfterValidator(_server_release)] = "jupyterhub-6"
    # The Python the server venv (and venv kernels) are built from: the system's
    # python3, or conda's (files/conda/server-python.yml, with Node.js). auto: the
    # system's where it is 3.10 or newer, else conda's (Ubuntu 16.04-20.04, Debian 11).
    server_python: Literal["auto", "system", "conda"] = "auto"
    # Deploy to a release this deploy does not know (Ubuntu 26.04, Debian 14, ...) with its
    # own python3 if the server release has a lock for it; the run says it is untested.
    allow_untested_release: StrictBool = False
    # Hub database and config backups taken before a server upgrade, kept this many times.
    upgrade_backups_kept: Annotated[StrictInt, Field(ge=1, le=100)] = 5

    # Conda (Miniforge by default; a Miniconda installer works too), installed when a
    # kernel has an environment file or the server Python comes from conda.
    conda_prefix: HostPath = PurePosixPath("/opt/miniconda3")
    conda_installer_url: Url = HttpUrl(MINIFORGE_URL)
    conda_installer_sha256: Annotated[
        StrictStr, Field(pattern=r"^[0-9a-f]{64}$"), _whole(SHA256, "must be 64 lowercase hexadecimal digits")
    ] = MINIFORGE_SHA256
    # The installer as a file on the controller (offline sites): uploaded instead of
    # downloaded, and checked against jh_conda_installer_sha256 before any host is touched.
    conda_installer_file: FilePath | None = None
    conda_channels: list[
        Annotated[StrictStr, _whole(CONDA_CHANNEL, "must be a channel name: letters, digits, _ . - (not first: . -)")]
    ] = Field(default=["conda-forge"], min_length=1)
    # A mirror of the channels (conda's channel_alias): channel names resolve below it.
    conda_channel_alias: Url | None = None

    # The hub
    # Where the proxy listens for browsers. Loopback by default: nginx (or an SSH
    # tunnel) faces the network.
    public_ip: IPv4Address = IPv4Address("127.0.0.1")
    public_port: Port = 8000
    idle_timeout: Annotated[StrictInt, Field(ge=60, le=30 * 86400)] = 3600
    idle_check_interval: Annotated[StrictInt, Field(ge=10, le=86400)] = 300
    # Each user's server runs in a systemd unit of its own (jupyter-singleuser@<user>),
    # with these limits: memory ("2G", the OOM killer ends a kernel above it), CPU cores
    # (1.5 = one and a half), processes and threads. None: no per-user limit; the users'
    # servers together never take the memory the system needs (a reserve of 1 GiB or
    # 10 %, whichever is larger).
    user_memory_limit: MemorySize | None = None
    user_cpu_limit: CpuCores | None = None
    user_tasks_limit: TasksLimit | None = 1024
    # Per Unix group: {"ml-2026": {"memory": "8G", "cpu": 4}}. A user in several gets,
    # for each limit, the most generous of their groups that set it.
    group_limits: dict[Annotated[StrictStr, AfterValidator(_unix_group)], Limits] = {}

    # systemd OnFailure= notifier: off, or on (writes to the journal) with an
    # optional command run with the failed unit's name as its argument.
    notify_on_failure: StrictBool = False
    # Becomes ExecStart=<command> %i: a program path and plain arguments only.
    notify_command: Annotated[StrictStr, AfterValidator(_notify_command)] | None = None

    # JupyterLab's defaults for every user (its overrides.json): {plugin id: {setting: value}}.
    # Merged over the deploy's own, which turns off the news pop-up (fetchNews) on a managed hub.
    lab_settings: dict[Annotated[StrictStr, _whole(LAB_PLUGIN, LAB_PLUGIN_RULE)], dict[StrictStr, Any]] = {}

    # Kernels users compute in, apart from the server venv; the one named python3
    # replaces the server's own default kernel.
    kernels: list[Kernel] = [TEACHING_KERNEL]
    # Keep the environment of a kernel removed from jh_kernels (it is unregistered either way).
    keep_removed_kernel_envs: StrictBool = False
    # NLTK data shared read-only by every kernel (NLTK_DATA), and packages to fetch into it.
    nltk_packages: list[
        Annotated[
            StrictStr,
            Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"),
            _whole(NLTK_PACKAGE, "must be an NLTK package id: letters, digits, _ . - (not first: . -)"),
        ]
    ] = []
    # The NLTK data index (index.xml) packages come from: NLTK's own, or a mirror.
    nltk_index_url: Url = HttpUrl(NLTK_INDEX)

    # The web front: with a domain, nginx terminates TLS for it and proxies to the
    # hub (and to jh_services); the proxy then stays on loopback. Without one, no nginx.
    domain: DomainName | None = None
    # letsencrypt: certbot over HTTP-01 (webroot); manual: files from the controller;
    # selfsigned: made on the server (intranets, the demo).
    certificate: Literal["letsencrypt", "manual", "selfsigned"] = "letsencrypt"
    acme_directory_url: Url = HttpUrl(LETS_ENCRYPT)
    acme_staging: StrictBool = False
    acme_email: Annotated[StrictStr, AfterValidator(_email)] | None = None
    # PEM certificates only (the server's first), and its one unencrypted private key.
    certificate_file: Annotated[FilePath, AfterValidator(_certificate_file)] | None = None
    certificate_key_file: Annotated[FilePath, AfterValidator(_private_key_file)] | None = None
    # Where the hub sits on the site ("/" or a path like "/jupyter/").
    base_url: UrlPath = "/"
    services: list[SubPathService] = []

    # ufw: deny incoming traffic but SSH (this port) and the web ports (80 and 443
    # with jh_domain, else jh_public_port). Off: the firewall is left as it is.
    firewall: StrictBool = False
    firewall_ssh_port: Port = 22

    # Reaching the outside world from the targets
    # CA certificates (PEM files on the controller) the targets must trust, e.g.
    # a TLS-intercepting proxy's. Copied to /usr/local/share/ca-certificates as <stem>.crt:
    # PEM CA certificates only (never a key), plain file names, no two with one stem.
    extra_ca_certificates: list[CaFile] = []
    # A package index for pip (a mirror); None keeps pip's own default.
    pip_index_url: Url | None = None
    # An npm registry (a mirror); None keeps npm's own default.
    npm_registry_url: Url | None = None

    # A Slurm cluster behind the hub (README: "A cluster"): the hosts of the inventory's `nodes`
    # run users' servers as Slurm jobs, chosen on the spawn page. Off: one server, as before.
    cluster: StrictBool = False
    # This host's address on the network the hub and the nodes share (the hub's API listens
    # there for the nodes, not on every interface). Default: its SSH address, if an IP address.
    cluster_address: IPv4Address | None = None
    # Partition name -> inventory names of nodes; default: all nodes in one partition "jupyter".
    slurm_partitions: dict[
        SlurmName, list[Annotated[StrictStr, _whole(DOMAIN, "must be a node's inventory name")]]
    ] = {}
    # The spawn page's choices; default: the hub server, and a 1-CPU, 2 GB, 2-hour job.
    spawn_profiles: list[SpawnProfile] = DEFAULT_PROFILES
    shared_home: SharedHome = SharedHome()

    # The hub's database: None is SQLite in the state folder; "postgresql:///NAME" is the hub
    # server's own PostgreSQL (the distribution's), the database NAME reached on its Unix socket
    # as the hub's account (peer authentication: no password anywhere).
    db_url: Annotated[StrictStr, _whole(DB_URL, DB_URL_RULE)] | None = None

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
            raise ValueError(f"the hub's own account {self.hub_user!r} cannot be a hub user or admin")
        self._check_people()
        kernel_names = [k.name for k in self.kernels]
        if len(set(kernel_names)) != len(kernel_names):
            raise ValueError("jh_kernels: two kernels have the same name")
        if self.idle_check_interval > self.idle_timeout:
            raise ValueError("jh_idle_check_interval must not exceed jh_idle_timeout")
        if self.notify_command and not self.notify_on_failure:
            raise ValueError("jh_notify_command needs jh_notify_on_failure = True")
        self._check_ca_names()
        self._check_web()
        if not (self.server_release_dir / "requirements.in").is_file():
            known = sorted(p.parent.name for p in SERVER_RELEASES.glob("*/requirements.in"))
            raise ValueError(
                f"jh_server_release: {self.server_release!r} is not a folder of files/server/ "
                f"(choose one of {', '.join(known)}) nor the absolute path of a folder with a requirements.in"
            )
        if (
            self.authenticator == "native"
            and NATIVE_PACKAGE not in self.server_release_dir.joinpath("requirements.in").read_text()
        ):
            raise ValueError(
                f'jh_authenticator = "native" needs {NATIVE_PACKAGE} in the server release: jh_server_release = '
                '"jupyterhub-5" has it (its newest version does not run on JupyterHub 6)'
            )
        self._check_conda()
        self._check_cluster()
        if self.postgresql_database in ("postgres", "template0", "template1"):
            raise ValueError(f"jh_db_url: {self.postgresql_database} is PostgreSQL's own database; choose another name")
        try:
            json.dumps(self.lab_settings, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"jh_lab_settings must hold JSON values only (text, numbers, booleans, lists, dicts): {error}"
            ) from None
        return self

    def _check_people(self) -> None:
        if (self.authenticator == "ldap") != (self.ldap is not None):
            raise ValueError('jh_ldap is needed with jh_authenticator = "ldap", and only then')
        if self.ldap and not (self.ldap.allowed_groups or self.present_users):
            raise ValueError("jh_ldap: give allowed_groups or jh_users, or nobody may log in")
        if (self.authenticator == "oidc") != (self.oidc is not None):
            raise ValueError('jh_oidc is needed with jh_authenticator = "oidc", and only then')
        if self.oidc and not (self.oidc.allowed_groups or self.present_users):
            raise ValueError("jh_oidc: give allowed_groups or jh_users, or nobody may log in")
        if (self.authenticator == "github") != (self.github is not None):
            raise ValueError('jh_github is needed with jh_authenticator = "github", and only then')
        if self.github and not (self.github.allowed_organizations or self.present_users):
            raise ValueError("jh_github: give allowed_organizations or jh_users, or nobody may log in")
        if self.oauth and self.domain is None:
            raise ValueError(
                f"jh_{self.authenticator} needs jh_domain: the provider sends people back to https://<jh_domain>/"
            )
        absent = {u.name for u in self.users if u.state == "absent"}
        for name in self.admin_users:
            if name in absent:
                raise ValueError(
                    f"jh_users: {name} is in jh_admin_users and cannot be off-boarded (state absent); "
                    "take it out of jh_admin_users first"
                )
        users = {u.name for u in self.users}
        for group, members in self.groups.items():
            if group in (self.users_group, self.hub_user) or group in users:
                raise ValueError(
                    f"jh_groups: {group} is the login group, the hub's account or a user's own group; choose another"
                )
            if gone := sorted(absent.intersection(members)):
                raise ValueError(f"jh_groups: {group} lists {', '.join(gone)}, off-boarded (state absent)")
        paths = [d.path for d in self.shared_dirs]
        for index, path in enumerate(paths):
            for other in paths[index + 1 :]:
                if path == other or path in other.parents or other in path.parents:
                    raise ValueError(f"jh_shared_dirs: {path} and {other} overlap; give folders side by side")
            if path == self.install_root or self.install_root in path.parents or path in self.install_root.parents:
                raise ValueError(f"jh_shared_dirs: {path} overlaps jh_install_root")
        links = [d.link_name for d in self.shared_dirs]
        if len(set(links)) != len(links):
            raise ValueError("jh_shared_dirs: two folders have the same name (the link in each home)")
        for shared in self.shared_dirs:
            if shared.group not in (None, self.users_group, *self.groups):
                raise ValueError(
                    f"jh_shared_dirs: {shared.path} names the group {shared.group}, "
                    f"which is neither in jh_groups nor jh_users_group"
                )
        root = self.offboard_dir
        if root == self.install_root or self.install_root in root.parents or root in paths:
            raise ValueError("jh_offboard_dir must be outside jh_install_root and jh_shared_dirs")

    def _check_cluster(self) -> None:
        cluster_only = ("cluster_address", "slurm_partitions", "spawn_profiles", "shared_home")
        if not self.cluster:
            given = [f"jh_{name}" for name in cluster_only if name in self.model_fields_set]
            if given:
                raise ValueError(f"{', '.join(given)} needs jh_cluster = True")
            return
        if self.cluster_address is None:
            raise ValueError(
                "jh_cluster needs jh_cluster_address on each host: its IP address on the network the hub "
                "and the nodes share"
            )
        if self.cluster_address.is_loopback or self.cluster_address.is_unspecified:
            raise ValueError("jh_cluster_address must be an address the other hosts reach (not loopback, not 0.0.0.0)")
        keys = [p.key for p in self.spawn_profiles]
        if not keys or len(set(keys)) != len(keys):
            raise ValueError("jh_spawn_profiles: give at least one profile, each with a key of its own")
        partitions = list(self.slurm_partitions) or [DEFAULT_PARTITION]
        for profile in self.spawn_profiles:
            if profile.partition is not None and profile.partition not in partitions:
                raise ValueError(
                    f"jh_spawn_profiles: {profile.key} asks for partition {profile.partition}, "
                    f"not one of jh_slurm_partitions ({', '.join(partitions)})"
                )
        if self.authenticator != "pam":
            raise ValueError(
                "jh_cluster: accounts must be the same on the hub and every node, so the people are "
                'jh_users, who log in with jh_authenticator = "pam" (accounts made at a first login '
                "would exist on the hub alone)"
            )

    @property
    def postgresql_database(self) -> str | None:
        """The PostgreSQL database of the hub (jh_db_url), or None: SQLite."""
        return DB_URL.fullmatch(self.db_url)["name"] if self.db_url else None

    @property
    def hub_database(self) -> str:
        """The database as the shipped scripts take it: the SQLite file, or postgresql:NAME."""
        name = self.postgresql_database
        return f"postgresql:{name}" if name else str(self.layout.database)

    @property
    def hub_api_url(self) -> str:
        """Where the hub's API listens: loopback, or this host's cluster address for the nodes."""
        address = self.cluster_address if self.cluster else "127.0.0.1"
        return f"http://{address}:{HUB_API_PORT}"

    @property
    def partitions(self) -> list[str]:
        return list(self.slurm_partitions) or [DEFAULT_PARTITION]

    @property
    def oauth(self) -> Oidc | GitHub | None:
        """The OAuth provider's settings (OpenID Connect or GitHub), if logins go through one."""
        return self.oidc or self.github

    @property
    def present_users(self) -> list[HubUser]:
        return [u for u in self.users if u.state == "present"]

    @property
    def absent_users(self) -> list[HubUser]:
        return [u for u in self.users if u.state == "absent"]

    def _check_conda(self) -> None:
        if self.conda_prefix == self.install_root or self.install_root in self.conda_prefix.parents:
            raise ValueError("jh_conda_prefix must be outside jh_install_root")
        if self.conda_prefix in self.install_root.parents:
            raise ValueError("jh_install_root must be outside jh_conda_prefix")
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
        if self.certificate_file is not None and self.certificate_key_file is not None:
            certificate = _certificates(self.certificate_file, "a certificate")[0]
            key = _private_key(self.certificate_key_file)
            if _public_key(certificate.public_key()) != _public_key(key.public_key()):
                raise ValueError(
                    "jh_certificate_key_file: not the key of the first certificate in jh_certificate_file "
                    "(their public keys differ)"
                )
        if self.acme_staging and str(self.acme_directory_url) != LETS_ENCRYPT:
            raise ValueError(
                "jh_acme_staging chooses Let's Encrypt's staging server: leave jh_acme_directory_url unset"
            )
        # The hub's own paths (all of its namespace when it sits below a base URL) and
        # earlier services: a service may neither sit inside one nor contain one.
        taken = [*HUB_PATHS] if self.base_url == "/" else [self.base_url, "/.well-known/"]
        for index, service in enumerate(self.services):
            for path in taken:
                if service.path == "/" or service.path.startswith(path) or path.startswith(service.path):
                    raise ValueError(f"jh_services[{index}]: path {service.path} overlaps {path}")
            taken.append(service.path)
            # nginx must not proxy to itself nor expose the hub's proxy under another path.
            if _local_host(service.upstream.host or ""):
                if service.upstream.port == self.public_port:
                    raise ValueError(
                        f"jh_services[{index}][upstream]: must not point at the hub's proxy "
                        f"(jh_public_port {self.public_port} on this host)"
                    )
                if service.upstream.port in (80, 443):
                    raise ValueError(
                        f"jh_services[{index}][upstream]: must not point at nginx itself (port {service.upstream.port} on this host)"
                    )

    def _check_ca_names(self) -> None:
        # tasks/system.py uploads each as <stem>.crt: two with one stem would overwrite each other.
        stems: dict[str, int] = {}
        for index, certificate in enumerate(self.extra_ca_certificates):
            if certificate.stem in stems:
                raise ValueError(
                    f"jh_extra_ca_certificates[{index}]: {certificate.name} would be uploaded as {certificate.stem}.crt "
                    f"like jh_extra_ca_certificates[{stems[certificate.stem]}]; rename one"
                )
            stems[certificate.stem] = index

    @property
    def lab_overrides(self) -> dict[str, dict[str, Any]]:
        """JupyterLab's overrides.json: the deploy's defaults, then jh_lab_settings over them."""
        merged = {plugin: dict(values) for plugin, values in LAB_DEFAULTS.items()}
        for plugin, values in self.lab_settings.items():
            merged.setdefault(plugin, {}).update(values)
        return merged

    @property
    def activity_interval(self) -> int:
        """Seconds between reports of users' activity to the hub (JupyterHub's default 300): well
        within the idle timeout, or the culler would stop a server in use on stale news."""
        return min(300, max(10, self.idle_timeout // 4))

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

    @property
    def layout(self) -> Layout:
        """Where everything lives on the host (tasks/layout.py)."""
        return Layout(self.install_root, self.conda_prefix)

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
        if problem["type"] == "extra_forbidden" and len(location) > 1:
            message = "unknown key here (check its spelling in the README's settings table)"
        elif problem["type"] == "extra_forbidden":
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


def host_settings(name: str) -> Settings:
    """Another host's settings (a cluster's hub reads its nodes'), checked by current_settings."""
    return _VALIDATED[name]


_VALIDATED: dict[str, Settings] = {}
