"""The web front: nginx terminating TLS for the hub and the sub-path services.

Certificates come from Let's Encrypt (certbot, HTTP-01 through nginx's webroot,
which Ubuntu 16.04's certbot 0.27 supports too), from files on the controller,
or are made on the server (self-signed). Every site change is checked with
`nginx -t` before a reload; a config nginx rejects is rolled back at once.

Runs inside deploy.py, and alone (for hosts that only need the front):

    pyinfra inventory.py tasks.web.front
"""

from __future__ import annotations

from io import StringIO
from pathlib import PurePosixPath

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
from tasks.settings import FILES, Settings, current_settings
from tasks.snapshot import Managed, entry

# Manual and self-signed keys: in a directory only root can enter, so a key is never
# readable, not even while it is being written.
KEY_DIR = layout.TLS_DIR / "private"


def certificate_paths(settings: Settings) -> tuple[PurePosixPath, PurePosixPath]:
    if settings.certificate == "letsencrypt":
        live = layout.LETSENCRYPT_LIVE / settings.domain
        return live / "fullchain.pem", live / "privkey.pem"
    # One pair per mode: switching modes never serves the other mode's certificate.
    stem = settings.domain if settings.certificate == "manual" else f"{settings.domain}-selfsigned"
    return layout.TLS_DIR / f"{stem}.crt", KEY_DIR / f"{stem}.key"


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
            server.shell(
                name=f"Self-signed certificate for {settings.domain}",
                commands=[script(settings.layout, "selfsigned-certificate", settings.domain, certificate, key)],
            )
        return False, False
    acme_site = False
    live = entry(certificate)
    if not (live and live[0] == "l"):  # certbot's live/ files are links
        if entry(layout.NGINX_SITE):
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
        server.shell(
            name=f"Certificate for {settings.domain} from {settings.acme_server}",
            commands=[
                command(
                    "certbot",
                    "certonly",
                    "--non-interactive",
                    "--agree-tos",
                    "--webroot",
                    "-w",
                    layout.ACME_WEBROOT,
                    "-d",
                    settings.domain,
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


def managed_paths(settings: Settings, platform: Platform) -> Managed:
    """nginx's sites, the ACME webroot, certbot's hook; with a domain, the certificates (the private
    keys' folder listed, no file read)."""
    hashed = (layout.NGINX_SITE.parent, layout.NGINX_SITE_ENABLED.parent, layout.ACME_WEBROOT.parent)
    hashed += (layout.RENEW_HOOK.parent,)
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
    system.trust_extra_cas(settings)
    ship_scripts(settings)
    apply(settings, target_platform())
    firewall.apply(settings, inventory_peers(settings))
