"""The nginx site, rendered for several settings and checked with `nginx -t`."""

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from tasks import web
from tasks.ops import render
from tasks.platform import Platform
from tasks.settings import Settings
from tests.certificates import self_signed

NOBLE = Platform("Ubuntu", "24.04", "3.12", "3.12")
XENIAL = Platform("Ubuntu", "16.04", "3.5", "3.5")
RSTUDIO = {"path": "/rstudio/", "upstream": "http://127.0.0.1:8787/", "websockets": True}
CASES = {
    "hub at /": ({"jh_domain": "hub.example.org"}, NOBLE),
    "hub under a base URL, with services": (
        {
            "jh_domain": "hub.example.org",
            "jh_base_url": "/jupyter/",
            "jh_services": [RSTUDIO, {"path": "/status/", "upstream": "http://127.0.0.1:9000"}],
        },
        NOBLE,
    ),
    "monitoring for the admins": (
        {
            "jh_domain": "hub.example.org",
            "jh_base_url": "/jupyter/",
            "jh_monitoring": {"webhook_url": "https://chat.example.org/hooks/1"},
        },
        NOBLE,
    ),
    "Ubuntu 16.04 (no TLS 1.3)": ({"jh_domain": "hub.example.org", "jh_certificate": "selfsigned"}, XENIAL),
    "per-user origins, with monitoring and services": (
        {
            "jh_domain": "hub.example.org",
            "jh_certificate": "selfsigned",
            "jh_user_subdomains": True,
            "jh_services": [RSTUDIO],
            "jh_monitoring": {"webhook_url": "https://chat.example.org/hooks/1"},
        },
        NOBLE,
    ),
}
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_test(tmp_path, site: str) -> subprocess.CompletedProcess:
    """`nginx -t` on the site inside a minimal nginx.conf, as sites-enabled would include it."""
    self_signed(tmp_path / "cert.pem", tmp_path / "key.pem", "hub.example.org", days=1)
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n    access_log off;\n    include {tmp_path}/site.conf;\n}}\n"
    )
    return subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True
    )


def site_for(settings: Settings, platform: Platform, tmp_path, tls: bool = True) -> str:
    return render(
        "nginx-site.conf.j2",
        settings,
        tls=tls,
        tls13=platform.tls13,
        webroot="/var/www/letsencrypt",
        certificate=str(tmp_path / "cert.pem"),
        certificate_key=str(tmp_path / "key.pem"),
        hub_upstream="http://127.0.0.1:8000",
        **web.monitoring_pages(settings),
    )


@pytest.mark.parametrize("tls", [True, False], ids=["https", "bootstrap"])
@pytest.mark.parametrize("data, platform", CASES.values(), ids=CASES.keys())
def test_site_passes_nginx_t(tmp_path, data, platform, tls):
    result = nginx_test(tmp_path, site_for(Settings.from_data(data), platform, tmp_path, tls))
    assert result.returncode == 0, result.stderr


def test_https_site_has_what_jupyterhub_needs(tmp_path):
    site = site_for(Settings.from_data(CASES["hub under a base URL, with services"][0]), NOBLE, tmp_path)
    assert "return 301 https://$host$request_uri;" in site
    assert "location ^~ /.well-known/acme-challenge/" in site
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in site
    assert 'add_header Strict-Transport-Security "max-age=63072000" always;' in site
    hub = site.split("location /jupyter/ {")[1].split("}")[0]
    for line in (
        "proxy_pass http://127.0.0.1:8000;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $jupyterhub_connection_upgrade;",
        "proxy_buffering off;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header Host $http_host;",
    ):
        assert line in hub
    rstudio = site.split("location /rstudio/ {")[1].split("}")[0]
    assert "proxy_pass http://127.0.0.1:8787/;" in rstudio and "Upgrade" in rstudio
    status = site.split("location /status/ {")[1].split("}")[0]
    assert "Upgrade" not in status


def test_bootstrap_site_serves_only_the_challenge(tmp_path):
    site = site_for(Settings.from_data({"jh_domain": "hub.example.org"}), NOBLE, tmp_path, tls=False)
    assert "listen 443" not in site and "return 503;" in site


