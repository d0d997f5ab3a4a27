"""nginx in front of the hub, with certificates from a real ACME server (Pebble)."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time

import pytest
import requests
import websocket
from cryptography import x509

from tests.certificates import self_signed
from tests.e2e.conftest import ECHO_PORT, REPO, USERS, run_pyinfra, write_inventory
from tests.e2e.hub_client import HubClient
from tests.e2e.polling import KeepAsking

ECHO_SERVICE = f"""
import tornado.ioloop, tornado.web, tornado.websocket

class Home(tornado.web.RequestHandler):
    def get(self):
        self.write("echo service")

class Echo(tornado.websocket.WebSocketHandler):
    def on_message(self, message):
        self.write_message(message)

tornado.web.Application([(r"/", Home), (r"/ws", Echo)]).listen({ECHO_PORT}, address="127.0.0.1")
tornado.ioloop.IOLoop.current().start()
"""


def served_certificate(host, name: str | None = None) -> x509.Certificate:
    pem = ssl.get_server_certificate((name or host.domain, 443), timeout=10)
    return x509.load_pem_x509_certificate(pem.encode())


def assert_serves(host, mode: str, name: str, expected: x509.Certificate | None = None) -> None:
    """The certificate of `mode` for `name`, on a connection made right after the deploy: the
    deploy returns once nginx's new workers serve (files/bin/reload-nginx), so no wait here."""
    served = served_certificate(host, name)
    if expected is not None:
        assert served.serial_number == expected.serial_number, f"{mode}: not the certificate deployed"
    if mode == "letsencrypt":
        assert "Pebble" in served.issuer.rfc4514_string(), f"{mode}: {served.issuer.rfc4514_string()}"
    if mode == "selfsigned":
        assert served.issuer == served.subject, served.issuer.rfc4514_string()
        constraints = [ext.value for ext in served.extensions if isinstance(ext.value, x509.BasicConstraints)]
        assert not any(c.ca for c in constraints), "the deploy's self-signed certificate is no CA"
    if mode != "manual":  # the test's manual certificate is what openssl req -x509 makes
        alt_names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert alt_names.get_values_for_type(x509.DNSName) == [name]


def get(host, path: str, **kwargs) -> requests.Response:
    return requests.get(f"https://{host.domain}{path}", verify=host.ca_bundle, timeout=10, **kwargs)


def openssl_handshake(host, protocol: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"{host.address}:443",
            "-servername",
            host.domain,
            f"-{protocol}",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=20,
    )


def test_https_certificate_from_the_acme_server_verifies(hub):
    response = get(hub, "/hub/login")
    assert response.status_code == 200
    assert "Strict-Transport-Security" in response.headers
    certificate = served_certificate(hub)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [hub.domain]
    assert "Pebble" in certificate.issuer.rfc4514_string()


def test_plain_http_redirects_to_https(hub):
    response = requests.get(f"http://{hub.domain}/hub/login?next=%2F", allow_redirects=False, timeout=10)
    assert response.status_code == 301
    assert response.headers["Location"] == f"https://{hub.domain}/hub/login?next=%2F"


def test_no_protocol_below_tls_1_2(hub):
    assert openssl_handshake(hub, "tls1_2").returncode == 0
    for old in ("tls1", "tls1_1"):
        result = openssl_handshake(hub, old)
        assert result.returncode != 0, f"{old} accepted:\n{result.stdout}"


def test_sub_path_service_with_websocket(hub):
    hub.sh(f"cat > /usr/local/lib/echo_service.py <<'EOF'\n{ECHO_SERVICE}\nEOF")
    hub.sh(
        "systemctl is-active -q echo-service || systemd-run --unit=echo-service "
        "/opt/jupyter/.venv/bin/python /usr/local/lib/echo_service.py"
    )
    deadline = time.monotonic() + 20
    while (response := get(hub, "/echo/")).status_code != 200:
        assert time.monotonic() < deadline, response.text
        time.sleep(0.5)
    assert response.text == "echo service"
    connection = websocket.create_connection(
        f"wss://{hub.domain}/echo/ws", sslopt={"ca_certs": hub.ca_bundle}, timeout=10
    )
    try:
        connection.send("ping through nginx")
        assert connection.recv() == "ping through nginx"
    finally:
        connection.close()


