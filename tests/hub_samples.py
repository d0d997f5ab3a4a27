"""hub.json as the deploy writes it (tasks/hub_data.py), for settings of each kind, as files for the
hub package's tests (hubside/tests), which run in the hub's venv without the deploy's code:

    python -m tests.hub_samples DIR
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tasks import hub_data
from tasks.platform import Platform
from tasks.settings import Settings

NOBLE = Platform("Ubuntu", "24.04", "3.12", "3.12")
NODES = {"node1": "10.0.0.11", "node2": "10.0.0.12"}


def samples(secret_file: Path, key_file: Path) -> dict[str, dict]:
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
        "lti13": {
            "jh_domain": "hub.example.org",
            "jh_authenticator": "lti13",
            "jh_users": [{"name": "prof", "account": "sub-prof"}],
            "jh_admin_users": ["prof"],
            "jh_lti13": {
                "issuer": "https://lms.example.org",
                "client_id": "tool-1",
                "deployment_ids": ["dep-1"],
                "authorization_endpoint": "https://lms.example.org/authorize",
                "jwks_url": "https://lms.example.org/jwks",
                "token_url": "https://lms.example.org/token",
                "tool_key_file": str(key_file),
                "courses": {"ctx-ml": "ml-2026", "ctx-ml-b": "ml-2026"},
            },
        },
        "courses": {
            "jh_users": [{"name": name} for name in ("prof", "ta1", "alice", "bob", "carol")],
            "jh_admin_users": ["prof"],
            "jh_groups": {"ml-2026": ["alice", "bob"], "nlp": ["carol"]},
            "jh_courses": {
                "ml-2026": {"instructors": ["prof"], "tas": ["ta1"], "students": "ml-2026"},
                "nlp": {"instructors": ["prof"], "students": "nlp"},
                "old": {"instructors": ["prof"], "students": "nlp", "archived": True},
            },
        },
        "sharing": {
            "jh_domain": "hub.example.org",
            "jh_certificate": "selfsigned",
            "jh_users": [{"name": name} for name in ("prof", "alice", "bob", "carol")],
            "jh_admin_users": ["prof"],
            "jh_groups": {"pairs": ["bob", "carol"]},
            "jh_courses": {"ml-2026": {"instructors": ["prof"], "students": "pairs"}},
            "jh_user_subdomains": True,
            "jh_sharing": True,
            "jh_collaboration": True,
        },
        "native": {"jh_authenticator": "native", "jh_server_release": "jupyterhub-5", "jh_admin_users": ["alice"]},
        "cluster": {"jh_users": users, "jh_cluster": True, "jh_cluster_address": "10.0.0.1", "jh_firewall": True},
        "postgresql": {"jh_db_url": "postgresql:///jupyterhub"},
        "monitored": {
            "jh_users": users,
            "jh_domain": "hub.example.org",
            "jh_monitoring": {"webhook_url": "https://chat.example.org/hooks/1"},
        },
        "subdomains": {
            "jh_users": users,
            "jh_domain": "hub.example.org",
            "jh_certificate": "selfsigned",
            "jh_user_subdomains": True,
        },
    }


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as scratch:
        secret = Path(scratch) / "client-secret"
        secret.write_text("s3cret\n")
        # Kept beside the samples: the hub's tests sign with the key whose JWK the deploy derived.
        key = directory / "lti-tool-key.pem"
        key.write_bytes(
            rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        for name, data in samples(secret, key).items():
            settings = Settings.from_data(data)
            nodes = NODES if settings.cluster else {}
            path = directory / f"{name}.json"
            path.write_text(hub_data.hub_json(settings, NOBLE, 1000, nodes))
            written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1])):
        print(path)
