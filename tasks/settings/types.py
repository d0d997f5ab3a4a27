"""The types of setting values: Annotated types whose checks say, in their error message,
what the value must be; network.py holds those of names on the network and URLs. The nested
models (parts.py) and Settings (model.py) are built of them.

A string is checked against a whitelist that matches the whole value (``re.fullmatch``, as
whole() does, or pydantic's anchored ``pattern``): no trailing newline slips through, and what
is checked is what the deploy renders into shell lines, units, sudoers, nginx and the hub's config.
Kind names a type's values in docs/settings.md.
"""

import re
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, FilePath, StrictFloat, StrictInt, StrictStr

from tasks.settings import pem
from tasks.settings.constants import (
    CONDA_CHANNEL,
    COURSE_GROUPS,
    COURSE_NAME,
    CRYPT_HASH,
    HOST_PATH,
    KERNEL_SETS,
    LAB_PLUGIN,
    MEMORY_SIZE,
    MEMORY_UNITS,
    MIN_USER_MEMORY,
    NOT_FOR_ARCHIVES,
    NOTIFY_ARGUMENT,
    PLAIN_NAME,
    PRIVILEGED_GROUPS,
    PROFILE_TEXT,
    SHARED_DIRS,
    SLURM_NAME,
    SYSTEM_DIRS,
    SYSTEM_NAMES,
    SYSTEM_PREFIXES,
    USER_NAME,
)


@dataclass(frozen=True)
class Kind:
    """What docs/settings.md calls the values of a type (pydantic passes it over)."""

    name: str


def whole(pattern: re.Pattern[str], allowed: str) -> AfterValidator:
    """A check that the whole string matches pattern; the message says what is allowed."""

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(allowed)
        return value

    return AfterValidator(check)


# Names of accounts and groups


def _system_name(value: str) -> bool:
    return value in SYSTEM_NAMES or value.startswith(SYSTEM_PREFIXES)


def _not_reserved_account(value: str) -> str:
    if _system_name(value):
        raise ValueError(f"{value!r} is a system account or group on Debian/Ubuntu; choose another name")
    if value in PRIVILEGED_GROUPS:
        raise ValueError(f"{value!r} is a privileged group: an account of that name would get it; choose another name")
    return value


def _not_reserved_group(value: str) -> str:
    if value in PRIVILEGED_GROUPS:
        raise ValueError(f"{value!r} is a privileged group (its members would get hub logins); choose another group")
    if _system_name(value):
        raise ValueError(f"{value!r} is a system group or account on Debian/Ubuntu; choose another group")
    return value


_UNIX_USER = whole(USER_NAME, "must be a Unix user name: a lowercase letter or _, then up to 31 of a-z 0-9 _ -")
AccountName = Annotated[StrictStr, _UNIX_USER, AfterValidator(_not_reserved_account), Kind("Unix user name")]
GroupName = Annotated[StrictStr, _UNIX_USER, AfterValidator(_not_reserved_group), Kind("Unix group name")]


def _course_groups(value: str) -> str:
    for kind in COURSE_GROUPS:
        _not_reserved_group(f"{value}-{kind}")
    return value


CourseName = Annotated[
    StrictStr,
    whole(
        COURSE_NAME,
        "must be a course name: a lowercase letter, then up to 22 of a-z 0-9 _ - (its groups, <course>-students "
        "and <course>-staff, are Unix names too)",
    ),
    AfterValidator(_course_groups),
    Kind("course name"),
]
UnixGroup = Annotated[
    StrictStr,
    whole(USER_NAME, "must be a Unix group name: a lowercase letter or _, then up to 31 of a-z 0-9 _ -"),
    Kind("Unix group name"),
]
PasswordHash = Annotated[
    StrictStr,
    whole(
        CRYPT_HASH,
        "must be a crypt(3) hash such as the output of `openssl passwd -6` "
        "(starts with $6$, $5$, $y$ ...); plaintext passwords are not accepted",
    ),
    Kind("crypt(3) hash"),
]


# Paths on the hosts and on the controller


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


def at_or_below(path: PurePath, root: PurePath) -> bool:
    return path == root or root in path.parents


def _host_path(value: PurePosixPath) -> PurePosixPath:
    for system in SYSTEM_DIRS:
        if at_or_below(value, system):
            raise ValueError(
                f"must not be {system} or below it (a system directory); use e.g. /opt/jupyter or /srv/jupyter"
            )
    if value in SHARED_DIRS:
        raise ValueError(f"must not be {value} itself; use a folder below it such as {value}/jupyter")
    return value


def _offboard_path(value: PurePosixPath) -> PurePosixPath:
    for tree in NOT_FOR_ARCHIVES:
        if at_or_below(value, tree):
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
        _host_path_text(value)
        if not PLAIN_NAME.fullmatch(PurePosixPath(value).name):
            raise ValueError("the folder's name must start with a letter or digit (it names the server venv)")
    elif not PLAIN_NAME.fullmatch(value):
        raise ValueError(
            "must be a folder name of files/server/ (letters, digits, . _ -, starting with a letter or digit) "
            "or the absolute path of such a folder"
        )
    return value


