"""What a host has, read in a handful of commands while the run is planned.

pyinfra runs one command per fact, and each of its file or service operations reads
several facts, even when nothing is to change. Here the deploy reads the directories it
manages in one command (tasks.facts.PathStates: kind, mode, owner, link target and
sha256 of every entry) and plans an operation only where the host differs; where it
does, pyinfra's operation takes over (and reads its own facts). Each task module names the
directories it manages (its ``managed_paths``, a Managed) and deploy.py reads them all with
``prefetch_managed``; a directory forgotten is read on first use (one more command, never a
wrong answer).

Everything here is read in pyinfra's planning stage, before any operation runs, so a
value read once stays true for the whole plan: the same as pyinfra's own facts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from pyinfra import host

from tasks import layout
from tasks.facts import PathStates, UnitStates

# Units of the system the deploy runs, beside its own (layout.SERVICES).
OTHER_UNITS = (
    "nginx.service",
    "certbot.timer",
    layout.SERVER_PORTS_SERVICE,
    layout.POSTGRESQL_SERVICE,
    *layout.CLUSTER_SERVICES,
    # jh_monitoring's
    *layout.MONITORING_PACKAGES.values(),
    layout.MONITORING_PORTS_SERVICE,
    layout.METRICS_TIMER,
    layout.NOTIFY_ALERTS_SOCKET,
    layout.NODE_EXPORTER_ACCESS_SERVICE,
)

# (host name, fact class, its arguments) -> value, for the planning stage of this run.
_FACTS: dict[tuple, Any] = {}
# host name -> path -> (kind, mode, user, group, link target, sha256)
_ENTRIES: dict[str, dict[str, tuple]] = {}
# host name -> directories whose entries are known, with digests ("hashed") or without.
_LISTED: dict[str, set[str]] = {}
_HASHED: dict[str, set[str]] = {}
_DEEP: dict[str, set[str]] = {}


class Unchanged:
    """Stands for an operation the host's state made unnecessary: it is not planned at all."""

    will_change = False

    @staticmethod
    def did_change() -> bool:
        return False


UNCHANGED = Unchanged()


def fact(cls, **kwargs):
    """host.get_fact, read once per host for this run's plan."""
    key = (host.name, cls, repr(sorted(kwargs.items())))
    if key not in _FACTS:
        _FACTS[key] = host.get_fact(cls, **kwargs)
    return _FACTS[key]


def prefetch(hashed=(), listed=(), deep=()) -> None:
    """Read these directories' entries in one command: ``hashed`` with file digests (root's
    directories only), ``listed`` without, ``deep`` two levels down without."""
    listed_now, hashed_now = _LISTED.setdefault(host.name, set()), _HASHED.setdefault(host.name, set())
    hashed = sorted({str(d) for d in hashed} - hashed_now)
    listed = sorted({str(d) for d in listed} - listed_now - set(hashed))
    deep_now = _DEEP.setdefault(host.name, set())
    deep = sorted({str(d) for d in deep} - deep_now)
    if not (hashed or listed or deep):
        return
    entries = host.get_fact(PathStates, hashed=hashed, listed=listed, deep=deep)
    _ENTRIES.setdefault(host.name, {}).update(entries)
    hashed_now.update(hashed)
    listed_now.update(hashed, listed, deep)
    deep_now.update(deep)
    for directory in deep:
        listed_now.update(path for path, e in entries.items() if e[0] == "d" and _parent(path) == directory)


@dataclass(frozen=True)
class Managed:
    """The directories a task module manages, as prefetch reads them: ``hashed`` with file digests
    (root's directories only), ``listed`` without, ``deep`` two levels down without."""

    hashed: tuple[PurePosixPath | str, ...] = ()
    listed: tuple[PurePosixPath | str, ...] = ()
    deep: tuple[PurePosixPath | str, ...] = ()


def prefetch_managed(parts: Iterable[Managed]) -> None:
    """The directories of every task module, read in one command. Only a matter of speed: a
    directory missing here is read when a task first needs it."""
    parts = list(parts)
    prefetch(
        hashed=[path for part in parts for path in part.hashed],
        listed=[path for part in parts for path in part.listed],
        deep=[path for part in parts for path in part.deep],
    )


def entry(path: PurePosixPath | str, hashed: bool = False) -> tuple | None:
    """(kind, mode, user, group, link target, sha256) of path, None if absent.

    hashed: the digest is wanted (the parent must be a directory only root can write).
    """
    path = str(path)
    parent = _parent(path)
    if parent not in (_HASHED if hashed else _LISTED).get(host.name, set()):
        prefetch(hashed=[parent]) if hashed else prefetch(listed=[parent])
    return _ENTRIES[host.name].get(path)


def children(directory: PurePosixPath | str, kind: str | None = None) -> list[str]:
    """Names of the entries of a directory (of this kind: "d", "f", "l")."""
    directory = str(directory)
    if directory not in _LISTED.get(host.name, set()):
        prefetch(listed=[directory])
    return sorted(
        PurePosixPath(path).name
        for path, e in _ENTRIES[host.name].items()
        if _parent(path) == directory and path != directory and (kind is None or e[0] == kind)
    )


def is_state(path, kind: str, mode: str, user: str, group: str, sha256: str | None = None) -> bool:
    """Whether path is already this: kind, mode (octal string), owner, and content digest."""
    found = entry(path, hashed=sha256 is not None)
    return found is not None and found[:4] == (kind, int(mode, 8), user, group) and found[5] == sha256


def unit_state(unit: str) -> tuple[str, str]:
    """(ActiveState, UnitFileState) of a unit; the deploy's units are read together, once."""
    known = (*layout.SERVICES, *OTHER_UNITS)
    return fact(UnitStates, units=list(known) if unit in known else [unit]).get(unit, ("", ""))


def _parent(path: str) -> str:
    return str(PurePosixPath(path).parent)
