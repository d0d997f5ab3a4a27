"""What the hub needs of an external identity provider, before the hub's config uses it.

LDAP needs nothing on the host but the CA that signed the directory's certificate
(jh_extra_ca_certificates). OAuth (OpenID Connect, GitHub) needs the client secret (uploaded
root:<hub user> 0640 to a folder of root's) and the hub's authenticators (files/hub/oauthunix.py);
OpenID Connect also the provider's endpoints, read from the issuer's discovery document on the
host (files/bin/oidc-discover), once per issuer.
"""

from __future__ import annotations

from pyinfra.operations import server

from tasks import layout
from tasks.ops import FILES, command, directory, root_file
from tasks.platform import Platform
from tasks.settings import Settings
from tasks.snapshot import Managed, entry


def managed_paths(settings: Settings, platform: Platform) -> Managed:
    """The identity provider's files, with OAuth."""
    return Managed(hashed=(settings.layout.auth_dir,)) if settings.oauth else Managed()


def apply(settings: Settings) -> None:
    paths, oauth = settings.layout, settings.oauth
    if oauth is None:
        return
    directory(f"Identity provider files {paths.auth_dir}", paths.auth_dir, "750", "root", settings.hub_user)
    root_file(
        "OAuth client secret",
        oauth.client_secret_file,
        paths.oauth_client_secret,
        mode="640",
        group=settings.hub_user,
    )
    root_file("Hub authenticators for OAuth logins", FILES / "hub" / "oauthunix.py", paths.oauth_module)
    if settings.oidc is None:
        return
    endpoints = paths.oidc_endpoints(str(settings.oidc.issuer))
    if entry(endpoints) is None:
        server.shell(
            name=f"OpenID Connect endpoints of {settings.oidc.issuer}",
            # With the server venv's Python (3.9+ on every release), in root's own folder.
            commands=[
                command(
                    paths.venv / "bin" / "python",
                    paths.script("oidc-discover"),
                    str(settings.oidc.issuer),
                    endpoints,
                    layout.SYSTEM_CA_BUNDLE,
                )
            ],
        )
