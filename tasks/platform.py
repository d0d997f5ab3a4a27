"""Which targets the deploy supports, and what their system Python is.

Checked from facts before any operation, so an unsupported target stops the run
before anything on any host changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra import host
from pyinfra.api.exceptions import PyinfraError
from pyinfra.facts.server import LinuxDistribution

from tasks.settings import Settings

# The python3 each release ships; the server venv needs one JupyterHub 6 supports.
SYSTEM_PYTHON = {
    ("Ubuntu", "16.04"): "3.5",
    ("Ubuntu", "18.04"): "3.6",
    ("Ubuntu", "20.04"): "3.8",
    ("Ubuntu", "22.04"): "3.10",
    ("Ubuntu", "24.04"): "3.12",
    ("Debian", "11"): "3.9",
    ("Debian", "12"): "3.11",
    ("Debian", "13"): "3.13",
}
# The systemd each release ships: which unit properties users' servers can have.
SYSTEMD = {
    ("Ubuntu", "16.04"): 229,
    ("Ubuntu", "18.04"): 237,
    ("Ubuntu", "20.04"): 245,
    ("Ubuntu", "22.04"): 249,
    ("Ubuntu", "24.04"): 255,
    ("Debian", "11"): 247,
    ("Debian", "12"): 252,
    ("Debian", "13"): 257,
}
MIN_SERVER_PYTHON = (3, 10)
# The Python of files/conda/server-python.yml, for targets whose own is older.
CONDA_SERVER_PYTHON = "3.12"


class UnsupportedTarget(PyinfraError):
    """The target cannot run this deploy; raised before any change."""


@dataclass(frozen=True)
class Platform:
    distribution: str
    release: str
    system_python: str  # "3.12": the distribution's python3
    # The Python the server venv and venv kernels are built from, and its command.
    python: str
    python_command: str = "python3"

    @property
    def systemd(self) -> int:
        return SYSTEMD[(self.distribution, self.release)]

    @property
    def memory_property(self) -> str:
        """systemd's hard memory limit: MemoryMax= since 231, MemoryLimit= (cgroup v1) before."""
        return "MemoryMax" if self.systemd >= 231 else "MemoryLimit"

    @property
    def oom_policy(self) -> bool:
        """OOMPolicy= (243): without continue, one kernel killed for memory stops the whole server."""
        return self.systemd >= 243

    @property
    def label(self) -> str:
        return f"{self.distribution} {self.release}"

    @property
    def conda_server(self) -> bool:
        """The server's Python (and Node.js) come from conda."""
        return self.python_command != "python3"

    @property
    def tls13(self) -> bool:
        """nginx and OpenSSL can speak TLS 1.3 (not Ubuntu 16.04's 1.10 with OpenSSL 1.0.2)."""
        return (self.distribution, self.release) != ("Ubuntu", "16.04")


def target_platform(settings: Settings | None = None) -> Platform:
    """The current host's platform, or UnsupportedTarget naming the fix.

    settings: where the hub runs (None: the web front alone, which needs no server Python).
    """
    facts = host.get_fact(LinuxDistribution)
    name = facts["name"]
    release = facts["release_meta"].get("VERSION_ID", "")
    python = SYSTEM_PYTHON.get((name, release))
    if python is None:
        supported = ", ".join(f"{d} {r}" for d, r in SYSTEM_PYTHON)
        raise UnsupportedTarget(f"{host.name}: {name} {release} is not supported; supported: {supported}")
    system = Platform(name, release, python, python)
    if settings is None:
        return system
    too_old = tuple(int(p) for p in python.split(".")) < MIN_SERVER_PYTHON
    if settings.server_python == "conda" or (settings.server_python == "auto" and too_old):
        conda_python = settings.layout.conda_server_env / "bin" / f"python{CONDA_SERVER_PYTHON}"
        return Platform(name, release, python, CONDA_SERVER_PYTHON, str(conda_python))
    if too_old:
        raise UnsupportedTarget(
            f"{host.name}: {system.label} ships Python {python}, and JupyterHub 6 needs Python "
            f"{'.'.join(map(str, MIN_SERVER_PYTHON))} or newer. Nothing was changed. Fix: set "
            "jh_server_python to 'auto' or 'conda' (the server Python then comes from conda), "
            "or deploy to Ubuntu 22.04/24.04 or Debian 12/13."
        )
    return system