def test_monitoring_pages_are_the_hub_admins_alone(hub):
    """Prometheus and Alertmanager through the site: nginx asks the hub's gate before each request."""
    gate = "/services/monitoring/"
    for path in ("prometheus/graph", "prometheus/api/v1/query?query=up", "alertmanager/api/v2/alerts"):
        response = get(hub, gate + path, allow_redirects=False)
        location = response.headers.get("Location", "")
        assert (response.status_code, location) == (302, f"https://{hub.domain}{gate}"), path
    # nginx's question to the gate is nginx's alone.
    assert get(hub, gate + "auth").status_code == 404
    assert get(hub, "/hub/metrics").status_code == 403

    bob = HubClient(f"https://{hub.domain}", verify=hub.ca_bundle)
    assert bob.login("bob", USERS["bob"]).status_code == 302
    refused = bob.get(gate)
    assert refused.status_code == 403 and "permission" in refused.text, refused.text[:300]
    assert bob.get(gate + "prometheus/api/v1/query?query=up", allow_redirects=False).status_code == 302
    assert bob.get("/hub/metrics").status_code == 403
    token = bob.create_token()
    headers = {"Authorization": f"token {token}"}
    assert (
        get(hub, gate + "prometheus/api/v1/query?query=up", headers=headers, allow_redirects=False).status_code == 302
    )

    alice = HubClient(f"https://{hub.domain}", verify=hub.ca_bundle)
    assert alice.login("alice", USERS["alice"]).status_code == 302
    index = alice.get(gate)
    assert index.status_code == 200 and "Signed in to the hub as alice" in index.text, index.text[:300]

    # What Prometheus's own page asks, as it asks it (a fetch), answers; its page links under the site.
    def query(expression: str) -> dict[str, str]:
        answer = alice.get(gate + f"prometheus/api/v1/query?query={expression}", headers={"Sec-Fetch-Mode": "cors"})
        assert answer.status_code == 200 and answer.json()["status"] == "success", answer.text[:300]
        return {r["metric"].get("job", ""): r["value"][1] for r in answer.json()["data"]["result"]}

    jobs = ("node", "jupyterhub", "prometheus", "proxy")
    deadline = time.monotonic() + 90  # a scrape (15 s) and the deploy's metrics (30 s) after the deploy
    while (up := query("up")) != {**up, **dict.fromkeys(jobs, "1")} or not query("jupyterhub_nginx_requests_total"):
        assert time.monotonic() < deadline, (up, query("jupyterhub_nginx_requests_total"))
        time.sleep(3)
    # Pebble's certificates last ten days (tests/pebble.py): the site's ends within 14, and the rule
    # fires, from the end of the certificate nginx serves.
    while not query('ALERTS{alertname="CertificateExpiresSoon",alertstate="firing"}'):
        assert time.monotonic() < deadline + 60, query("jupyterhub_certificate_expiry_timestamp_seconds")
        time.sleep(3)
    ends = float(query("jupyterhub_certificate_expiry_timestamp_seconds")["node"])
    assert ends == served_certificate(hub).not_valid_after_utc.timestamp()
    assert alice.get("/hub/metrics").status_code == 200
    # Prometheus's home page (the distribution's UI), its links and assets under the site's path.
    page = alice.get(gate + "prometheus/")
    assert page.status_code == 200 and page.url.startswith(f"https://{hub.domain}{gate}prometheus/"), page.url
    assert f'src="{gate}prometheus/' in page.text, page.text[:300]
    # Alertmanager has it too (Prometheus sends it within a rule evaluation).
    while "CertificateExpiresSoon" not in {
        alert["labels"]["alertname"] for alert in alice.get(gate + "alertmanager/api/v2/alerts").json()
    }:
        assert time.monotonic() < deadline + 90, alice.get(gate + "alertmanager/api/v2/alerts").text
        time.sleep(3)
    # Its status shows its configuration, the webhook's URL (a secret) in full before Alertmanager 0.26.
    assert alice.get(gate + "alertmanager/api/v2/status").status_code == 403
    # Read-only on the web: a silence is made on the server.
    silence = alice.session.post(
        f"https://{hub.domain}{gate}alertmanager/api/v2/silences", json={}, verify=hub.ca_bundle, timeout=10
    )
    assert silence.status_code == 403
    # The gate's sign-in: its path alone, HTTPS alone, no script's, sent on no other site's request.
    (cookie,) = [c for c in alice.session.cookies if c.name == "service-monitoring"]
    assert cookie.path == gate and cookie.secure and cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite") == "Lax"


