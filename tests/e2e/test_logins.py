"""Logins from a real LDAP directory: OpenLDAP (Debian 12's slapd) in a container of its own on
the test network, with StartTLS under a certificate the hub trusts through
jh_extra_ca_certificates. Two people in the allowed group, one outside it; one of the two has
an account from jh_users, the other gets one at the first start through the helper.

Then sign-up at the hub (NativeAuthenticator, on JupyterHub 5): a newcomer waits for an
admin's approval, then gets an account at the first start.

Tests run in file order."""

from __future__ import annotations

import io
import shlex
import tarfile

import pytest

from tests.certificates import self_signed
from tests.e2e.conftest import plain_hub, run_pyinfra, write_inventory
from tests.e2e.hub_client import HubClient

LDAP_NAME = "ldap.jhd.test"
BASE = "dc=jhd,dc=test"
PEOPLE = {"lena": "lena-secret", "lars": "lars-secret", "olga": "olga-secret"}
GROUP = f"cn=ml-2026,ou=groups,{BASE}"
DIRECTORY = (
    f"""dn: ou=people,{BASE}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{BASE}
objectClass: organizationalUnit
ou: groups
"""
    + "".join(
        f"""
dn: uid={name},ou=people,{BASE}
objectClass: inetOrgPerson
uid: {name}
cn: {name.title()}
sn: {name.title()}
userPassword: {password}
"""
        for name, password in PEOPLE.items()
    )
    + f"""
dn: {GROUP}
objectClass: groupOfNames
cn: ml-2026
member: uid=lena,ou=people,{BASE}
member: uid=lars,ou=people,{BASE}
"""
)
TLS = """dn: cn=config
changetype: modify
replace: olcTLSCertificateFile
olcTLSCertificateFile: /etc/ldap/tls/ldap.crt
-
replace: olcTLSCertificateKeyFile
olcTLSCertificateKeyFile: /etc/ldap/tls/ldap.key
"""


@pytest.fixture(scope="module")
def directory(start, workdir):
    """slapd with the people above, answering StartTLS as ldap.jhd.test; the CA file that trusts it."""
    host = start("bookworm", "jhd-test-ldap")
    certificate, key = workdir / "ldap-ca.crt", workdir / "ldap.key"
    self_signed(certificate, key, LDAP_NAME, 30, alt_names=True)
    preseed = "\n".join(
        f"slapd {question}"
        for question in (
            f"slapd/domain string {BASE.replace('dc=', '').replace(',', '.')}",
            "shared/organization string JHD",
            "slapd/password1 password admin-secret",
            "slapd/password2 password admin-secret",
        )
    )
    host.sh(f"echo '{preseed}' | debconf-set-selections")
    host.sh(
        "apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q slapd ldap-utils >/dev/null"
    )
    host.sh("mkdir -p /etc/ldap/tls")
    host.container.put_archive("/etc/ldap/tls", tar_of({"ldap.crt": certificate, "ldap.key": key}))
    host.sh("chown -R openldap:openldap /etc/ldap/tls && chmod 600 /etc/ldap/tls/ldap.key")
    host.sh(f"cat > /tmp/tls.ldif <<'EOF'\n{TLS}EOF\nldapmodify -Q -Y EXTERNAL -H ldapi:/// -f /tmp/tls.ldif")
    host.sh(f"cat > /tmp/people.ldif <<'EOF'\n{DIRECTORY}EOF\n")
    host.sh(f"ldapadd -x -D cn=admin,{BASE} -w admin-secret -H ldapi:/// -f /tmp/people.ldif >/dev/null")
    return host, certificate


def tar_of(files: dict) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, path in files.items():
            archive.add(str(path), arcname=name)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def ldap_hub(start, workdir, directory):
    server, ca = directory
    host = start("noble", "jhd-test-ldap-hub")
    host.sh(f"echo '{server.address} {LDAP_NAME}' >> /etc/hosts")
    settings = plain_hub(
        host,
        jh_authenticator="ldap",
        jh_ldap={
            "server": LDAP_NAME,
            "bind_dn_template": f"uid={{username}},ou=people,{BASE}",
            "allowed_groups": [GROUP],
        },
        jh_users=[{"name": "lena"}],
        jh_admin_users=["lena"],
        jh_extra_ca_certificates=[*host.data["jh_extra_ca_certificates"], str(ca)],
    )
    result = run_pyinfra(write_inventory(workdir / "ldap.py", [(host.name, settings)]))
    assert result.returncode == 0, result.stderr[-4000:]
    return host


def client(host) -> HubClient:
    return HubClient(f"http://{host.address}:8000")


def test_a_group_member_with_an_account_logs_in_and_runs_code_as_it(ldap_hub):
    lena = client(ldap_hub)
    assert lena.login("lena", PEOPLE["lena"]).status_code == 302, ldap_hub.journal()
    lena.create_token()
    lena.start_server()
    assert lena.run_code("import getpass, os; print(getpass.getuser(), os.getcwd())") == "lena /home/lena\n"


