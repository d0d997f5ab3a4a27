"""What the hub needs of an external identity provider, before the hub's config uses it.

LDAP needs nothing on the host but the CA that signed the directory's certificate
(jh_extra_ca_certificates). OAuth (OpenID Connect, GitHub) needs the client secret (uploaded
root:<hub user> 0640 to a folder of root's); LTI 1.3 the tool's private key root's alone (0600
root:root): the hub has only its public JWK (hub.json), the grades-back tool, run as root, signs
with the key; OpenID Connect also the provider's endpoints, read
from the issuer's discovery document on the host (hubside-oidc-discover), once per issuer: before
the hub's configuration that names them is used.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from pyinfra.operations import server

from tasks import layout
from tasks.ops import command, directory, private_transfer, root_file
from tasks.platform import Platform
from tasks.settings import Settings
from tasks.snapshot import Managed, entry


def managed_paths(settings: Settings, platform: Platform) -> Managed:
    """The identity provider's files, with OAuth or LTI."""
    return Managed(hashed=(settings.layout.auth_dir,)) if settings.bound_login else Managed()


def apply(settings: Settings, env: PurePosixPath) -> None:
    """env: the server venv being built (the one in use may not exist yet)."""
    paths, oauth = settings.layout, settings.oauth
    if not settings.bound_login:
        return
    directory(f"Identity provider files {paths.auth_dir}", paths.auth_dir, "750", "root", settings.hub_user)
    if settings.lti13:
        root_file("LTI tool key", settings.lti13.tool_key_file, paths.lti_tool_key, mode="600", **private_transfer())
        return
    root_file(
        "OAuth client secret",
        oauth.client_secret_file,
        paths.oauth_client_secret,
        mode="640",
        group=settings.hub_user,
        **private_transfer(),
    )
    if settings.oidc is None:
        return
    endpoints = paths.oidc_endpoints(str(settings.oidc.issuer))
    if entry(endpoints) is None:
        server.shell(
            name=f"OpenID Connect endpoints of {settings.oidc.issuer}",
            # Root, in its own folder, with the hub's package from the server venv.
            commands=[
                command(
                    env / "bin" / "hubside-oidc-discover",
                    str(settings.oidc.issuer),
                    endpoints,
                    layout.SYSTEM_CA_BUNDLE,
                )
            ],
        )
