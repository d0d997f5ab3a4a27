"""Each task module names the host directories it manages; deploy.py reads them all in one command."""

from __future__ import annotations

import re

import pytest

from tasks import (
    conda,
    confinement,
    courses,
    hub,
    kernels,
    logins,
    monitoring,
    nightly_backup,
    people,
    server_env,
    system,
    web,
)
from tasks.platform import Platform
from tasks.settings import REPO, Settings
from tasks.snapshot import Managed

# As deploy.py's MANAGING (checked below).
MANAGING = (
    system,
    conda,
    server_env,
    kernels,
    logins,
    hub,
    people,
    courses,
    web,
    confinement,
    nightly_backup,
    monitoring,
)
NOBLE = Platform("Ubuntu", "24.04", "3.12", "3.12")
XENIAL = Platform("Ubuntu", "16.04", "3.5", "3.12", "/opt/miniconda3/envs/jupyterhub-server/bin/python3.12")


def gathered(settings: Settings, platform: Platform) -> Managed:
    """Every module's directories together, as deploy.py hands them to prefetch_managed."""
    parts = [task.managed_paths(settings, platform) for task in MANAGING]
    return Managed(
        *(tuple(str(p) for part in parts for p in getattr(part, kind)) for kind in ("hashed", "listed", "deep"))
    )


def test_deploy_gathers_the_managed_paths_of_these_modules():
    text = (REPO / "deploy.py").read_text()
    listed = re.search(r"^MANAGING = \((.*?)\)$", text, re.M | re.S).group(1)
    assert " ".join(listed.split()).strip(", ") == ", ".join(m.__name__[6:] for m in MANAGING)
    assert text.count("prefetch_managed(") == 1


def test_the_default_hub_reads_these_directories():
    settings = Settings.from_data({})
    env = str(server_env.env_dir(settings, NOBLE))
    found = gathered(settings, NOBLE)
    assert sorted(found.hashed) == sorted(
        [
            "/opt",
            "/opt/jupyter",
            "/opt/jupyter/libexec",
            "/opt/jupyter/share",
            "/usr/local/share/ca-certificates/jupyterhub-deploy",
            "/etc/pam.d",
            "/opt/jupyter/envs",
            env,
            f"{env}/share/jupyter/lab/settings",
            f"{env}/etc/jupyter",
            f"{env}/etc/jupyter/labconfig",
            f"{env}/share/configurable-http-proxy",
            f"{env}/share/configurable-http-proxy/node_modules",
            "/opt/jupyter/tools",
            "/opt/jupyter/tools/uv",
            "/opt/jupyter/share/jupyter/kernels",
            "/opt/jupyter/share/jupyter/kernels/python3",
            "/opt/jupyter/kernels",
            "/opt/jupyter/kernels/python3",
            "/etc/systemd/system",
            "/etc/sudoers.d",
            "/etc/nginx/sites-available",
            "/etc/nginx/sites-enabled",
            "/var/www",
            "/etc/letsencrypt/renewal-hooks/deploy",
            "/etc/security",
            "/etc/apt/apt.conf.d",
            "/etc/jupyterhub-deploy",
            "/etc/jupyterhub-deploy/restic",
        ]
    )
    assert sorted(found.listed) == ["/", "/home", "/opt/jupyter/state", "/var/backups"]
    assert found.deep == ("/opt/jupyter/nltk_data",)


@pytest.mark.parametrize(
    ("data", "platform", "hashed", "listed"),
    [
        (
            {},
            XENIAL,
            {"/opt/miniconda3", "/opt/miniconda3/deploy-environments", "/opt/miniconda3/envs/jupyterhub-server"},
            set(),
        ),
        (
            {"jh_domain": "hub.example.org", "jh_certificate": "selfsigned"},
            NOBLE,
            {"/etc/ssl", "/etc/ssl/jupyterhub"},
            {"/etc/ssl/jupyterhub/private"},
        ),
        (
            {
                "jh_users": [{"name": "alice"}, {"name": "bob"}],
                "jh_groups": {"ml": ["alice"]},
                "jh_shared_dirs": [{"path": "/srv/share/ml", "group": "ml", "mode": "group-writable"}],
            },
            NOBLE,
            set(),
            {"/srv", "/srv/share", "/home/alice"},
        ),
    ],
)
def test_settings_add_their_directories(data, platform, hashed, listed, monkeypatch):
    """What a setting (or a platform that needs conda) adds, the server venv in use aside."""
    monkeypatch.setattr(people, "host_accounts", lambda settings: {})

    def paths(settings: Settings, platform: Platform, kind: str) -> set[str]:
        env = str(server_env.env_dir(settings, platform))
        return {p for p in getattr(gathered(settings, platform), kind) if not p.startswith(env)}

    settings, default = Settings.from_data(data), Settings.from_data({})
    assert paths(settings, platform, "hashed") - paths(default, NOBLE, "hashed") == hashed
    assert paths(settings, platform, "listed") - paths(default, NOBLE, "listed") == listed
