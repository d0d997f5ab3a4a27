"""Bad settings, said in the settings' own names: pyinfra prints a SettingsError without a traceback."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError
from pyinfra.api.exceptions import PyinfraError

from tasks.settings.constants import PREFIX


class SettingsError(PyinfraError):
    """Raised for bad settings; pyinfra prints it without a traceback."""


def explain(error: ValidationError, known: Iterable[str]) -> str:
    """pydantic's errors as lines naming each setting (jh_...) and what is wrong with it."""
    lines = ["invalid settings (no host was changed):"]
    for problem in error.errors():
        location = [str(part) for part in problem["loc"]]
        setting = PREFIX + location[0] if location else ""
        where = "".join(f"[{part}]" for part in location[1:]) + (": " if location else "")
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden" and len(location) > 1:
            message = "unknown key here (check its spelling in docs/settings.md)"
        elif problem["type"] == "extra_forbidden":
            message = f"unknown setting; known settings are: {', '.join(PREFIX + f for f in known)}"
        lines.append(f"  {setting}{where}{message}")
    return "\n".join(lines)