def test_renewal_serves_a_new_certificate_without_a_failed_request(hub):
    assert hub.sh("systemctl is-enabled certbot.timer").strip() == "enabled"
    before = served_certificate(hub).serial_number
    with KeepAsking(lambda: get(hub, "/hub/health").status_code) as asking:
        hub.sh("certbot renew --force-renewal --no-random-sleep-on-renew")
        deadline = time.monotonic() + 30
        while served_certificate(hub).serial_number == before:
            assert time.monotonic() < deadline, "nginx still serves the old certificate"
            time.sleep(0.5)
    failures = asking.failures + [status for status in asking.answers if status != 200]
    answered = [status for status in asking.answers if status == 200]
    assert failures == [] and len(answered) > 10, (failures, len(answered))


def test_a_broken_nginx_setting_is_refused_and_the_site_keeps_serving(hubs, workdir):
    hub = hubs["noble"]
    site_before = hub.sh("sha256sum /etc/nginx/sites-available/jupyterhub")
    broken = {"path": "/broken/", "upstream": "http://no-such-host.invalid:8787/"}
    data = {**hub.data, "jh_services": [*hub.data["jh_services"], broken]}
    result = run_pyinfra(write_inventory(workdir / "broken-nginx.py", [(hub.name, data)]))
    assert result.returncode != 0
    assert "nginx rejected the new site; the previous one stays in effect" in result.stderr
    assert "no-such-host.invalid" in result.stderr
    assert hub.sh("sha256sum /etc/nginx/sites-available/jupyterhub") == site_before
    assert hub.sh("ls /etc/nginx/sites-available") == hub.sh(
        "ls /etc/nginx/sites-available | grep -v -e new -e previous"
    )
    hub.sh("nginx -t")
    assert get(hub, "/hub/login").status_code == 200


@pytest.fixture(scope="module")
def xenial(start, workdir):
    """Ubuntu 16.04 with an nginx site of the admin's own, then the web front deployed alone.

    16.04's hub needs conda's Python (unreachable here), but its nginx 1.10, certbot 0.27
    and TLS front work alone.
    """
    host = start("xenial", "jhd-test-xenial-web")
    host.sh("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null")
    host.sh(
        "printf 'server {\\n listen 8080;\\n location / { return 200 \"other site\\\\n\"; }\\n}\\n'"
        " > /etc/nginx/sites-available/other && ln -s /etc/nginx/sites-available/other /etc/nginx/sites-enabled/"
        " && systemctl reload nginx"
    )
    host.deploy = lambda name, **settings: run_pyinfra(
        write_inventory(workdir / f"xenial-{name}.py", [(host.name, {**host.data, **settings})]),
        deploy="tasks.web.front",
    )
    started = time.monotonic()
    result = host.deploy("letsencrypt")
    assert result.returncode == 0, result.stderr[-4000:]
    print(f"Ubuntu 16.04: first HTTPS answer {time.monotonic() - started:.0f} s after the deploy started")
    return host


