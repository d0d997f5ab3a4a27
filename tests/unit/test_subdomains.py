"""Per-user origins (jh_user_subdomains) and DNS-01 (jh_dns01): the settings refused before any host
changes, the wildcard DNS asked from the controller, certbot's command, the proxy's host routing."""

from __future__ import annotations

import socket

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tasks import hub_data, web
from tasks.ops import render
from tasks.platform import Platform
from tasks.settings import Settings, SettingsError
from tests.certificates import self_signed
from tests.unit.test_courses import LTI
from tests.unit.test_lti_settings import pem
from tests.unit.test_templates import render_unit

NOBLE = Platform("Ubuntu", "24.04", "3.12", "3.12")
XENIAL = Platform("Ubuntu", "16.04", "3.5", "3.5")
SITE = {"jh_domain": "hub.example.org"}


@pytest.fixture
def tsig(tmp_path):
    path = tmp_path / "tsig.secret"
    path.write_text("c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0\n")
    path.chmod(0o600)
    return path


def dns01(tsig, **extra) -> dict:
    return {"server": "192.0.2.53", "key_name": "jupyterhub-acme", "key_secret_file": str(tsig), **extra}


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"jh_user_subdomains": True}, "jh_user_subdomains needs jh_domain"),
        ({**SITE, "jh_user_subdomains": True}, "needs jh_dns01: a certificate for *.hub.example.org"),
        ({"jh_dns01": "DNS01"}, "jh_dns01 needs jh_domain"),
        ({**SITE, "jh_certificate": "selfsigned", "jh_dns01": "DNS01"}, "jh_dns01 needs jh_domain and"),
    ],
)
def test_per_user_origins_without_what_they_need_are_refused(tsig, data, expected):
    data = {k: dns01(tsig) if v == "DNS01" else v for k, v in data.items()}
    with pytest.raises(SettingsError) as error:
        Settings.from_data(data)
    assert expected in str(error.value)


def test_a_tsig_key_others_can_read_or_swap_is_refused(tmp_path, tsig):
    tsig.chmod(0o644)
    with pytest.raises(SettingsError, match=r"jh_dns01\[key_secret_file\]: readable by others"):
        Settings.from_data({**SITE, "jh_dns01": dns01(tsig)})
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    (shared / "key").write_text("c2VjcmV0\n")
    (shared / "key").chmod(0o600)
    with pytest.raises(SettingsError, match="may be changed by others"):
        Settings.from_data({**SITE, "jh_dns01": dns01(shared / "key")})


@pytest.mark.parametrize("bad", ["a\nb", "c2Vj;rm -rf /", "c2Vj cmV0", "%h"])
def test_a_secret_that_is_not_base64_is_refused(tsig, bad):
    tsig.write_text(bad)
    with pytest.raises(SettingsError, match="key_secret_file"):
        Settings.from_data({**SITE, "jh_dns01": dns01(tsig)})


def test_a_manual_certificate_must_name_the_wildcard(tmp_path):
    certificate, key = tmp_path / "site.crt", tmp_path / "site.key"
    self_signed(certificate, key, "hub.example.org", days=1)
    data = {
        **SITE,
        "jh_user_subdomains": True,
        "jh_certificate": "manual",
        "jh_certificate_file": str(certificate),
        "jh_certificate_key_file": str(key),
    }
    with pytest.raises(
        SettingsError, match=r"jh_certificate_file: with jh_user_subdomains it must name hub\S+ and \*\.hub"
    ):
        Settings.from_data(data)


def test_the_wildcard_certificate_is_a_lineage_of_its_own_by_dns_01(tsig):
    settings = Settings.from_data({**SITE, "jh_user_subdomains": True, "jh_dns01": dns01(tsig)})
    assert web.certificate_names(settings) == ["hub.example.org", "*.hub.example.org"]
    assert str(web.certificate_paths(settings)[0]) == "/etc/letsencrypt/live/hub.example.org-wildcard/fullchain.pem"
    assert web.challenge(settings)[:2] == ("--authenticator", "dns-rfc2136")
    plain = Settings.from_data(SITE)
    assert str(web.certificate_paths(plain)[0]) == "/etc/letsencrypt/live/hub.example.org/fullchain.pem"
    assert web.challenge(plain)[0] == "--webroot"
    credentials = render("certbot-rfc2136.ini.j2", settings, dns01=settings.dns01, secret="c2VjcmV0")
    assert "dns_rfc2136_server = 192.0.2.53\n" in credentials
    assert "dns_rfc2136_algorithm = HMAC-SHA512\n" in credentials


