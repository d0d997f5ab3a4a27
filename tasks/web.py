"""The web front: nginx terminating TLS for the hub and the sub-path services.

Certificates come from Let's Encrypt (certbot, HTTP-01 through nginx's webroot,
which Ubuntu 16.04's certbot 0.27 supports too, or DNS-01 through an RFC 2136 DNS
server, jh_dns01), from files on the controller, or are made on the server
(self-signed). With per-user origins (jh_user_subdomains) the certificate also names
*.<domain>, whose DNS is checked from the controller first. Every site change is
checked with `nginx -t` before a reload; a config nginx rejects is rolled back at once.

Runs inside deploy.py, and alone (for hosts that only need the front):

    pyinfra inventory.py tasks.web.front
"""

from __future__ import annotations

import secrets
import socket
from io import StringIO
from pathlib import PurePosixPath

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
from pyinfra import host, state
from pyinfra.api import deploy
from pyinfra.api.exceptions import PyinfraError
from pyinfra.operations import files, server, systemd

from tasks import firewall, hub_data, layout, system
from tasks.cluster_plan import inventory_peers
from tasks.ops import (
    command,
    install_nginx_site,
    packages,
    private_transfer,
    render,
    root_directory,
    root_file,
    script,
    service,
    ship_scripts,
)
from tasks.platform import Platform, target_platform
from tasks.settings import FILES, Settings, SettingsError, current_settings
from tasks.snapshot import Managed, entry

# Manual and self-signed keys: in a directory only root can enter, so a key is never
# readable, not even while it is being written.
KEY_DIR = layout.TLS_DIR / "private"


def certificate_names(settings: Settings) -> list[str]:
    """The names the site's certificate must hold."""
    return [settings.domain, f"*.{settings.domain}"] if settings.user_subdomains else [settings.domain]


def lineage(settings: Settings) -> str:
    """certbot's name for the certificate (its live/ folder): a wildcard one is a lineage of its own,
    so turning per-user origins on asks for it while the other keeps serving."""
    return f"{settings.domain}-wildcard" if settings.user_subdomains else settings.domain


def certificate_paths(settings: Settings) -> tuple[PurePosixPath, PurePosixPath]:
    if settings.certificate == "letsencrypt":
        live = layout.LETSENCRYPT_LIVE / lineage(settings)
        return live / "fullchain.pem", live / "privkey.pem"
    # One pair per mode (and names): switching never serves the other one's certificate.
    suffix = "-wildcard" if settings.user_subdomains else ""
    stem = settings.domain if settings.certificate == "manual" else f"{settings.domain}{suffix}-selfsigned"
    return layout.TLS_DIR / f"{stem}.crt", KEY_DIR / f"{stem}.key"


def check(settings: Settings, platform: Platform) -> None:
    """Before any change: per-user origins need *.<domain> in the DNS, pointing where <domain> does
    (asked of jh_dns01's server, the zone's primary, when there is one; else of this machine's
    resolver); certbot's RFC 2136 plugin must be in the target's distribution, and with jh_services
    an nginx that can drop the hub's cookie for them."""
    xenial = (platform.distribution, platform.release) == ("Ubuntu", "16.04")
    if settings.dns01 and xenial:
        raise SettingsError(f"{host.name}: jh_dns01: Ubuntu 16.04 has no certbot RFC 2136 plugin; use HTTP-01")
    if not settings.user_subdomains:
        return
    if settings.services and xenial:
        raise SettingsError(
            f"{host.name}: jh_user_subdomains with jh_services: Ubuntu 16.04's nginx (1.10) cannot keep the hub's "
            "sign-in from the services (it would reach whatever answers on their ports). Nothing was changed."
        )
    probe = f"jhd-check-{secrets.token_hex(4)}.{settings.domain}"
    site, wildcard = addresses(settings, settings.domain), addresses(settings, probe)
    if not wildcard:
        raise SettingsError(
            f"{host.name}: jh_user_subdomains: {probe} has no address in the DNS{where_asked(settings)}: each "
            f"server is served on <name>.{settings.domain}, which needs a wildcard record *.{settings.domain} "
            "pointing at this server. Nothing was changed."
        )
    if not site or not wildcard <= site:
        raise SettingsError(
            f"{host.name}: jh_user_subdomains: *.{settings.domain} points at {', '.join(sorted(wildcard))}, "
            f"{settings.domain} at {', '.join(sorted(site)) or 'nothing'}{where_asked(settings)}: every address "
            "of the wildcard must be the site's (another host would get the visitors' OAuth codes). "
            "Nothing was changed."
        )


def where_asked(settings: Settings) -> str:
    dns01 = settings.dns01
    return f" (asked of jh_dns01's server {dns01.server} port {dns01.port})" if dns01 else ""