def test_xenial_front_serves_a_certificate_and_keeps_the_existing_site(xenial):
    assert get(xenial, "/", allow_redirects=False).status_code == 502  # no hub behind it on 16.04
    assert "Pebble" in served_certificate(xenial).issuer.rfc4514_string()
    assert requests.get(f"http://{xenial.domain}/", allow_redirects=False, timeout=10).status_code == 301
    assert openssl_handshake(xenial, "tls1_1").returncode != 0
    assert xenial.sh("curl -s http://127.0.0.1:8080/") == "other site\n"
    certificate = xenial.sh("sha256sum /etc/letsencrypt/live/*/cert.pem")

    again = xenial.deploy("letsencrypt")
    assert again.totals["success"] == 0, again.changed_operations()
    assert xenial.sh("sha256sum /etc/letsencrypt/live/*/cert.pem") == certificate
    assert xenial.sh("curl -s http://127.0.0.1:8080/") == "other site\n"


def test_firewall_opens_only_ssh_and_the_web(xenial):
    result = xenial.deploy("firewall", jh_firewall=True)
    assert result.returncode == 0, result.stderr[-3000:]
    status = xenial.sh("ufw status")
    assert "Status: active" in status
    assert {line.split()[0] for line in status.splitlines() if " ALLOW " in line} == {"22/tcp", "80/tcp", "443/tcp"}
    assert get(xenial, "/hub/", allow_redirects=False).status_code == 502
    with pytest.raises(OSError):
        socket.create_connection((xenial.address, 8080), timeout=3)
    assert xenial.deploy("firewall", jh_firewall=True).totals["success"] == 0


def test_manual_certificate_from_the_controller_and_its_rotation(xenial, workdir, tmp_path):
    for name in ("manual", "rotated"):
        cert, key = workdir / f"{name}.crt", workdir / f"{name}.key"
        self_signed(cert, key, xenial.domain, days=30)
        result = xenial.deploy(
            name, jh_certificate="manual", jh_certificate_file=str(cert), jh_certificate_key_file=str(key)
        )
        assert result.returncode == 0, result.stderr[-3000:]
        # Served at once: a rotation under the same file names reloads nginx.
        assert_serves(xenial, "manual", xenial.domain, x509.load_pem_x509_certificate(cert.read_bytes()))
    # The key was never readable by others, not even while it was written: its folder is root's alone.
    assert xenial.sh(
        f"stat -c '%U %a' /etc/ssl/jupyterhub/private /etc/ssl/jupyterhub/private/{xenial.domain}.key"
    ).split() == ["root", "700", "root", "600"]
    # Mozilla's intermediate profile, as far as it applies to a certificate no CA vouches for.
    assert xenial_findings_without_a_ca(xenial, tmp_path) == {}


def test_selfsigned_certificate(xenial):
    """From the manual certificate of the test above (letsencrypt -> manual -> selfsigned)."""
    result = xenial.deploy("selfsigned", jh_certificate="selfsigned")
    assert result.returncode == 0, result.stderr[-3000:]
    assert_serves(xenial, "selfsigned", xenial.domain)
    assert xenial.deploy("selfsigned", jh_certificate="selfsigned").totals["success"] == 0


def test_switching_to_lets_encrypt_under_a_new_name_keeps_https_serving(xenial, pebble, resolver):
    """From the self-signed site to a Let's Encrypt certificate for another name: the live
    site answers on 443 all along (a 502: no hub behind it on 16.04), never refuses."""
    name = f"{xenial.name}-renamed.test"
    pebble.add_name(name, xenial.address)
    resolver[name] = xenial.address
    with KeepAsking(lambda: requests.get(f"https://{xenial.address}/", verify=False, timeout=5).status_code) as asking:
        result = xenial.deploy("renamed", jh_domain=name)
    refused, answered = asking.failures, asking.answers
    assert result.returncode == 0, result.stderr[-3000:]
    assert refused == [] and len(answered) > 10, (refused[:3], len(answered))
    assert_serves(xenial, "letsencrypt", name)
    assert "jupyterhub-acme" not in xenial.sh("ls /etc/nginx/sites-enabled /etc/nginx/sites-available")