def test_xenial_gets_no_tls13(tmp_path):
    site = site_for(Settings.from_data({"jh_domain": "hub.example.org"}), XENIAL, tmp_path)
    assert "ssl_protocols TLSv1.2;" in site


def test_a_broken_upstream_fails_nginx_t(tmp_path):
    data = {
        "jh_domain": "hub.example.org",
        "jh_services": [{"path": "/broken/", "upstream": "http://no-such-host.invalid:8787/"}],
    }
    result = nginx_test(tmp_path, site_for(Settings.from_data(data), NOBLE, tmp_path))
    assert result.returncode != 0 and "no-such-host.invalid" in result.stderr


def test_certificate_paths():
    paths = web.certificate_paths(Settings.from_data({"jh_domain": "a.example"}))
    assert list(map(str, paths)) == [
        "/etc/letsencrypt/live/a.example/fullchain.pem",
        "/etc/letsencrypt/live/a.example/privkey.pem",
    ]
    selfsigned = Settings.from_data({"jh_domain": "a.example", "jh_certificate": "selfsigned"})
    # Keys live in a directory only root can enter.
    assert str(web.certificate_paths(selfsigned)[1]) == "/etc/ssl/jupyterhub/private/a.example-selfsigned.key"


# Key exchange curves: Mozilla's "intermediate" profile names X25519, prime256v1 and secp384r1
# (OpenSSL's default list adds secp521r1 and X448, which sslyze's check of the profile rejects).
# Ubuntu 16.04's nginx 1.10 takes a single curve and its OpenSSL 1.0.2 has no X25519: that nginx
# itself is exercised by the e2e tests (tests/e2e/test_web.py), this nginx -t checks the syntax.
@pytest.mark.parametrize(
    "platform, curves",
    [
        (NOBLE, "X25519:prime256v1:secp384r1"),
        (Platform("Debian", "11", "3.9", "3.12", "/opt/conda/python"), "X25519:prime256v1:secp384r1"),
        (XENIAL, "prime256v1"),
    ],
    ids=["Ubuntu 24.04", "Debian 11", "Ubuntu 16.04"],
)
def test_key_exchange_curves_are_mozillas(tmp_path, platform, curves):
    site = site_for(Settings.from_data({"jh_domain": "hub.example.org"}), platform, tmp_path)
    assert [line.strip() for line in site.splitlines() if "ssl_ecdh_curve" in line] == [f"ssl_ecdh_curve {curves};"]
    result = nginx_test(tmp_path, site)
    assert result.returncode == 0, result.stderr


def test_servers_origins_serve_servers_alone(tmp_path):
    """On <name>.<domain> only users' servers answer: the hub's sign-in there would leave a session on
    the origin that server's pages run in; the services and monitoring stay on the hub's name."""
    settings = Settings.from_data(CASES["per-user origins, with monitoring and services"][0])
    site = site_for(settings, NOBLE, tmp_path)
    servers_site = site.split("server_name *.hub.example.org;")[1]
    assert "server_name hub.example.org *.hub.example.org;" in site  # port 80: redirects and challenges
    locations = [line.strip() for line in servers_site.splitlines() if line.strip().startswith("location")]
    assert locations == ["location /user/ {", "location / {"]
    assert "return 302 https://hub.example.org$request_uri;" in servers_site
    assert "proxy_pass http://127.0.0.1:8000;" in servers_site
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in servers_site


