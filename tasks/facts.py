"""Facts this deploy needs that pyinfra does not ship."""

from __future__ import annotations

import shlex
from pathlib import Path

from pyinfra.api import FactBase


class LooseOwnership(FactBase):
    """Paths below ``path`` not owned by user:group, or writable by group or others.

    Symlinks are skipped (their own mode is always 0777). At most 20 are listed.
    """

    default = list

    def command(self, path: str, user: str, group: str) -> str:
        return (
            f"find {shlex.quote(path)} ! -type l \\( ! -user {user} -o ! -group {group} -o -perm /022 \\)"
            " -print 2>/dev/null | head -n 20 || true"
        )

    def process(self, output):
        return list(output)


class ExposedFiles(FactBase):
    """Regular files named ``names`` in ``directory`` that group or others may access.

    find lists without following links; the fix is then made by the files' owner.
    """

    default = list

    def command(self, directory: str, names: list[str]) -> str:
        match = " -o ".join(f"-name {shlex.quote(name)}" for name in names)
        return (
            f"find {shlex.quote(directory)} -maxdepth 1 -type f \\( {match} \\) -perm /077 -printf '%f\\n'"
            " 2>/dev/null || true"
        )

    def process(self, output):
        return sorted(output)


class UfwStatus(FactBase):
    """Whether ufw is active, and the ports it allows ("80/tcp"). None without ufw."""

    def command(self) -> str:
        return "command -v ufw >/dev/null && ufw status || true"

    def process(self, output):
        lines = list(output)
        if not lines:
            return None
        allowed = {line.split()[0] for line in lines if " ALLOW " in f" {line} " and "(v6)" not in line}
        return {"active": "Status: active" in lines, "allowed": allowed}


# useradd's and groupadd's defaults where /etc/login.defs does not set them (Debian, Ubuntu).
LOGIN_DEFS_DEFAULTS = {"UID_MIN": 1000, "GID_MIN": 1000}


class LoginDefs(FactBase):
    """UID_MIN and GID_MIN of /etc/login.defs (1000 where unset): ids below them are system accounts.

    The last setting of a name wins, as in login.defs itself; a value that is not a decimal
    number keeps the default.
    """

    @staticmethod
    def default():
        return dict(LOGIN_DEFS_DEFAULTS)

    def command(self) -> str:
        return "grep -E '^[[:space:]]*(UID_MIN|GID_MIN)[[:space:]]' /etc/login.defs 2>/dev/null || true"

    def process(self, output):
        values = self.default()
        for line in output:
            fields = line.split()
            if len(fields) >= 2 and fields[0] in values and fields[1].isdigit():
                values[fields[0]] = int(fields[1])
        return values


class GroupEntries(FactBase):
    """Every group the host knows (``getent group``: /etc/group and NSS), name -> (gid, member names).

    Members are the supplementary ones listed with the group; primary members are in the
    users' own entries. Where a name appears twice (two NSS sources), the first wins, as for getent.
    """

    default = dict

    def command(self) -> str:
        return "getent group 2>/dev/null || cat /etc/group"

    def process(self, output):
        groups = {}
        for line in output:
            fields = line.strip().split(":")
            if len(fields) < 4 or not fields[0] or not fields[2].isdigit():
                continue
            members = [member.strip() for member in fields[3].split(",") if member.strip()]
            groups.setdefault(fields[0], (int(fields[2]), members))
        return groups


class FileDigests(FactBase):
    """Regular files directly in ``directory``: name -> "sha256 mode user:group", in one command."""

    default = dict

    def command(self, directory: str) -> str:
        quoted = shlex.quote(directory)
        return (
            f"cd {quoted} 2>/dev/null && find . -maxdepth 1 -type f -printf '%f %m %u:%g ' "
            "-exec sha256sum {} \\; || true"
        )

    def process(self, output):
        digests = {}
        for line in output:
            name, mode, owner, digest, _ = line.split(" ", 4)
            digests[name] = f"{digest} {mode} {owner}"
        return digests


class ResourceControl(FactBase):
    """The cgroup controllers the kernel has enabled (memory, cpu, pids, ...) and the memory in bytes."""

    def command(self) -> str:
        return "cat /proc/cgroups; grep '^MemTotal:' /proc/meminfo"

    def process(self, output):
        controllers, memory = set(), 0
        for fields in (line.split() for line in output):
            if fields[:1] == ["MemTotal:"]:
                memory = int(fields[1]) * 1024
            # subsys_name hierarchy num_cgroups enabled
            elif len(fields) == 4 and fields[3] == "1":
                controllers.add(fields[0])
        return {"controllers": controllers, "memory": memory}


class StaleServerEnvs(FactBase):
    """Server venvs in ``envs_dir`` that are neither kept nor run by any process (files/bin/prune-server-envs)."""

    default = list

    def command(self, envs_dir: str, keep: list[str]) -> str:
        script = (Path(__file__).resolve().parent.parent / "files" / "bin" / "prune-server-envs").read_text()
        args = " ".join(shlex.quote(str(arg)) for arg in ("--list", envs_dir, *keep))
        return f"bash -s -- {args} <<'PRUNE'\n{script}PRUNE"

    def process(self, output):
        return [line for line in output if line]


class UserServerUnits(FactBase):
    """Loaded units of users' servers (any state), by name."""

    default = list

    def command(self, prefix: str) -> str:
        return f"systemctl list-units --all --plain --no-legend {shlex.quote(prefix + '*')} | cut -d' ' -f1 || true"

    def process(self, output):
        return [line.strip() for line in output if line.strip().endswith(".service")]


class SystemVersions(FactBase):
    """The python3 and systemd of a release the deploy does not know (jh_allow_untested_release)."""

    def command(self) -> str:
        return (
            "python3 -c 'import sys; print(\"python3 %d.%d\" % sys.version_info[:2])'; systemctl --version | head -n 1"
        )

    def process(self, output):
        versions = {"python3": "0.0", "systemd": 0}
        for line in output:
            fields = line.split()
            if fields[:1] == ["python3"]:
                versions["python3"] = fields[1]
            elif fields[:1] == ["systemd"] and fields[1].isdigit():
                versions["systemd"] = int(fields[1])
        return versions
