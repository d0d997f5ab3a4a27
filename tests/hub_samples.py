"""hub.json as the deploy writes it (tasks/hub_data.py), for settings of each kind, as files for the
hub package's tests (hubside/tests), which run in the hub's venv without the deploy's code:

    python -m tests.hub_samples DIR
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tasks import hub_data
from tasks.platform import Platform
from tasks.settings import Settings

NOBLE = Platform("Ubuntu", "24.04", "3.12", "3.12")
NODES = {"node1": "10.0.0.11", "node2": "10.0.0.12"}


def samples(secret_file: Path) -> dict[str, dict]:
    users = [{"name": "alice"}, {"name": "bob"}]
    bound = [{"name": "alice", "account": "sub-of-alice"}, {"name": "bob"}]
    oauth = {"jh_domain": "hub.example.org", "jh_users": bound, "jh_admin_users": ["alice"]}
    return {
        "pam": {"jh_users": users, "jh_admin_users": ["alice"], "jh_users_group": "students"},
        "ldap": {
            "jh_authenticator": "ldap",
            "jh_users": users,
            "jh_ldap": {
                "server": "ldap.example.org",
                "bind_dn_template": "uid={username},ou=people,dc=example,dc=org",
                "allowed_groups": ["cn=ml-2026,ou=groups,dc=example,dc=org"],
            },
        },
        "oidc": {
            **oauth,
            "jh_authenticator": "oidc",
            "jh_oidc": {
                "issuer": "https://login.example.org/realms/uni",
                "client_id": "jupyterhub",
                "client_secret_file": str(secret_file),
                "allowed_groups": ["ml-2026"],
            },
        },
        "github": {
            **oauth,
            "jh_authenticator": "github",
            "jh_github": {
                "client_id": "Iv1.0123",
                "client_secret_file": str(secret_file),
                "allowed_organizations": ["my-lab"],
            },
        },
        "native": {"jh_authenticator": "native", "jh_server_release": "jupyterhub-5", "jh_admin_users": ["alice"]},
        "cluster": {"jh_users": users, "jh_cluster": True, "jh_cluster_address": "10.0.0.1", "jh_firewall": True},
        "postgresql": {"jh_db_url": "postgresql:///jupyterhub"},
        "monitored": {
            "jh_users": users,
            "jh_domain": "hub.example.org",
            "jh_monitoring": {"webhook_url": "https://chat.example.org/hooks/1"},
        },
    }


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as scratch:
        secret = Path(scratch) / "client-secret"
        secret.write_text("s3cret\n")
        for name, data in samples(secret).items():
            settings = Settings.from_data(data)
            nodes = NODES if settings.cluster else {}
            path = directory / f"{name}.json"
            path.write_text(hub_data.hub_json(settings, NOBLE, 1000, nodes))
            written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1])):
        print(path)
