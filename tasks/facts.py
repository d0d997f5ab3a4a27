"""Facts this deploy needs that pyinfra does not ship."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from pyinfra.api import FactBase

from tasks.layout import shell_value


class UfwStatus(FactBase):
    """Whether ufw is active, the ports it allows ("80/tcp") and the addresses it lets in. None without ufw."""

    def command(self) -> str:
        return "command -v ufw >/dev/null && ufw status || true"

    def process(self, output):
        lines = list(output)
        if not lines:
            return None
        rules = [line.split() for line in lines if " ALLOW " in f" {line} " and "(v6)" not in line]
        allowed = {rule[0] for rule in rules}
        # "Anywhere  ALLOW  10.0.0.11": everything from that address (a cluster's other hosts).
        sources = {rule[-1] for rule in rules if rule[0] == "Anywhere" and len(rule) == 3}
        return {"active": "Status: active" in lines, "allowed": allowed, "sources": sources}


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


class Accounts(FactBase):
    """Every account the host knows (``getent passwd``), in the shape of pyinfra's Users fact.

    name -> uid, gid, group (primary, by name), groups (the others), home, shell, and for
    the names in ``shadow_of`` only, the password hash. One command (pyinfra's Users runs
    several per account).
    """

    default = dict

    def command(self, shadow_of: list[str]) -> str:
        names = " ".join(shlex.quote(name) for name in shadow_of)
        shadow = f"getent shadow {names} 2>/dev/null; " if shadow_of else ""
        return f"getent passwd; echo @group; getent group; echo @shadow; {shadow}true"

    def process(self, output):
        section, passwd, group_names, members, hashes = "passwd", [], {}, {}, {}
        for line in output:
            if line in ("@group", "@shadow"):
                section = line[1:]
                continue
            fields = line.split(":")
            if section == "passwd" and len(fields) == 7 and fields[2].isdigit() and fields[3].isdigit():
                passwd.append(fields)
            elif section == "group" and len(fields) == 4 and fields[2].isdigit():
                group_names.setdefault(int(fields[2]), fields[0])
                for member in filter(None, (m.strip() for m in fields[3].split(","))):
                    members.setdefault(member, []).append(fields[0])
            elif section == "shadow" and len(fields) >= 2:
                hashes[fields[0]] = fields[1]
        users = {}
        for name, _, uid, gid, comment, home, shell in passwd:
            primary = group_names.get(int(gid))
            users.setdefault(
                name,
                {
                    "uid": int(uid),
                    "gid": int(gid),
                    "group": primary,
                    "groups": [group for group in members.get(name, []) if group != primary],
                    "home": home or None,
                    "shell": shell or None,
                    "comment": comment or None,
                    "password": hashes.get(name),
                },
            )
        return users


class ResourceControl(FactBase):
    """The cgroup controllers the kernel has enabled (memory, cpu, pids, ...), the memory in bytes
    and the CPUs online."""

    def command(self) -> str:
        return "cat /proc/cgroups; grep '^MemTotal:' /proc/meminfo; echo CPUs: $(getconf _NPROCESSORS_ONLN)"

    def process(self, output):
        controllers, memory, cpus = set(), 0, 1
        for fields in (line.split() for line in output):
            if fields[:1] == ["MemTotal:"]:
                memory = int(fields[1]) * 1024
            elif fields[:1] == ["CPUs:"] and len(fields) == 2 and fields[1].isdigit():
                cpus = max(1, int(fields[1]))
            # subsys_name hierarchy num_cgroups enabled
            elif len(fields) == 4 and fields[3] == "1":
                controllers.add(fields[0])
        return {"controllers": controllers, "memory": memory, "cpus": cpus}


class StaleServerEnvs(FactBase):
    """Server venvs in ``envs_dir`` that are neither kept nor run by any process (files/bin/prune-server-envs)."""

    default = list

    def command(self, envs_dir: str, keep: list[str]) -> str:
        # The shipped copy may be an older version's, or none yet: this one, told ENVS_DIR
        # on a line before it (run as a file, it reads ENVS_DIR from layout.env).
        script = (Path(__file__).resolve().parent.parent / "files" / "bin" / "prune-server-envs").read_text()
        args = " ".join(shlex.quote(str(arg)) for arg in ("--list", *keep))
        return f"bash -s -- {args} <<'PRUNE'\nENVS_DIR={shell_value(envs_dir)}\n{script}PRUNE"

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


# Names the deploy manages are made of these; anything else in a listed directory (a hub
# user's oddly named file) is left out rather than parsed, so it cannot pose as another entry.
SAFE_PATH = "[A-Za-z0-9._@/+:-]*"
# Files above this size are listed without a digest (a conda installer, not a config).
DIGEST_MAX_KIB = 4096


class PathStates(FactBase):
    """Every entry of ``hashed`` and ``listed`` directories (and the directories themselves), in one command.

    path -> (kind, mode, user, group, link target, sha256): kind f/d/l/..., mode an int,
    sha256 only for regular files of ``hashed`` directories (root's own: a file there cannot
    be swapped for a pipe or a link while it is read). ``deep`` directories are listed two
    levels down. Used by tasks.ops to plan only what differs from the host.
    """

    default = dict

    def command(self, hashed: list[str], listed: list[str], deep: list[str]) -> str:
        def find(dirs: list[str], depth: int, *tests: str) -> str:
            if not dirs:
                return ""
            quoted = " ".join(shlex.quote(d) for d in dirs)
            return f"find {quoted} -maxdepth {depth} -regextype posix-extended -regex '{SAFE_PATH}' {' '.join(tests)}"

        # NUL after every field: a link target (which its owner chooses, newlines included) can
        # never read as another record.
        stat = "-printf 'S\\0%y\\0%m\\0%u\\0%g\\0%p\\0%l\\0'"
        parts = [
            find([*hashed, *listed], 1, stat),
            find(deep, 2, stat),
            "printf '\\0@digests\\0\\n'",
            # Bounded: a pipe put there (a careless admin let others write) must not hang the run.
            find(hashed, 1, f"-type f -size -{DIGEST_MAX_KIB}k -exec timeout 60 sha256sum {{}} +"),
        ]
        return "; ".join(f"{part} 2>/dev/null" for part in parts if part) + "; true"

    def process(self, output):
        text = "\n".join(output)
        records, _, digest_lines = text.partition("\0@digests\0")
        fields = records.split("\0")
        entries, digests = {}, {}
        index = 0
        while index + 7 <= len(fields):
            if fields[index].strip() != "S":
                index += 1
                continue
            kind, mode, user, group, path, target = fields[index + 1 : index + 7]
            if mode.isdigit():
                entries[path.rstrip("/") or "/"] = [kind, int(mode, 8), user, group, target or None, None]
            index += 7
        for line in digest_lines.splitlines():
            if len(line) > 66 and line[64:66] == "  ":
                digests[line[66:]] = line[:64]
        for path, digest in digests.items():
            if path in entries:
                entries[path][5] = digest
        return {path: tuple(entry) for path, entry in entries.items()}


class UnitStates(FactBase):
    """For each unit: (ActiveState, UnitFileState), e.g. ("active", "enabled")."""

    default = dict

    def command(self, units: list[str]) -> str:
        names = " ".join(shlex.quote(unit) for unit in units)
        return f"systemctl show --property=Id,ActiveState,UnitFileState -- {names} || true"

    def process(self, output):
        states, current = {}, {}
        for line in [*output, ""]:
            if not line.strip():
                if "Id" in current:
                    states[current["Id"]] = (current.get("ActiveState", ""), current.get("UnitFileState", ""))
                current = {}
            else:
                key, _, value = line.partition("=")
                current[key] = value
        return states


class LooseTrees(FactBase):
    """Paths below any of ``paths`` not owned by root:root, or writable by group or others (20 at most)."""

    default = list

    def command(self, paths: list[str]) -> str:
        quoted = " ".join(shlex.quote(path) for path in paths)
        return (
            f"find {quoted} ! -type l \\( ! -user root -o ! -group root -o -perm /022 \\)"
            " -print 2>/dev/null | head -n 20 || true"
        )

    def process(self, output):
        return list(output)


class HubGroups(FactBase):
    """The groups the deploy made in the hub, {name: [members]}, read through the hub's API
    (``hubside-people ... groups``, a command line the caller builds); None if the hub does not
    answer (not installed or not started yet, or without the deploy's token)."""

    def command(self, command_line: str) -> str:
        return f"{command_line} 2>/dev/null || true"

    def process(self, output):
        text = "\n".join(output).strip()
        try:
            groups = json.loads(text) if text else None
        except ValueError:
            return None
        return groups if isinstance(groups, dict) else None


class PostgresDatabase(FactBase):
    """Whether the hub's PostgreSQL role exists, and the owner of its database (None: no such
    database; both None where PostgreSQL is not installed). Names are whitelisted (settings)."""

    @staticmethod
    def default():
        return {"role": None, "owner": None}

    def command(self, role: str, database: str) -> str:
        query = (
            f"select 'role:' || rolname from pg_roles where rolname = '{role}'; "
            f"select 'owner:' || pg_get_userbyid(datdba) from pg_database where datname = '{database}'"
        )
        return f"command -v psql >/dev/null && runuser -u postgres -- psql -XtAq -c {shlex.quote(query)} 2>/dev/null || true"

    def process(self, output):
        found = self.default()
        for line in output:
            key, _, value = line.strip().partition(":")
            if key in found:
                found[key] = value
        return found


class PresentLines(FactBase):
    """Which of the (file, whole line) pairs are there (their indexes), whether the sessions' PAM
    runs pam_systemd, and whether logind is masked: one command for the PAM files and deny lists
    the deploy adds lines to (tasks/confinement.py, tasks/cluster_people.py)."""

    def command(self, pairs: list[tuple[str, str]]) -> str:
        checks = "".join(
            f"grep -qxF -- {shlex.quote(line)} {shlex.quote(path)} 2>/dev/null && echo line:{index}; "
            for index, (path, line) in enumerate(pairs)
        )
        return (
            f"{checks}grep -qE '^session.*pam_systemd\\.so' /etc/pam.d/common-session 2>/dev/null && echo pam_systemd; "
            '[ "$(systemctl is-enabled systemd-logind.service 2>/dev/null)" = masked ] && echo logind-masked; '
            "for f in /etc/pam.d/cron /etc/pam.d/atd /etc/pam.d/sshd; do [ -e $f ] && echo file:$f; done; true"
        )

    def process(self, output):
        found = {"lines": set(), "files": set(), "pam_systemd": False, "logind_masked": False}
        for line in output:
            line = line.strip()
            if line.startswith("line:"):
                found["lines"].add(int(line[5:]))
            elif line.startswith("file:"):
                found["files"].add(line[5:])
            elif line == "pam_systemd":
                found["pam_systemd"] = True
            elif line == "logind-masked":
                found["logind_masked"] = True
        return found


class SudoRights(FactBase):
    """What sudo lets each named account run (sudo itself asked, whatever rule or group grants it):
    name -> the command lines of `sudo -l -U name` (empty: nothing)."""

    default = dict

    def command(self, names: list[str]) -> str:
        asked = "; ".join(f"echo @{shlex.quote(name)}; sudo -n -l -U {shlex.quote(name)} 2>/dev/null" for name in names)
        return f"command -v sudo >/dev/null && {{ {asked}; }}; true" if names else "true"

    def process(self, output):
        rights, name, listing = {}, None, False
        for line in output:
            if line.startswith("@"):
                name, listing = line[1:].strip(), False
                rights[name] = []
            elif name is not None and "may run the following commands" in line:
                listing = True
            elif name is not None and listing and line.strip():
                rights[name].append(line.strip())
        return rights