def addresses(settings: Settings, name: str) -> set[str]:
    """name's IPv4 and IPv6 addresses, empty if it has none."""
    if settings.dns01 is None:
        try:
            return {info[4][0] for info in socket.getaddrinfo(name, 443, proto=socket.IPPROTO_TCP)}
        except socket.gaierror:
            return set()
    found = set()
    for kind in ("A", "AAAA"):
        query = dns.message.make_query(name, dns.rdatatype.from_text(kind))
        try:
            response = dns.query.udp(query, str(settings.dns01.server), port=settings.dns01.port, timeout=5)
        except (OSError, dns.exception.DNSException) as error:
            raise SettingsError(
                f"{host.name}: jh_user_subdomains: no answer about {name} from jh_dns01's server "
                f"{settings.dns01.server} port {settings.dns01.port} ({error}). Nothing was changed."
            ) from None
        found |= {
            item.address for rrset in response.answer if rrset.rdtype == query.question[0].rdtype for item in rrset
        }
    return found


def site_config(settings: Settings, platform: Platform, tls: bool) -> str:
    certificate, key = certificate_paths(settings)
    return render(
        "nginx-site.conf.j2",
        settings,
        tls=tls,
        tls13=platform.tls13,
        webroot=layout.ACME_WEBROOT,
        certificate=certificate,
        certificate_key=key,
        hub_upstream=f"http://127.0.0.1:{settings.public_port}",
        **monitoring_pages(settings),
    )


def monitoring_pages(settings: Settings) -> dict:
    """What the site needs to serve Prometheus and Alertmanager to the hub's admins (jh_monitoring)."""
    return {
        "monitoring_gate": hub_data.monitoring_gate(settings),
        "monitoring_ports": {
            "prometheus": layout.PROMETHEUS_PORT,
            "alertmanager": layout.ALERTMANAGER_PORT,
            "nginx_status": layout.NGINX_STATUS_PATH,
        },
    }


def install_site(settings: Settings, config: str, stage: str) -> bool:
    """The hub's site (ops.install_nginx_site); returns whether it changes."""
    return install_nginx_site(settings, config, layout.NGINX_SITE, layout.NGINX_SITE_ENABLED, stage)


def tls_certificate(settings: Settings, platform: Platform) -> tuple[bool, bool]:
    """The certificate for the site; returns whether a manual one is replaced (nginx must then
    reload) and whether a challenge-only site is added beside a live one (removed afterwards)."""
    certificate, key = certificate_paths(settings)
    if settings.certificate != "letsencrypt":
        root_directory(f"{layout.TLS_DIR}", layout.TLS_DIR)
        root_directory(f"{KEY_DIR}", KEY_DIR, mode="700")
    if settings.certificate == "manual":
        if state.config.DIFF:
            # pyinfra's --diff prints the content of text files it uploads.
            raise PyinfraError(
                f"{host.name}: --diff would print the private key of jh_certificate_key_file; "
                "run without --diff. Nothing was changed."
            )
        changed = [
            root_file("TLS certificate", settings.certificate_file, certificate),
            root_file("TLS private key", settings.certificate_key_file, key, mode="600", **private_transfer()),
        ]
        return any(op.will_change for op in changed), False
    if settings.certificate == "selfsigned":
        if not entry(key):
            names = certificate_names(settings)
            server.shell(
                name=f"Self-signed certificate for {' and '.join(names)}",
                commands=[script(settings.layout, "selfsigned-certificate", certificate, key, *names)],
            )
        return False, False
    if settings.dns01:
        dns01_credentials(settings)
    acme_site = False
    live = entry(certificate)
    if not (live and live[0] == "l"):  # certbot's live/ files are links
        if settings.dns01:
            pass  # the DNS answers the challenge: nothing on port 80
        elif entry(layout.NGINX_SITE):
            # A site is live (another certificate or another name): it keeps serving HTTPS
            # while a challenge-only site answers for this name on port 80.
            acme = render("nginx-acme.conf.j2", settings, webroot=layout.ACME_WEBROOT)
            staged = f"{layout.NGINX_ACME_SITE}.new"
            root_file("Stage the nginx site for the ACME challenge", StringIO(acme), staged)
            server.shell(
                name="Answer the ACME challenge beside the live site",
                commands=[
                    script(
                        settings.layout,
                        "install-nginx-site",
                        staged,
                        layout.NGINX_ACME_SITE,
                        layout.NGINX_ACME_SITE_ENABLED,
                    )
                ],
            )
            acme_site = True
        else:
            # Chicken and egg: serve the challenge over HTTP first, then ask for the certificate.
            install_site(
                settings, site_config(settings, platform, tls=False), stage="HTTP only, for the ACME challenge"
            )
        contact = ("--email", settings.acme_email) if settings.acme_email else ("--register-unsafely-without-email",)
        names = certificate_names(settings)
        server.shell(
            name=f"Certificate for {' and '.join(names)} from {settings.acme_server}",
            commands=[
                command(
                    "certbot",
                    "certonly",
                    "--non-interactive",
                    "--agree-tos",
                    *challenge(settings),
                    "--cert-name",
                    lineage(settings),
                    *(part for name in names for part in ("-d", name)),
                    "--server",
                    settings.acme_server,
                    *contact,
                )
            ],
        )
    root_file(
        "certbot hook: reload nginx after renewal",
        FILES / "letsencrypt" / "reload-nginx",
        layout.RENEW_HOOK,
        mode="755",
    )
    service("certbot's renewal timer", "certbot.timer")
    return False, acme_site


