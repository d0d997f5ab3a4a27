"""Facts this deploy needs that pyinfra does not ship."""

from __future__ import annotations

import shlex

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
