"""The web front: nginx terminating TLS for the hub and the sub-path services.

Certificates come from Let's Encrypt (certbot, HTTP-01 through nginx's webroot,
which Ubuntu 16.04's certbot 0.27 supports too), from files on the controller,
or are made on the server (self-signed). Every site change is checked with
`nginx -t` before a reload; a config nginx rejects is rolled back at once.

Runs inside deploy.py, and alone (for hosts that only need the front):

    pyinfra inventory.py tasks.web.front
"""

from __future__ import annotations

import hashlib
from io import StringIO
from pathlib import PurePosixPath

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File, Link, Sha1File
from pyinfra.operations import apt, files, server, systemd

from tasks import firewall, system
from tasks.platform import Platform, target_platform
from tasks.settings import FILES, Settings, current_settings
from tasks.templating import render

SITE = "/etc/nginx/sites-available/jupyterhub"
SITE_ENABLED = "/etc/nginx/sites-enabled/jupyterhub"
WEBROOT = "/var/www/letsencrypt"
TLS_DIR = PurePosixPath("/etc/ssl/jupyterhub")
RENEW_HOOK = "/etc/letsencrypt/renewal-hooks/deploy/jupyterhub-reload-nginx"


def certificate_paths(settings: Settings) -> tuple[str, str]:
    if settings.certificate == "letsencrypt":
        live = PurePosixPath("/etc/letsencrypt/live") / settings.domain
        return str(live / "fullchain.pem"), str(live / "privkey.pem")
    # One pair per mode: switching modes never serves the other mode's certificate.
    stem = settings.domain if settings.certificate == "manual" else f"{settings.domain}-selfsigned"
    return str(TLS_DIR / f"{stem}.crt"), str(TLS_DIR / f"{stem}.key")


def site_config(settings: Settings, platform: Platform, tls: bool) -> str:
    certificate, key = certificate_paths(settings)
    return render(
        "nginx-site.conf.j2", s=settings, tls=tls, tls13=platform.tls13, webroot=WEBROOT,
        certificate=certificate, certificate_key=key,
        hub_upstream=f"http://127.0.0.1:{settings.public_port}",
    )


def install_site(config: str, stage: str) -> None:
    """Put the site in place and reload nginx, unless `nginx -t` rejects it.

    A rejected config is replaced by the previous one (or removed, if there was
    none) before nginx ever loads it, and the run fails showing nginx's error.
    Compared with the live site at plan time, so a rejected change is retried.
    """
    desired = hashlib.sha1(config.encode()).hexdigest()
    if host.get_fact(Sha1File, path=SITE) == desired and host.get_fact(Link, path=SITE_ENABLED):
        return
    files.put(
        name=f"Stage the nginx site ({stage})",
        src=StringIO(config),
        dest=f"{SITE}.new",
        user="root", group="root", mode="644",
    )
    script = f"""
if [ -e {SITE} ]; then cp -p {SITE} {SITE}.previous; fi
mv {SITE}.new {SITE}
ln -sfn {SITE} {SITE_ENABLED}
if ! errors=$(nginx -t 2>&1); then
    if [ -e {SITE}.previous ]; then mv {SITE}.previous {SITE}; else rm -f {SITE} {SITE_ENABLED}; fi
    echo "nginx rejected the new site; the previous one stays in effect:" >&2
    echo "$errors" >&2
    exit 1
fi
rm -f {SITE}.previous
systemctl reload-or-restart nginx
"""
    server.shell(name=f"Check the nginx site with nginx -t, then reload ({stage})", commands=[script])


def tls_certificate(settings: Settings, platform: Platform) -> None:
    certificate, key = certificate_paths(settings)
    if settings.certificate == "manual":
        files.directory(name=f"{TLS_DIR}", path=str(TLS_DIR), user="root", group="root", mode="755")
        files.put(name="TLS certificate", src=str(settings.certificate_file), dest=certificate,
                  user="root", group="root", mode="644")
        files.put(name="TLS private key", src=str(settings.certificate_key_file), dest=key,
                  user="root", group="root", mode="600")
    elif settings.certificate == "selfsigned":
        files.directory(name=f"{TLS_DIR}", path=str(TLS_DIR), user="root", group="root", mode="755")
        if not host.get_fact(File, path=key):
            # A config file rather than -addext: Ubuntu 16.04's OpenSSL 1.0.2 lacks it.
            server.shell(
                name=f"Self-signed certificate for {settings.domain}",
                commands=[
                    f"printf '[req]\\ndistinguished_name=dn\\n[dn]\\n[san]\\nsubjectAltName=DNS:{settings.domain}\\n'"
                    f" > {TLS_DIR}/openssl.cnf"
                    f" && (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj /CN={settings.domain}"
                    f" -config {TLS_DIR}/openssl.cnf -extensions san -keyout {key}.new -out {certificate})"
                    f" && mv {key}.new {key} && chmod 644 {certificate} && rm {TLS_DIR}/openssl.cnf",
                ],
            )
    elif not host.get_fact(Link, path=certificate):  # certbot's live/ files are links
        # Chicken and egg: serve the challenge over HTTP first, then ask for the certificate.
        install_site(site_config(settings, platform, tls=False), stage="HTTP only, for the ACME challenge")
        contact = f"--email {settings.acme_email}" if settings.acme_email else "--register-unsafely-without-email"
        server.shell(
            name=f"Certificate for {settings.domain} from {settings.acme_server}",
            commands=[
                f"certbot certonly --non-interactive --agree-tos --webroot -w {WEBROOT} -d {settings.domain}"
                f" --server {settings.acme_server} {contact}"
            ],
        )
    if settings.certificate == "letsencrypt":
        files.put(name="certbot hook: reload nginx after renewal", src=str(FILES / "letsencrypt" / "reload-nginx"),
                  dest=RENEW_HOOK, user="root", group="root", mode="755")
        systemd.service(name="certbot's renewal timer", service="certbot.timer", running=True, enabled=True)


def apply(settings: Settings, platform: Platform) -> None:
    if settings.domain is None:
        link = files.link(name="No nginx site for the hub", path=SITE_ENABLED, present=False)
        files.file(name="No nginx site file for the hub", path=SITE, present=False)
        systemd.service(name="Reload nginx", service="nginx", reloaded=True, _if=link.did_change)
        return
    packages = ["nginx"] + (["certbot"] if settings.certificate == "letsencrypt" else ["openssl"])
    apt.packages(name="Install nginx", packages=packages, no_recommends=True, update=True, cache_time=24 * 3600)
    files.directory(name=f"ACME webroot {WEBROOT}", path=WEBROOT, user="root", group="root", mode="755")
    tls_certificate(settings, platform)
    install_site(site_config(settings, platform, tls=True), stage="HTTPS")
    systemd.service(name="nginx running and enabled", service="nginx", running=True, enabled=True)


@deploy("Web front (nginx and TLS) alone")
def front() -> None:
    settings = current_settings()
    system.trust_extra_cas(settings)
    apply(settings, target_platform())
    firewall.apply(settings)
