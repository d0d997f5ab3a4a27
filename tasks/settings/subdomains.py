"""Per-user origins (jh_user_subdomains) and DNS-01 certificates (jh_dns01): docs/security.md.

Under the hub's own origin, a page that one user's server serves runs, for anyone who opens it,
with that visitor's session against the hub and the servers they may open. With per-user origins
each server is `<name>.<jh_domain>` (JupyterHub's subdomain_host), the hub `jh_domain`, and the
browser keeps them apart. That needs wildcard DNS (checked from the controller before any change,
tasks/web.py) and a certificate for `*.<jh_domain>`: from the ACME server by DNS-01 (certbot's
RFC 2136 plugin from the distribution, the DNS server's TSIG key as a setting), from files, or
self-signed.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import Field, StrictBool, StrictInt

from tasks.settings import controller, pem
from tasks.settings.network import DomainName, Port
from tasks.settings.parts import Strict
from tasks.settings.types import SecretFile

if TYPE_CHECKING:
    from tasks.settings.model import Settings

BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class Dns01(Strict):
    """The DNS server certbot adds the ACME challenge's TXT records to (RFC 2136 dynamic updates)."""

    server: IPv4Address | IPv6Address = Field(
        description="The address of the primary DNS server of `jh_domain`'s zone (an IP address: certbot's "
        "plugin takes no name).",
        examples=["192.0.2.53"],
    )
    port: Port = Field(53, description="Its DNS port.")
    key_name: DomainName = Field(
        description="The name of the TSIG key the server lets update the zone.", examples=["jupyterhub-acme"]
    )
    key_algorithm: Literal["hmac-sha256", "hmac-sha384", "hmac-sha512"] = Field(
        "hmac-sha512", description="The key's algorithm."
    )
    key_secret_file: SecretFile = Field(
        description="A file on the controller holding the key's secret alone (base64, as `tsig-keygen` prints it). "
        "It lands root's, 0600, in certbot's credentials file on the server; the controller's copy must be "
        "readable by you alone.",
        examples=["secrets/acme-tsig.secret"],
    )
    propagation_seconds: StrictInt = Field(
        60,
        ge=0,
        le=3600,
        description="How long certbot waits after the update before the CA looks (the zone's secondary servers "
        "must have it by then).",
    )


class Subdomains(Strict):
    user_subdomains: StrictBool = Field(
        False,
        description="Serve each person's server on an origin of its own, `https://<name>.<jh_domain>/` "
        "(JupyterHub's subdomain_host), the hub on `jh_domain`: a page one person's server serves then "
        "cannot act with a visitor's session (docs/security.md). Needs `jh_domain`, wildcard DNS "
        "(`*.<jh_domain>` to the server, checked from the controller before any change) and a wildcard "
        "certificate: `jh_dns01` with `letsencrypt`, a `manual` certificate that names `*.<jh_domain>`, or "
        "`selfsigned`. A name that is no DNS label of at most 32 characters is served on "
        "`u-<hash>` (160 bits of its SHA-256, where JupyterHub's own escaping keeps 28: few enough to pick a "
        "name that lands on another's origin).",
        json_schema_extra={"section": "Per-user origins"},
    )
    dns01: Dns01 | None = Field(
        None,
        description="With `letsencrypt`: the certificate by DNS-01 through this DNS server (certbot's RFC 2136 "
        "plugin) instead of HTTP-01; a wildcard certificate (`jh_user_subdomains`) needs it. A lineage "
        "made by the other method keeps renewing by it.",
        examples=[
            {"server": "192.0.2.53", "key_name": "jupyterhub-acme", "key_secret_file": "secrets/acme-tsig.secret"}
        ],
    )


def check(settings: Settings) -> None:
    """The rules between jh_user_subdomains, jh_dns01 and the web front's settings."""
    if settings.dns01:
        if settings.domain is None or settings.certificate != "letsencrypt":
            raise ValueError(
                "jh_dns01 needs jh_domain and jh_certificate = 'letsencrypt' (it is how certbot proves it)"
            )
        problem = controller.unsafe(settings.dns01.key_secret_file)
        if problem or settings.dns01.key_secret_file.stat().st_mode & 0o077:
            raise ValueError(
                f"jh_dns01[key_secret_file]: {problem or 'readable by others than you'}; whoever has the key "
                "can change the zone's records: keep it in a folder only you can change, mode 0600"
            )
        if not BASE64.fullmatch(settings.dns01.key_secret_file.read_text().strip()):
            raise ValueError("jh_dns01[key_secret_file]: must hold the key's secret alone, in base64 (tsig-keygen's)")
    if not settings.user_subdomains:
        return
    if settings.domain is None:
        raise ValueError("jh_user_subdomains needs jh_domain: servers are served on <name>.<jh_domain>")
    if settings.lti13:
        for name in ("issuer", "authorization_endpoint"):
            host = urlsplit(str(getattr(settings.lti13, name))).hostname or ""
            if host == settings.domain or host.endswith(f".{settings.domain}"):
                raise ValueError(
                    f"jh_lti13[{name}]: {host} is among the servers' names (<name>.{settings.domain}) with "
                    "jh_user_subdomains: nginx refuses what their pages post to the hub, the platform's launch too"
                )
    if settings.certificate == "letsencrypt" and not settings.dns01:
        raise ValueError(
            "jh_user_subdomains with jh_certificate = 'letsencrypt' needs jh_dns01: a certificate for "
            f"*.{settings.domain} can only be had by DNS-01"
        )
    if settings.certificate == "manual" and settings.certificate_file is not None:
        names = pem.dns_names(pem.certificates(settings.certificate_file, "a certificate")[0])
        missing = [name for name in (settings.domain, f"*.{settings.domain}") if name not in names]
        if missing:
            raise ValueError(
                f"jh_certificate_file: with jh_user_subdomains it must name {' and '.join(missing)} "
                f"(it names {', '.join(sorted(names)) or 'no DNS name'})"
            )
