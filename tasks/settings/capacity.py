"""How the hub takes a class arriving at once (docs/operations.md, "A class arrives")."""

from __future__ import annotations

from pydantic import Field, StrictInt

from tasks.settings.parts import Strict


class Capacity(Strict):
    start_slots: StrictInt | None = Field(
        None,
        ge=1,
        le=256,
        description="Servers that start at the same time on the hub server. When more people start theirs "
        "at once, the others wait their turn, first come first served, and their progress page shows their "
        "place (starting a server is mostly CPU: started all at once, everyone waits as long as the last). "
        "None: one per CPU core, at most one per GiB of memory.",
        json_schema_extra={"section": "Capacity"},
    )
