"""OAuth name bindings: Unix name -> the provider's account (OpenID Connect ``sub``, GitHub ``id``).

The file is the hub's (in its state folder), written whole and renamed over the old one. The
authenticators (hubside.oauth) bind a name once its person is let in; a restore adds an archive's
bindings to the host's (``hubside-merge-names``, run as the hub user), never giving a name to
another account than the one that holds it now.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile


class NotBindings(ValueError):
    pass


def load(path: str) -> dict[str, str]:
    """The bindings in path ({} when there is no file)."""
    try:
        with open(path) as file:
            names = json.load(file)
    except FileNotFoundError:
        return {}
    except ValueError:
        names = None
    if not (isinstance(names, dict) and all(isinstance(v, str) for v in names.values())):
        raise NotBindings(f"{path}: not OAuth name bindings (a JSON object of names to account ids)")
    return names


def save(path: str, names: dict[str, str]) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".names-")
    with os.fdopen(descriptor, "w") as file:
        json.dump(names, file, sort_keys=True)
    os.replace(temporary, path)


def merge(restored: dict[str, str], current: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """current with restored's bindings added; the names both bind to different accounts (current's kept)."""
    names, conflicts = dict(current), []
    for name, account in sorted(restored.items()):
        if names.setdefault(name, account) != account:
            conflicts.append(name)
    return names, conflicts


def merge_main(argv: list[str] | None = None) -> None:
    """hubside-merge-names RESTORED CURRENT: add RESTORED's bindings to CURRENT's."""
    restored, current = argv if argv is not None else sys.argv[1:]
    try:
        names, conflicts = merge(load(restored), load(current))
    except NotBindings as error:
        sys.exit(str(error))
    for name in conflicts:
        print(f"kept this hub's binding of {name}: the archive binds it to another account", file=sys.stderr)
    save(current, names)
