"""The settings that take a risk on purpose: each lets through what the checks refuse otherwise,
says so in its name, and makes every run print a warning (tasks/settings/loading.py)."""

from __future__ import annotations

from pydantic import Field, StrictBool

from tasks.settings.parts import Strict


class Risks(Strict):
    allow_public_http: StrictBool = Field(
        False,
        description="Let the proxy listen on an address other than loopback without `jh_domain` (no TLS): "
        "passwords and tokens cross the network in clear. For a closed lab network only.",
        json_schema_extra={"section": "Risks taken on purpose"},
    )
    allow_plain_http_downloads: StrictBool = Field(
        False,
        description="Let `jh_pip_index_url`, `jh_npm_registry_url`, `jh_conda_channel_alias`, "
        "`jh_conda_installer_url` and `jh_nltk_index_url` be plain `http://`: root then installs what anyone on "
        "the path serves. For a mirror on a network you trust only.",
    )
    allow_unlimited_tasks: StrictBool = Field(
        False,
        description="Let `jh_user_tasks_limit` be none: one person's fork bomb then takes the machine.",
    )

    def risks_taken(self) -> list[str]:
        """What the settings let through on purpose, for the run's warnings."""
        return [
            f"jh_{name} = True: {field.description.split(':')[0]}"
            for name, field in Risks.model_fields.items()
            if getattr(self, name)
        ]
