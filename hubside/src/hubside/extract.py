"""hubside-safe-extract: extract a tar archive into a new, empty directory: regular files and directories only.

    hubside-safe-extract ARCHIVE DEST [NAME ...]      (ARCHIVE "-": standard input, a file)

Refuses the whole archive, before writing anything, if a member is a link, a device or
a FIFO, has an absolute name or a `..` component, or (with NAMEs) is not one of NAMEs or
below one of them. Files are written 0600 and directories 0700, owned by whoever runs
this: run it as the account that is to own the result.
"""

from __future__ import annotations

import os
import sys
import tarfile
from pathlib import PurePosixPath


def problems(members, allowed):
    for member in members:
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts or not name.parts:
            yield f"{member.name!r}: absolute or outside the archive"
        elif not (member.isfile() or member.isdir()):
            yield f"{member.name!r}: not a regular file or directory"
        elif allowed and not any(name == PurePosixPath(a) or PurePosixPath(a) in name.parents for a in allowed):
            yield f"{member.name!r}: not expected in this archive"


def extract(archive, dest, allowed):
    # "-": the file the caller opened for us (one its own rights would not let us open).
    source = {"fileobj": sys.stdin.buffer} if archive == "-" else {"name": archive}
    with tarfile.open(**source) as tar:
        members = tar.getmembers()
        refused = list(problems(members, allowed))
        if refused:
            sys.exit(f"refusing {archive}:\n  " + "\n  ".join(refused))
        os.mkdir(dest, 0o700)
        for member in members:
            path = os.path.join(dest, os.path.normpath(member.name))
            if member.isdir():
                os.makedirs(path, 0o700, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
            source = tar.extractfile(member)
            # O_EXCL and O_NOFOLLOW: a fresh file in a directory this run made.
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(descriptor, "wb") as target:
                while chunk := source.read(1 << 20):
                    target.write(chunk)


def main():
    extract(sys.argv[1], sys.argv[2], sys.argv[3:])