def test_the_proxy_routes_by_host_and_the_hub_knows_its_origin():
    settings = Settings.from_data({**SITE, "jh_certificate": "selfsigned", "jh_user_subdomains": True})
    unit = render_unit("jupyterhub-proxy.service", settings)
    assert " --host-routing" in unit
    assert hub_data.hub_data(settings, NOBLE, 1000, {})["urls"]["subdomain_host"] == "https://hub.example.org"
    plain = Settings.from_data({**SITE, "jh_certificate": "selfsigned"})
    assert "--host-routing" not in render_unit("jupyterhub-proxy.service", plain)


class Host:
    name = "hub1"


@pytest.fixture
def resolver(monkeypatch):
    """name -> addresses, as this machine's resolver answers."""
    names: dict[str, list[str]] = {}

    def getaddrinfo(name, port, proto=0):
        if name in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, proto, "", (a, port)) for a in names[name]]
        if name.startswith("jhd-check-") and "*" in names:
            return getaddrinfo("*", port, proto)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(web.socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(web, "host", Host())
    return names


def test_no_wildcard_dns_stops_the_run_naming_the_setting(resolver):
    settings = Settings.from_data({**SITE, "jh_certificate": "selfsigned", "jh_user_subdomains": True})
    resolver["hub.example.org"] = ["192.0.2.10"]
    with pytest.raises(SettingsError, match=r"jh_user_subdomains: jhd-check-[0-9a-f]{8}\.hub\.example\.org has no"):
        web.check(settings, NOBLE)
    resolver["*"] = ["198.51.100.7"]
    with pytest.raises(SettingsError, match=r"\*\.hub\.example\.org points at 198\.51\.100\.7"):
        web.check(settings, NOBLE)
    resolver["*"] = ["192.0.2.10"]
    web.check(settings, NOBLE)
    web.check(Settings.from_data(SITE), NOBLE)  # no per-user origins: nothing asked


def test_dns_01_on_ubuntu_16_04_is_refused(resolver, tsig):
    with pytest.raises(SettingsError, match="Ubuntu 16.04 has no certbot RFC 2136 plugin"):
        web.check(Settings.from_data({**SITE, "jh_dns01": dns01(tsig)}), XENIAL)


def test_services_with_per_user_origins_on_ubuntu_16_04_are_refused(resolver):
    """Its nginx 1.10 takes no captures in a map's value: the hub's sign-in would reach the services."""
    resolver["hub.example.org"] = resolver["*"] = ["192.0.2.10"]
    origins = {**SITE, "jh_certificate": "selfsigned", "jh_user_subdomains": True}
    services = {"jh_services": [{"path": "/rstudio/", "upstream": "http://127.0.0.1:8787/"}]}
    with pytest.raises(SettingsError, match="jh_user_subdomains with jh_services: Ubuntu 16.04's nginx"):
        web.check(Settings.from_data({**origins, **services}), XENIAL)
    web.check(Settings.from_data(origins), XENIAL)
    web.check(Settings.from_data({**SITE, **services}), XENIAL)


def test_a_learning_platform_among_the_servers_names_is_refused(tmp_path):
    """Its launch form would be posted from a servers' origin, which the hub's name refuses."""
    key = tmp_path / "key.pem"
    key.write_bytes(pem(rsa.generate_private_key(65537, 2048)))
    lti = {**LTI, "jh_lti13": {**LTI["jh_lti13"], "tool_key_file": str(key)}, "jh_courses": {"ml-2026": {}}}
    origins = {"jh_certificate": "selfsigned", "jh_user_subdomains": True}
    Settings.from_data({**lti, **origins})  # the platform at lms.example.org, the hub at hub.example.org
    inside = {
        **lti["jh_lti13"],
        "issuer": "https://lms.hub.example.org",
        "authorization_endpoint": "https://lms.hub.example.org/authorize",
    }
    with pytest.raises(SettingsError, match=r"jh_lti13\[issuer\]: lms\.hub\.example\.org is among the servers' names"):
        Settings.from_data({**lti, **origins, "jh_lti13": inside})
    Settings.from_data({**lti, "jh_certificate": "selfsigned", "jh_lti13": inside})  # no per-user origins
