"""Sharing and real-time collaboration (jh_sharing, jh_collaboration): people working in one
person's server, each only where every server has an origin of its own (jh_user_subdomains).

Without per-user origins, a page a user's server serves runs its scripts with the visitor's
session against the hub and every server the visitor may open (JupyterHub's web-security
documentation): letting people into each other's servers is then only safe among people who
trust each other, which a class is not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, StrictBool

from tasks.settings.parts import Strict

if TYPE_CHECKING:
    from tasks.settings.model import Settings

# Why sharing and collaboration need per-user origins, in the refusals' words.
WHY = (
    "without it every server is served under the hub's own origin, and a page a user's server serves runs "
    "with the visitor's session against the hub and the other servers the visitor may open (JupyterHub's "
    "web-security documentation): letting people into each other's servers is safe only with per-user "
    "subdomains"
)


class Sharing(Strict):
    sharing: StrictBool = Field(
        False,
        description="People share their servers (JupyterHub's sharing): the owner of a server lets a named person "
        "or a group of `jh_groups` open it, read-only or with execution, and withdraws it when they like; admins "
        "see who shares what (docs/sharing.md). Needs `jh_user_subdomains`.",
        json_schema_extra={"section": "Sharing and collaboration"},
    )
    collaboration: StrictBool = Field(
        False,
        description="Real-time collaboration (jupyter-collaboration): the people who may open one server edit "
        "its notebooks together and see each other's cursors and changes. Off, its extensions are not loaded. "
        "Needs `jh_user_subdomains`.",
    )


def check(settings: Settings) -> None:
    """jh_sharing and jh_collaboration need per-user origins; raises ValueError naming them."""
    for name in ("sharing", "collaboration"):
        if getattr(settings, name) and not settings.user_subdomains:
            raise ValueError(f"jh_{name} needs jh_user_subdomains = True: {WHY}")
