"""The settings' constants: where the deploy's own files are, the patterns values must match,
the names and folders no setting may take, and the pinned defaults."""

import re
from pathlib import Path, PurePosixPath

PREFIX = "jh_"
REPO = Path(__file__).resolve().parents[2]
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
CONDA_CHANNEL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
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
GITHUB_ORG = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?")
OIDC_NAME = re.compile(r"[A-Za-z0-9._:/@-]{1,200}")
# A course of the hub (jh_lti13's courses): short enough that its groups, <course>-students and
# <course>-staff, are Unix names too.
COURSE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,22}")
COURSE_GROUPS = ("students", "staff")
# A memory size as systemd reads it: bytes, or a number with a K, M, G or T suffix (base 1024).
MEMORY_SIZE = re.compile(r"(?P<number>[1-9][0-9]{0,12})(?P<unit>[KMGT]?)")
MEMORY_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
# A JupyterLab plugin id, as its settings schema names it ("@jupyterlab/apputils-extension:notification").
LAB_PLUGIN = re.compile(r"@?[a-z0-9][a-z0-9._-]*(?:/[a-z0-9][a-z0-9._-]*)?:[a-zA-Z0-9][a-zA-Z0-9._-]*")
# The hub server's own PostgreSQL, one database of a plain name.
DB_URL = re.compile(r"postgresql:///(?P<name>[a-z_][a-z0-9_]{0,62})")
# A Slurm partition name or a spawn profile's key: it reaches slurm.conf, sbatch and the hub's config.
SLURM_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
# What users read on the spawn page: plain words, sizes and punctuation that no language here interprets.
PROFILE_TEXT = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ,.:()/+-]{0,79}")
PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)
PRIVATE_KEY_BLOCK = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")

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
# Where off-boarded homes may not go: trees users, the system or the kernel write.
NOT_FOR_ARCHIVES = tuple(
    PurePosixPath(p) for p in ("/home", "/tmp", "/var/tmp", "/run", "/dev", "/proc", "/sys", "/boot", "/etc", "/usr")
)

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
    # what the packages this deploy installs make (Slurm, MariaDB, PostgreSQL, NFS, LDAP clients,
    # mail, monitoring): a person by one of these names would own their files and processes
    "munge", "slurm", "mysql", "postgres", "statd", "nslcd", "sssd", "openldap", "postfix", "postdrop",
    "Debian-exim", "prometheus", "nagios", "certbot", "nginx", "redis", "memcache",
})  # fmt: skip
SYSTEM_PREFIXES = ("_", "systemd-")
# Groups whose members are root in all but name, or read what only root should (Debian, Ubuntu);
# tasks/preflight.py refuses memberships in them on the host.
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
# What every managed hub's JupyterLab does differently from JupyterLab's defaults: no news
# pop-up asking each user whether to fetch Jupyter news from the internet.
LAB_DEFAULTS = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}
# Below this no JupyterLab server starts; a limit under it is a typo (256 for 256M).
MIN_USER_MEMORY = 64 * 1024**2
# The server release's package that jh_authenticator = "native" needs.
NATIVE_PACKAGE = "jupyterhub-nativeauthenticator"
DEFAULT_PARTITION = "jupyter"
