"""Paths on the controller the deploy writes secrets to or reads code from: reached only through
folders nobody else can change (the way OpenSSH checks a key's folders). A folder anyone may write
to lets another user make the path first, or swap what is in it."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def unsafe(path: Path) -> str | None:
    """Why another user of the controller could change what is at path, or None.

    Every existing folder from / down to path (and path itself) must be root's or the current
    user's and writable by nobody else, except a sticky folder such as /tmp, as long as what is
    below it is the user's own; a path still to be made there could be made first by anyone."""
    me = os.geteuid()
    target = Path(os.path.abspath(path))
    chain = [*reversed(target.parents), target]
    sticky_above = None
    for place in chain:
        try:
            found = os.stat(place)
        except FileNotFoundError:
            if sticky_above is not None:
                return f"{place} is still to be made in {sticky_above}, where anyone may make it first"
            return None
        if found.st_uid not in (0, me):
            return f"{place} belongs to another user (uid {found.st_uid})"
        others_write = found.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if others_write and not (stat.S_ISDIR(found.st_mode) and found.st_mode & stat.S_ISVTX):
            return f"{place} may be changed by others (mode {stat.S_IMODE(found.st_mode):o})"
        sticky_above = place if others_write else None
    return None
