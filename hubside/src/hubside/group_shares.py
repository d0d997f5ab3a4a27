"""Shares with a group reach its members' tokens (jh_sharing).

JupyterHub (5.5.4 and 6.1.1, and its main branch in August 2026) counts a group's shares in its
members' own scopes, but when it resolves a token's it adds only the shares with the token's owner
(`scopes.get_scopes_for` reads `shared_with_me`, not `all_shared_with_me`). A member's OAuth token
at the shared server then loses the share's access ("discarding scopes"), and a share with a group
grants nothing. install() wraps that function: a token also holds what it asked for that its
owner's groups were shared, as the owner's own shares already count. Should JupyterHub count them
itself, this adds nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from jupyterhub import orm, scopes
from jupyterhub.apihandlers import base as api_base


def install() -> None:
    """Wrap get_scopes_for where the hub calls it (once; its API handlers imported it by name)."""
    if getattr(scopes.get_scopes_for, "counts_group_shares", False):
        return
    scopes.get_scopes_for = api_base.get_scopes_for = with_group_shares(scopes.get_scopes_for)


def with_group_shares(get_scopes_for):
    def get_scopes_counting_group_shares(orm_object):
        found = get_scopes_for(orm_object)
        owner = orm_object.user if isinstance(orm_object, orm.APIToken) else None
        shared = frozenset(
            scope
            for group in (owner.groups if owner else [])
            for share in group.shared_with_me
            for scope in share.scopes
        )
        if not shared:
            return found
        asked = set(orm_object.scopes)
        if "inherit" in asked:
            return found | shared
        asked = scopes.expand_scopes(asked, owner=owner, oauth_client=orm_object.oauth_client)
        if orm_object.client_id != "jupyterhub":
            # As JupyterHub does: a token of a server's client may reach that server.
            asked |= scopes.access_scopes(orm_object.oauth_client)
        session = sa.inspect(orm_object).session
        return found | scopes._intersect_expanded_scopes(asked, shared, db=session)

    get_scopes_counting_group_shares.counts_group_shares = True
    return get_scopes_counting_group_shares
