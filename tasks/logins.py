"""What the hub needs of an external identity provider, before the hub's config uses it.

LDAP needs nothing on the host but the CA that signed the directory's certificate
(jh_extra_ca_certificates). OpenID Connect needs the client secret (uploaded root:<hub user>
0640 to a folder of root's) and the provider's endpoints, read from the issuer's discovery
document on the host (files/bin/oidc-discover), once per issuer.
"""

from __future__ import annotations

from pyinfra.operations import server

from tasks import layout
from tasks.ops import FILES, command, directory, root_file
from tasks.settings import Settings
from tasks.snapshot import entry


def apply(settings: Settings) -> None:
    paths, oidc = settings.layout, settings.oidc
    if oidc is None:
        return
    directory(f"Identity provider files {paths.auth_dir}", paths.auth_dir, "750", "root", settings.hub_user)
    root_file(
        "OpenID Connect client secret",
        oidc.client_secret_file,
        paths.oidc_client_secret,
        mode="640",
        group=settings.hub_user,
    )
    root_file("Hub authenticator for OpenID Connect", FILES / "hub" / "oidcauth.py", paths.oidc_module)
    endpoints = paths.oidc_endpoints(str(oidc.issuer))
    if entry(endpoints) is None:
        server.shell(
            name=f"OpenID Connect endpoints of {oidc.issuer}",
            # With the server venv's Python (3.9+ on every release), in root's own folder.
            commands=[
                command(
                    paths.venv / "bin" / "python",
                    paths.script("oidc-discover"),
                    str(oidc.issuer),
                    endpoints,
                    layout.SYSTEM_CA_BUNDLE,
                )
            ],
        )