def mapped(tmp_path, map_block: str, variable: str, requests: list[tuple[str, dict]]) -> list[str]:
    """What a real nginx with map_block makes of variable for each request (method, headers)."""
    if not os.path.exists(NGINX):
        pytest.skip(f"{NGINX} is missing: tests/prerequisites.sh unit installs it")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    temp = "".join(f"{kind}_temp_path {tmp_path}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\nhttp {{\n access_log off;\n{temp}"
        f"{map_block}\n server {{ listen 127.0.0.1:{port}; location / {{ return 200 '{variable}'; }} }}\n}}\n"
    )
    subprocess.run([NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")], check=True)
    try:
        answers = []
        for method, headers in requests:
            for _ in range(50):
                try:
                    request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers=headers, method=method)
                    with urllib.request.urlopen(request, timeout=5) as response:
                        answers.append(response.read().decode())
                    break
                except ConnectionRefusedError:
                    time.sleep(0.05)
        return answers
    finally:
        subprocess.run([NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-s", "quit"], check=False)


def test_services_get_the_visitors_cookies_but_the_hub_s_sign_in(tmp_path):
    """Under per-user origins the hub's sign-in is a __Host- cookie on /, which every jh_services
    location would pass on to whatever answers on its port; nginx drops it there, and only it."""
    settings = Settings.from_data(CASES["per-user origins, with monitoring and services"][0])
    site = site_for(settings, NOBLE, tmp_path)
    service = site.split("location /rstudio/ {")[1].split("}")[0]
    assert "proxy_set_header Cookie $jupyterhub_cookie_for_services;" in service
    # Without per-user origins the hub's cookie is on its own path: nothing to drop (nor a map
    # with captures in its value, which Ubuntu 16.04's nginx 1.10 refuses).
    plain = site_for(Settings.from_data(CASES["hub under a base URL, with services"][0]), NOBLE, tmp_path)
    assert "jupyterhub_cookie_for_services" not in plain
    map_block = re.search(r"map \$http_cookie \$jupyterhub_cookie_for_services \{.*?\n\}", site, re.S)[0]
    hub = "__Host-jupyterhub-hub-login=2|1:0|10:17|secret"
    sent = [
        hub,
        f"{hub}; rs-csrf=1",
        f"rs-csrf=1; {hub}",
        f"a=1; {hub}; b=2",
        # A cookie whose value (or name) ends in the hub's cookie's name does not hide it.
        f"x=__Host-jupyterhub-hub-login=decoy; {hub}",
        f"{hub}; x__Host-jupyterhub-hub-login=decoy",
        "rs-csrf=1; user-id=alice",
    ]
    answers = mapped(tmp_path, map_block, "$jupyterhub_cookie_for_services", [("GET", {"Cookie": c}) for c in sent])
    assert len(answers) == len(sent)
    for cookie, answer in zip(sent, answers, strict=True):
        assert "secret" not in answer, (cookie, answer)
    assert [answer.replace(" ", "") for answer in answers] == [
        "",
        "rs-csrf=1",
        "rs-csrf=1;",
        "a=1;b=2",
        "x=__Host-jupyterhub-hub-login=decoy;",
        "x__Host-jupyterhub-hub-login=decoy",
        "rs-csrf=1;user-id=alice",
    ]


def test_a_server_s_page_sends_the_hub_nothing_but_reads(tmp_path):
    """Under per-user origins a page of bob's server may set cookies for the hub's name (not
    __Host- ones): a login form it posted with them would sign its visitor in as bob. The hub's
    name refuses what its servers' origins send but GET and HEAD; others (the LMS's launch) pass."""
    settings = Settings.from_data(CASES["per-user origins, with monitoring and services"][0])
    site = site_for(settings, NOBLE, tmp_path)
    hub_site = site.split("server_name hub.example.org;")[1].split("server_name *.hub.example.org;")[0]
    assert "if ($jupyterhub_sent_by_a_server) {\n        return 403;" in hub_site
    map_block = re.search(r'map "\$request_method:\$http_origin" \$jupyterhub_sent_by_a_server \{.*?\n\}', site, re.S)[
        0
    ]
    cases = {
        ("POST", "https://bob.hub.example.org"): "1",
        ("POST", "https://BOB.Hub.Example.org:443"): "1",
        ("PUT", "https://a.b.hub.example.org"): "1",
        ("GET", "https://bob.hub.example.org"): "0",
        ("HEAD", "https://bob.hub.example.org"): "",  # (no body to read)
        ("POST", "https://hub.example.org"): "0",
        ("POST", "https://lms.example.org"): "0",
        ("POST", "https://bobhub.example.org"): "0",
        ("POST", "https://hub.example.org.evil.example"): "0",
    }
    requests = [(method, {"Origin": origin}) for method, origin in cases]
    assert mapped(tmp_path, map_block, "$jupyterhub_sent_by_a_server", requests) == list(cases.values())
    # Without the setting, no such rule.
    assert "jupyterhub_sent_by_a_server" not in site_for(
        Settings.from_data({"jh_domain": "hub.example.org"}), NOBLE, tmp_path
    )
