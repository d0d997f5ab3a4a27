"""The hub of per-user origins (tests/e2e/test_subdomains.py, test_sharing.py): a Debian 12 target at
jhd-test-subs.test, whose zone BIND holds (the name and *.name to the target, tests/dns.py), first
deployed with servers under the hub's origin, then with jh_user_subdomains, its wildcard certificate
from Pebble by DNS-01, sharing and collaboration (conftest's `origins_site` and `origins_hub`)."""

from __future__ import annotations

from tests.dns import KEY_ALGORITHM, KEY_NAME
from tests.e2e.conftest import run_pyinfra, write_inventory
from tests.e2e.hub_client import HubClient
from tests.harness import password_hash
from tests.pebble import BIND_PORT

NAME = "jhd-test-subs"
CAROL = "carol-password"
PEOPLE = {"alice": "alice-password", "bob": "bob-password", "carol": CAROL}
# What turns per-user origins on, besides jh_dns01.
PER_USER = {"jh_user_subdomains": True, "jh_sharing": True, "jh_collaboration": True}


def prepare(host, pebble, bridge_gateway: str, resolver: dict) -> None:
    """The site's names in the DNS, its people (carol too, in the group editors), its settings."""
    pebble.dns.add_zone(host.domain, {"@": host.address, "*": host.address})
    for name in PEOPLE:
        resolver[f"{name}.{host.domain}"] = host.address
    host.data = {
        **host.data,
        "jh_users": [*host.data["jh_users"], {"name": "carol", "password_hash": password_hash(CAROL)}],
        "jh_groups": {"editors": ["carol"]},
        "jh_nltk_packages": [],
        "jh_kernels": [{"name": "python3", "display_name": "Python 3", "packages": "minimal"}],
        "jh_idle_timeout": 3600,
    }
    host.dns01 = {
        "server": bridge_gateway,
        "port": BIND_PORT,
        "key_name": KEY_NAME,
        "key_algorithm": KEY_ALGORITHM,
        "key_secret_file": str(pebble.dns.secret_file),
        "propagation_seconds": 1,
    }


def deploy(host, workdir, name: str, without: tuple[str, ...] = (), **settings):
    """The deploy with the site's settings, and settings, but those named in without."""
    data = {key: value for key, value in {**host.data, **settings}.items() if key not in without}
    inventory = write_inventory(workdir / f"subs-{name}.py", [(host.name, data)])
    return inventory, run_pyinfra(inventory)


def per_user_origins(host, workdir) -> None:
    """The site with per-user origins (its inventory in host.inventory)."""
    host.inventory, result = deploy(host, workdir, "subdomains", jh_dns01=host.dns01, **PER_USER)
    assert result.returncode == 0, result.stderr[-4000:] + host.journal()


def client(host, name: str) -> HubClient:
    """name signed in at the hub's name, with an API token of theirs."""
    user = HubClient(f"https://{host.domain}", verify=host.ca_bundle)
    assert user.login(name, PEOPLE[name]).status_code == 302
    user.create_token()
    return user