def test_certificate_modes_switch_back_in_the_other_order(xenial, workdir):
    """letsencrypt -> selfsigned -> manual -> letsencrypt (the tests above went letsencrypt ->
    manual -> selfsigned -> letsencrypt): each deploy ends with its mode's certificate served."""
    name = f"{xenial.name}-renamed.test"
    cert, key = workdir / "renamed-manual.crt", workdir / "renamed-manual.key"
    self_signed(cert, key, name, days=30)
    manual = {"jh_certificate_file": str(cert), "jh_certificate_key_file": str(key)}
    for mode, extra, expected in (
        ("selfsigned", {}, None),
        ("manual", manual, x509.load_pem_x509_certificate(cert.read_bytes())),
        ("letsencrypt", {}, None),
    ):
        result = xenial.deploy(f"back-{mode}", jh_domain=name, jh_certificate=mode, **extra)
        assert result.returncode == 0, result.stderr[-3000:]
        assert_serves(xenial, mode, name, expected)


def test_uninstall_removes_the_site_and_keeps_the_admins_own(xenial, workdir):
    inventory = write_inventory(workdir / "xenial-uninstall.py", [(xenial.name, xenial.data)])
    result = run_pyinfra(inventory, deploy="tasks.uninstall.remove")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "/etc/nginx/sites-available/jupyterhub" in result.stderr  # in the list it prints
    enabled = xenial.sh("ls /etc/nginx/sites-enabled").split()
    assert "other" in enabled and "jupyterhub" not in enabled
    gone = (
        "/etc/nginx/sites-available/jupyterhub",
        "/etc/ssl/jupyterhub",
        "/etc/letsencrypt/renewal-hooks/deploy/jupyterhub-reload-nginx",
    )
    assert xenial.sh(f"ls -d {' '.join(gone)} 2>&1 || true").count("No such file") == len(gone)
    xenial.sh("nginx -t")
    assert xenial.sh("curl -s http://127.0.0.1:8080/") == "other site\n"
    again = run_pyinfra(inventory, deploy="tasks.uninstall.remove")
    assert again.returncode == 0 and again.totals["success"] == 0, again.changed_operations()


# sslyze, the outside judge of the TLS front, has a venv of its own (make venv): it needs an older
# cryptography than the controller's.
SSLYZE = REPO / ".venv-sslyze" / "bin" / "sslyze"
# sslyze's command line (sslyze.__main__.main, given the arguments) that also writes the findings of its
# Mozilla check to a JSON file: the command prints them as text only, and --json_out holds the scan
# results, not the check's verdict. The check itself is sslyze's own, unchanged.
SSLYZE_WITH_FINDINGS = """
import json, sys
from sslyze import __main__ as cli

findings_file, sys.argv = sys.argv[1], ["sslyze", *sys.argv[2:]]
findings = {"checked": [], "issues": {}}
check = cli.check_server_against_tls_configuration


def check_and_record(server_scan_result, tls_config_to_check_against):
    findings["checked"].append(server_scan_result.server_location.display_string)
    try:
        check(server_scan_result=server_scan_result, tls_config_to_check_against=tls_config_to_check_against)
    except cli.ServerNotCompliantWithTlsConfiguration as error:
        findings["issues"].update(error.issues)
        raise
    except cli.ServerScanResultIncomplete as error:
        findings["issues"]["scan_incomplete"] = str(error)
        raise


cli.check_server_against_tls_configuration = check_and_record
try:
    cli.main()
finally:
    with open(findings_file, "w") as out:
        json.dump(findings, out)
"""