def _secret_file(path: Path) -> Path:
    text = path.read_bytes()
    if not 0 < len(text.strip()) <= 1024 or b"\n" in text.strip() or not text.strip().isascii():
        raise ValueError(f"{path} must hold the secret alone: one line of printable ASCII, at most 1 KiB")
    return path


def _notify_command(value: str) -> str:
    program, *arguments = value.split(" ")
    if _path_problem(program) or program.endswith("/") or not all(NOTIFY_ARGUMENT.fullmatch(a) for a in arguments):
        raise ValueError(
            "must be the absolute path of a program, then arguments separated by single spaces, each of "
            "letters, digits and . _ / : = @ + , - (no quotes, $, %, ; or backslashes)"
        )
    return value


HostPath = Annotated[
    PurePosixPath, BeforeValidator(_host_path_text), AfterValidator(_host_path), Kind("absolute path on the host")
]
OffboardPath = Annotated[
    PurePosixPath, BeforeValidator(_host_path_text), AfterValidator(_offboard_path), Kind("absolute path on the host")
]
# A path on another server (checked as a path, not against this host's system folders).
RemotePath = Annotated[PurePosixPath, BeforeValidator(_host_path_text), Kind("absolute path")]
ServerRelease = Annotated[StrictStr, AfterValidator(_server_release), Kind("folder of files/server/ or its path")]
SecretFile = Annotated[FilePath, AfterValidator(_secret_file), Kind("file on the controller")]
CaFile = Annotated[FilePath, AfterValidator(pem.ca_file), Kind("PEM file on the controller")]
CertificateFile = Annotated[FilePath, AfterValidator(pem.certificate_file), Kind("PEM file on the controller")]
PrivateKeyFile = Annotated[FilePath, AfterValidator(pem.private_key_file), Kind("PEM file on the controller")]
RsaKeyFile = Annotated[FilePath, AfterValidator(pem.rsa_key_file), Kind("PEM file on the controller")]
NotifyCommand = Annotated[StrictStr, AfterValidator(_notify_command), Kind("command line")]


# Sizes and limits


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


MemorySize = Annotated[StrictStr, AfterValidator(_memory_size), Kind("memory size")]
CpuCores = Annotated[StrictInt | StrictFloat, Field(ge=0.01, le=1024), AfterValidator(_cpu_cores), Kind("CPU cores")]
TasksLimit = Annotated[StrictInt, Field(ge=32, le=4194304), Kind("number of tasks")]
SlurmName = Annotated[
    StrictStr, whole(SLURM_NAME, "must be a lowercase letter, then up to 31 of a-z 0-9 _ -"), Kind("Slurm name")
]
ProfileText = Annotated[
    StrictStr, whole(PROFILE_TEXT, "must be up to 80 letters, digits, spaces and , . : ( ) / + -"), Kind("text")
]


# Kernels, conda and JupyterLab


def lock_sets(folder: Path) -> str:
    """The lock sets of folder (its subfolders with a requirements.in), for messages."""
    return ", ".join(sorted(p.parent.name for p in folder.glob("*/requirements.in")))


def environment_files() -> str:
    """The conda environment files of files/kernels/, for messages."""
    return ", ".join(sorted(p.name for p in KERNEL_SETS.glob("*.yml")))


def _kernel_set(value: str) -> str:
    if not PLAIN_NAME.fullmatch(value):
        raise ValueError(
            f"must be a folder name of files/kernels/ (letters, digits, . _ -; no /); choose one of {lock_sets(KERNEL_SETS)}"
        )
    return value


def _environment_file(value: str) -> str:
    if not PLAIN_NAME.fullmatch(value) or not value.endswith(".yml"):
        raise ValueError(
            f"{value!r} is not an environment file of files/kernels/ (a file name ending in .yml, no /); "
            f"choose one of {environment_files()}"
        )
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


# pydantic's own pattern check runs first here (anchored; its $ is the very end of the value),
# so its message, which quotes the pattern, is the one these give.
KernelName = Annotated[StrictStr, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$"), Kind("kernel name")]
NltkPackage = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"), Kind("NLTK package id")]
Sha256 = Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$"), Kind("sha256 digest")]
DisplayName = Annotated[StrictStr, Field(min_length=1, max_length=100), AfterValidator(_display_name), Kind("text")]
KernelSet = Annotated[StrictStr, AfterValidator(_kernel_set), Kind("folder of files/kernels/")]
EnvironmentFile = Annotated[StrictStr, AfterValidator(_environment_file), Kind("file of files/kernels/")]
CondaChannel = Annotated[
    StrictStr,
    whole(CONDA_CHANNEL, "must be a channel name: letters, digits, _ . - (not first: . -)"),
    Kind("channel name"),
]
LabPlugin = Annotated[
    StrictStr,
    whole(LAB_PLUGIN, 'must be a JupyterLab plugin id such as "@jupyterlab/apputils-extension:notification"'),
    Kind("JupyterLab plugin id"),
]