def challenge(settings: Settings) -> tuple:
    """certbot's arguments for how it proves the names: DNS-01 through jh_dns01's server, or HTTP-01."""
    if settings.dns01 is None:
        return ("--webroot", "-w", layout.ACME_WEBROOT)
    return (
        "--authenticator",
        "dns-rfc2136",
        "--dns-rfc2136-credentials",
        layout.DNS01_CREDENTIALS,
        "--dns-rfc2136-propagation-seconds",
        settings.dns01.propagation_seconds,
    )


def dns01_credentials(settings: Settings) -> None:
    """The plugin and its credentials (the TSIG key): root's, 0600, in a folder only root may enter;
    certbot's renewals read them there."""
    if state.config.DIFF:
        # pyinfra's --diff prints the content of text files it uploads.
        raise PyinfraError(
            f"{host.name}: --diff would print jh_dns01's TSIG key; run without --diff. Nothing was changed."
        )
    packages("certbot's RFC 2136 plugin", ["python3-certbot-dns-rfc2136"])
    root_directory(f"{layout.DNS01_CREDENTIALS.parent}", layout.DNS01_CREDENTIALS.parent, mode="700")
    dns01 = settings.dns01
    credentials = render(
        "certbot-rfc2136.ini.j2", settings, dns01=dns01, secret=dns01.key_secret_file.read_text().strip()
    )
    root_file(
        "certbot's RFC 2136 credentials",
        StringIO(credentials),
        layout.DNS01_CREDENTIALS,
        mode="600",
        **private_transfer(),
    )


def managed_paths(settings: Settings, platform: Platform) -> Managed:
    """nginx's sites, the ACME webroot, certbot's hook; with a domain, the certificates (the private
    keys' folder listed, no file read)."""
    hashed = (layout.NGINX_SITE.parent, layout.NGINX_SITE_ENABLED.parent, layout.ACME_WEBROOT.parent)
    hashed += (layout.RENEW_HOOK.parent,)
    if settings.dns01:
        hashed += (layout.DNS01_CREDENTIALS.parent.parent, layout.DNS01_CREDENTIALS.parent)
    if not settings.domain:
        return Managed(hashed=hashed)
    certificate, key = certificate_paths(settings)
    return Managed(hashed=(*hashed, layout.TLS_DIR.parent, layout.TLS_DIR, certificate.parent), listed=(key.parent,))


def apply(settings: Settings, platform: Platform) -> None:
    if settings.domain is None:
        if entry(layout.NGINX_SITE_ENABLED):
            link = files.link(name="No nginx site for the hub", path=str(layout.NGINX_SITE_ENABLED), present=False)
            systemd.service(name="Reload nginx", service="nginx", reloaded=True, _if=link.did_change)
        if entry(layout.NGINX_SITE):
            files.file(name="No nginx site file for the hub", path=str(layout.NGINX_SITE), present=False)
        return
    packages("Install nginx", ["nginx"] + (["certbot"] if settings.certificate == "letsencrypt" else ["openssl"]))
    root_directory(f"ACME webroot {layout.ACME_WEBROOT}", layout.ACME_WEBROOT)
    rotated, acme_site = tls_certificate(settings, platform)
    site_changed = install_site(settings, site_config(settings, platform, tls=True), stage="HTTPS")
    service("nginx running and enabled", "nginx.service")
    if acme_site or entry(layout.NGINX_ACME_SITE):
        # The challenge-only site of a switch, once the new certificate serves (or left by a failed run).
        server.shell(
            name="Remove the nginx site for the ACME challenge",
            commands=[
                command("rm", "-f", layout.NGINX_ACME_SITE_ENABLED, layout.NGINX_ACME_SITE),
                "nginx -t -q",
                script(settings.layout, "reload-nginx"),
            ],
        )
    if rotated and not site_changed:
        # A new manual certificate under the same names: nginx reads it on reload only.
        server.shell(
            name="Reload nginx for the new certificate",
            commands=["nginx -t -q", script(settings.layout, "reload-nginx")],
        )


@deploy("Web front (nginx and TLS) alone")
def front() -> None:
    settings = current_settings()
    platform = target_platform()
    check(settings, platform)
    system.trust_extra_cas(settings)
    ship_scripts(settings)
    apply(settings, platform)
    firewall.apply(settings, inventory_peers(settings))
