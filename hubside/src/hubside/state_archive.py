"""hubside-archive-state: the hub's state as a tar stream on standard output, for a backup.

    hubside-archive-state STATE_DIR DATABASE BINDINGS SECRET...

Run as the hub user (files/bin/archive-hub-state), on its own state folder: a consistent copy of
the SQLite DATABASE (SQLite's backup API, so the hub keeps running; none with postgresql:NAME,
whose dump postgres makes), the SECRETs, and the OAuth name BINDINGS if the hub has them.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tarfile
import tempfile


def archive_state(out, state: str, database: str, bindings: str, secrets: list[str]) -> None:
    copy = None
    try:
        if not database.startswith("postgresql:"):
            descriptor, copy = tempfile.mkstemp(dir=state, prefix=".backup-", suffix=".sqlite")
            os.close(descriptor)
            source, target = sqlite3.connect(database), sqlite3.connect(copy)
            source.backup(target)
            target.close()
            source.close()
        with tarfile.open(fileobj=out, mode="w|") as archive:
            if copy:
                archive.add(copy, arcname=os.path.basename(database))
            for name in secrets:
                archive.add(os.path.join(state, name), arcname=name)
            if os.path.lexists(os.path.join(state, bindings)):
                archive.add(os.path.join(state, bindings), arcname=bindings)
    finally:
        if copy:
            os.unlink(copy)


def main() -> None:
    state, database, bindings, *secrets = sys.argv[1:]
    archive_state(sys.stdout.buffer, state, database, bindings, secrets)
