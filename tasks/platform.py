"""Which targets the deploy supports, and what their system Python is.

Checked from facts before any operation, so an unsupported target stops the run
before anything on any host changes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pyinfra import host
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.server import LinuxDistribution

from tasks.facts import SystemVersions
from tasks.settings import Settings
from tasks.snapshot import fact


@dataclass(frozen=True)
class Release:
    """What a supported release ships that the deploy depends on."""

    python3: str  # the system python3
    # Newer Pythons of the release's own archive (Ubuntu 20.04's universe has python3.9).
    other_pythons: tuple[str, ...]
    systemd: int


RELEASES = {
    ("Ubuntu", "16.04"): Release("3.5", (), 229),
    ("Ubuntu", "18.04"): Release("3.6", (), 237),
    ("Ubuntu", "20.04"): Release("3.8", ("3.9",), 245),
    ("Ubuntu", "22.04"): Release("3.10", (), 249),
    ("Ubuntu", "24.04"): Release("3.12", (), 255),
    ("Debian", "11"): Release("3.9", (), 247),
    ("Debian", "12"): Release("3.11", (), 252),
    ("Debian", "13"): Release("3.13", (), 257),
}
# The Python of files/conda/server-python.yml, for targets no system Python of which qualifies.
CONDA_SERVER_PYTHON = "3.12"


class UnsupportedTarget(PyinfraError):
    """The target cannot run this deploy; raised before any change."""


@dataclass(frozen=True)
class Platform:
    distribution: str
    release: str
    system_python: str  # "3.12": the distribution's python3
    # The Python the server venv and venv kernels are built from, and its command: python3,
    # another Python of the release (python3.9), or conda's (an absolute path).
    python: str
    python_command: str = "python3"
    systemd: int = 0  # 0: the release's, from RELEASES
    # A release the deploy does not know, allowed by jh_allow_untested_release.
    untested: bool = False

    def __post_init__(self) -> None:
        if not self.systemd:
            object.__setattr__(self, "systemd", RELEASES[(self.distribution, self.release)].systemd)

    @property
    def label(self) -> str:
        return f"{self.distribution} {self.release}"

    @property
    def conda_server(self) -> bool:
        """The server's Python (and Node.js) come from conda."""
        return self.python_command.startswith("/")

    @property
    def python_packages(self) -> list[str]:
        """The release's packages for a Python other than its python3 (python3.9 and its venv module)."""
        if self.conda_server or self.python_command == "python3":
            return []
        return [self.python_command, f"{self.python_command}-venv"]

    @property
    def uv(self) -> bool:
        """Venvs are installed with uv (files/uv): its wheel needs a pip and Python of 3.8 or later,
        which the release's own Pythons have here; conda's server Python keeps pip."""
        return not self.conda_server and _version(self.python) >= (3, 8)

    @property
    def memory_property(self) -> str:
        """systemd's hard memory limit: MemoryMax= since 231, MemoryLimit= (cgroup v1) before."""
        return "MemoryMax" if self.systemd >= 231 else "MemoryLimit"

    @property
    def socket_bind_deny(self) -> bool:
        """systemd's SocketBindDeny= (cgroup BPF), since 249."""
        return self.systemd >= 249

    @property
    def oom_policy(self) -> bool:
        """OOMPolicy= (243): without continue, one kernel killed for memory stops the whole server."""
        return self.systemd >= 243

    @property
    def tls13(self) -> bool:
        """nginx and OpenSSL can speak TLS 1.3 (not Ubuntu 16.04's 1.10 with OpenSSL 1.0.2)."""
        return (self.distribution, self.release) != ("Ubuntu", "16.04")


def target_platform(settings: Settings | None = None) -> Platform:
    """The current host's platform, or UnsupportedTarget naming the fix.

    settings: where the hub runs (None: the web front alone, which needs no server Python).
    The server Python (jh_server_python = auto) is the newest Python of the release that
    jh_server_release has a lock for, else conda's.
    """
    facts = fact(LinuxDistribution)
    name = facts["name"]
    version = facts["release_meta"].get("VERSION_ID", "")
    release = RELEASES.get((name, version))
    untested = release is None
    if untested:
        supported = ", ".join(f"{d} {r}" for d, r in RELEASES)
        if settings is None or not settings.allow_untested_release:
            raise UnsupportedTarget(
                f"{host.name}: {name} {version} is not a release this deploy knows; supported: {supported}. "
                "Nothing was changed. To try it anyway (with its own python3), set jh_allow_untested_release = True."
            )
        if name not in ("Ubuntu", "Debian"):
            raise UnsupportedTarget(f"{host.name}: {name} {version}: the deploy needs Ubuntu or Debian (apt, systemd)")
        probed = fact(SystemVersions)
        release = Release(probed["python3"], (), probed["systemd"])
    base = Platform(name, version, release.python3, release.python3, systemd=release.systemd, untested=untested)
    if settings is None:
        return base
    try:
        return server_platform(base, release, settings)
    except UnsupportedTarget as error:
        raise UnsupportedTarget(f"{host.name}: {error}") from None


def server_platform(base: Platform, release: Release, settings: Settings) -> Platform:
    """base with the Python the server venv and venv kernels are built from, or UnsupportedTarget."""
    pythons = sorted((release.python3, *release.other_pythons), key=_version, reverse=True)
    if settings.server_python != "conda":
        for python in pythons:
            if (settings.server_release_dir / f"py{python}.txt").is_file():
                command = "python3" if python == release.python3 else f"python{python}"
                return replace(base, python=python, python_command=command)
    if settings.server_python == "system" or base.untested:
        locked = sorted((p.stem[2:] for p in settings.server_release_dir.glob("py*.txt")), key=_version)
        raise UnsupportedTarget(
            f"{base.label} has Python {', '.join(pythons)}, and jh_server_release "
            f"{settings.server_release} has locks for Python {', '.join(locked)} only. Nothing was changed. "
            "Fix: choose a jh_server_release with a lock for one of them (jupyterhub-5 runs on Python 3.9+), "
            + (
                "or deploy to a supported release."
                if base.untested
                else "or set jh_server_python to 'auto' (conda's Python)."
            )
        )
    conda_python = settings.layout.conda_server_env / "bin" / f"python{CONDA_SERVER_PYTHON}"
    return replace(base, python=CONDA_SERVER_PYTHON, python_command=str(conda_python))


def _version(python: str) -> tuple[int, ...]:
    return tuple(int(part) for part in python.split("."))


def describe(platform: Platform) -> str:
    """The server Python the deploy chose, as the run prints it."""
    if platform.conda_server:
        source = f"conda's (no Python of {platform.label} has a lock in jh_server_release)"
    else:
        source = f"{platform.python_command} of {platform.label}"
    untested = f"; {platform.label} is UNTESTED (jh_allow_untested_release)" if platform.untested else ""
    return f"server Python {platform.python}: {source}{untested}"