def test_a_group_member_without_an_account_gets_one_at_the_first_start(ldap_hub):
    assert ldap_hub.sh("getent passwd lars", check=False) == ""
    lars = client(ldap_hub)
    assert lars.login("lars", PEOPLE["lars"]).status_code == 302, ldap_hub.journal()
    lars.create_token()
    lars.start_server()
    assert lars.run_code("import getpass; print(getpass.getuser())") == "lars\n"
    groups = ldap_hub.sh("id -nG lars").split()
    assert sorted(groups) == ["jupyterhub-users", "lars"]
    assert ldap_hub.sh("stat -c '%U %a' /home/lars; getent shadow lars | cut -d: -f2").split() == ["lars", "700", "!"]


def test_wrong_passwords_and_people_outside_the_group_are_refused(ldap_hub):
    assert client(ldap_hub).login("olga", PEOPLE["olga"]).status_code == 403
    assert client(ldap_hub).login("lena", "not-her-password").status_code == 403
    assert client(ldap_hub).login("lena)(uid=*", PEOPLE["lena"]).status_code == 403
    assert ldap_hub.sh("getent passwd olga", check=False) == ""


def test_someone_removed_from_the_group_is_refused_at_the_next_login(ldap_hub, directory):
    """lars was let in by the group (not listed in jh_users): out of it, he is out of the hub, though
    the hub's database knows him (allow_existing_users is off); his running server runs on until
    it stops or is culled."""
    server, _ = directory
    change = f"dn: {GROUP}\nchangetype: modify\ndelete: member\nmember: uid=lars,ou=people,{BASE}\n"
    server.sh(f"printf '%s' {shlex.quote(change)} | ldapmodify -x -D cn=admin,{BASE} -w admin-secret -H ldapi:///")
    try:
        assert client(ldap_hub).login("lars", PEOPLE["lars"]).status_code == 403
        # lena is listed in jh_users and in the group: still in.
        assert client(ldap_hub).login("lena", PEOPLE["lena"]).status_code == 302
    finally:
        back = f"dn: {GROUP}\nchangetype: modify\nadd: member\nmember: uid=lars,ou=people,{BASE}\n"
        server.sh(f"printf '%s' {shlex.quote(back)} | ldapmodify -x -D cn=admin,{BASE} -w admin-secret -H ldapi:///")


def test_the_second_run_changes_nothing(ldap_hub, workdir):
    result = run_pyinfra(workdir / "ldap.py")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.totals["success"] == 0, result.changed_operations()


@pytest.fixture(scope="module")
def native_hub(start, workdir):
    """Sign-up at the hub (NativeAuthenticator, on JupyterHub 5: it does not run on 6)."""
    host = start("noble", "jhd-test-native")
    settings = plain_hub(
        host,
        jh_server_release="jupyterhub-5",
        jh_authenticator="native",
        jh_users=[{"name": "nadia"}],
        jh_admin_users=["nadia"],
    )
    result = run_pyinfra(write_inventory(workdir / "native.py", [(host.name, settings)]))
    assert result.returncode == 0, result.stderr[-4000:]
    return host


def sign_up(host, name: str, password: str) -> str:
    """The sign-up form as a browser sends it; the page the hub answers with."""
    user = client(host)
    user.get("/hub/signup")
    form = {"username": name, "signup_password": password, "signup_password_confirmation": password}
    form["_xsrf"] = user.session.cookies.get("_xsrf", path="/hub/")
    response = user.session.post(user._url("/hub/signup"), data=form, timeout=60)
    assert response.status_code == 200, response.text[-2000:]
    return response.text


def test_sign_up_waits_for_an_admin_then_runs_as_a_new_account(native_hub):
    assert "The signup was successful" in sign_up(native_hub, "nadia", "nadia-native-secret")
    nadia = client(native_hub)
    assert nadia.login("nadia", "nadia-native-secret").status_code == 302, native_hub.journal()
    assert "Your information has been sent to the admin" in sign_up(native_hub, "nina", "nina-native-secret")
    waiting = client(native_hub).login("nina", "nina-native-secret")
    assert waiting.status_code == 200 and "User nina has not been authorized by an administrator yet" in waiting.text
    # Not a Unix name, or a common password: refused at sign-up.
    assert "Something went wrong" in sign_up(native_hub, "x;reboot", "whatever-secret-1")
    assert "Something went wrong" in sign_up(native_hub, "noah", "password123")
    assert nadia.get("/hub/authorize/nina", allow_redirects=False).status_code == 302
    nina = client(native_hub)
    assert nina.login("nina", "nina-native-secret").status_code == 302, native_hub.journal()
    nina.create_token()
    nina.start_server()
    assert nina.run_code("import getpass; print(getpass.getuser())") == "nina\n"
    assert sorted(native_hub.sh("id -nG nina").split()) == ["jupyterhub-users", "nina"]
