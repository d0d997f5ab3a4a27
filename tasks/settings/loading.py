"""The settings of the hosts of a pyinfra run, each host's checked once."""

import sys

from tasks.settings.model import Settings, SettingsError

_VALIDATED: dict[str, Settings] = {}


def current_settings() -> Settings:
    """The current host's settings, after checking every host's.

    Checking all hosts at once means one bad inventory entry stops the whole run
    before any host is changed, not just the host it belongs to.
    """
    from pyinfra import host, state

    for other in state.inventory:
        if other.name not in _VALIDATED:
            try:
                _VALIDATED[other.name] = Settings.from_data(other.data.dict())
            except SettingsError as error:
                raise SettingsError(f"host {other.name}: {error}") from None
            for risk in _VALIDATED[other.name].risks_taken():
                print(f"--> {other.name}: WARNING: {risk}", file=sys.stderr, flush=True)
    return _VALIDATED[host.name]


def host_settings(name: str) -> Settings:
    """Another host's settings (a cluster's hub reads its nodes'), checked by current_settings."""
    return _VALIDATED[name]