def mozilla_intermediate_findings(host, workdir, ca_file: str | None = None, port: int = 443) -> dict[str, str]:
    """`sslyze --mozilla_config=intermediate` against the host's HTTPS site, by name and address:
    {rule: what sslyze found}, empty when the site complies."""
    if not SSLYZE.exists():
        pytest.fail(f"{SSLYZE} is missing: `make venv` installs sslyze there (from tests/requirements-sslyze.txt)")
    scan, findings = workdir / "sslyze-scan.json", workdir / "sslyze-findings.json"
    ca = ["--certinfo_ca_file", str(ca_file)] if ca_file else []
    target = f"{host.domain}:{port}{{{host.address}}}"  # sslyze's name:port{address}
    arguments = ["--mozilla_config=intermediate", *ca, "--json_out", str(scan), target]
    command = [str(SSLYZE.with_name("python")), "-c", SSLYZE_WITH_FINDINGS, str(findings), *arguments]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    output = f"sslyze {' '.join(arguments)}: exit {result.returncode}\n{result.stdout[-8000:]}\n{result.stderr[-4000:]}"
    assert scan.exists() and findings.exists(), output
    scanned = json.loads(scan.read_text())["server_scan_results"]
    assert [(s["connectivity_status"], s["scan_status"]) for s in scanned] == [("COMPLETED", "COMPLETED")], output
    recorded = json.loads(findings.read_text())
    # The check ran, once, and sslyze's exit status agrees with what it recorded.
    assert len(recorded["checked"]) == 1 and (result.returncode != 0) == bool(recorded["issues"]), output
    return recorded["issues"]


def test_https_site_passes_sslyze_mozilla_intermediate(hub, tmp_path):
    """Mozilla's "intermediate" profile, as sslyze checks it: protocols, ciphers, curves, known
    vulnerabilities and the certificate (verified against Pebble's roots)."""
    findings = mozilla_intermediate_findings(hub, tmp_path, ca_file=hub.ca_bundle)
    # Pebble issues its test certificates for 5 years (Let's Encrypt, for 90 days): the test CA's
    # lifespan, not the deploy's.
    assert "Pebble" in served_certificate(hub).issuer.rfc4514_string()
    findings.pop("maximum_certificate_lifespan", None)
    assert findings == {}


def xenial_findings_without_a_ca(xenial, tmp_path) -> dict[str, str]:
    """sslyze's findings on the Ubuntu 16.04 front with a certificate no CA vouches for (self-signed,
    or the test's manual one), less what does not apply or the platform cannot do.

    Left out: path validation (no CA vouches for the certificate: that is the mode), the lifespan
    (a rule for CAs' certificates; the deploy makes its self-signed ones for 825 days), and the
    Extended Master Secret extension, which OpenSSL 1.0.2 predates (1.1.0 added it; docs/security.md
    says so). The key and signature rules, and every other rule on the TLS side, still apply.
    """
    findings = mozilla_intermediate_findings(xenial, tmp_path)
    for rule in (
        "certificate_path_validation",
        "maximum_certificate_lifespan",
        "tls_vulnerability_extended_master_secret",
    ):
        findings.pop(rule, None)
    return findings


def test_xenial_selfsigned_site_passes_sslyze_mozilla_intermediate(xenial, tmp_path):
    """Ubuntu 16.04's subset of the profile (TLS 1.2, AES-GCM, prime256v1) complies too.
    Deployed afresh: the tests above end with the front uninstalled."""
    result = xenial.deploy("sslyze-selfsigned", jh_certificate="selfsigned")
    assert result.returncode == 0, result.stderr[-3000:]
    assert xenial_findings_without_a_ca(xenial, tmp_path) == {}


def test_bionic_front_serves_tls_1_3_with_a_certificate_from_the_acme_server(start, workdir):
    """Ubuntu 18.04's hub needs conda's Python (unreachable here); its nginx 1.14 with OpenSSL
    1.1.1 and certbot serve the front alone, TLS 1.3 included."""
    host = start("bionic", "jhd-test-bionic-web")
    inventory = write_inventory(workdir / "bionic-web.py", [(host.name, host.data)])
    result = run_pyinfra(inventory, deploy="tasks.web.front")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Pebble" in served_certificate(host).issuer.rfc4514_string()
    assert get(host, "/", allow_redirects=False).status_code == 502  # no hub behind it
    assert requests.get(f"http://{host.domain}/", allow_redirects=False, timeout=10).status_code == 301
    assert openssl_handshake(host, "tls1_1").returncode != 0
    assert openssl_handshake(host, "tls1_3").returncode == 0
    again = run_pyinfra(inventory, deploy="tasks.web.front")
    assert again.totals["success"] == 0, again.changed_operations()
