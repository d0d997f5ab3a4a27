"""The settings model: defaults, and bad input refused with the setting's name."""

import hashlib
from pathlib import PurePosixPath

import pytest

from tasks.settings import Settings, SettingsError

HASH = "$6$saltsalt$" + "a" * 86


def test_defaults_are_the_seeds_layout():
    settings = Settings.from_data({})
    assert settings.install_root == PurePosixPath("/opt/jupyter")
    assert settings.layout.venv == PurePosixPath("/opt/jupyter/.venv")
    assert settings.hub_user == "jupyter"
    assert str(settings.public_ip) == "127.0.0.1"


def test_reads_only_prefixed_data():
    settings = Settings.from_data(
        {
            "ssh_user": "admin",
            "_sudo": True,
            "jh_idle_timeout": 600,
            "jh_users": [{"name": "alice", "password_hash": HASH}],
        }
    )
    assert settings.idle_timeout == 600
    assert settings.users[0].name == "alice"


BAD = {
    "lab plugin id with a quote": (
        {"jh_lab_settings": {'x"y:z': {"a": 1}}},
        'jh_lab_settings[x"y:z][[key]]: must be a JupyterLab plugin id',
    ),
    "lab setting that is no JSON": (
        {"jh_lab_settings": {"@jupyterlab/notebook-extension:tracker": {"a": float("nan")}}},
        "jh_lab_settings must hold JSON values only",
    ),
    "untested release as text": (
        {"jh_allow_untested_release": "yes"},
        "jh_allow_untested_release: Input should be a valid boolean",
    ),
    "unknown key": ({"jh_idle_timout": 600}, "jh_idle_timout: unknown setting"),
    "number as string": ({"jh_idle_timeout": "600"}, "jh_idle_timeout: Input should be a valid integer"),
    "bool as string": ({"jh_notify_on_failure": "yes"}, "jh_notify_on_failure: Input should be a valid boolean"),
    "timeout too short": ({"jh_idle_timeout": 5}, "jh_idle_timeout: Input should be greater than or equal to 60"),
    "port out of range": ({"jh_public_port": 70000}, "jh_public_port: Input should be less than or equal to 65535"),
    "relative install root": ({"jh_install_root": "opt/jupyter"}, "jh_install_root: must be an absolute path"),
    "install root with ..": ({"jh_install_root": "/opt/../etc"}, "jh_install_root: must not contain '..'"),
    "invalid user name": ({"jh_users": [{"name": "Alice Smith"}]}, "jh_users[0][name]: must be a Unix user name"),
    "admin not a valid user name": ({"jh_admin_users": ["bob!"]}, "jh_admin_users[0]: must be a Unix user name"),
    "admin is root": ({"jh_admin_users": ["root"]}, "jh_admin_users[0]: 'root' is a system account"),
    "admins not a list": ({"jh_admin_users": "alice"}, "jh_admin_users: Input should be a valid list"),
    "plaintext password": (
        {"jh_users": [{"name": "bob", "password_hash": "hunter2"}]},
        "jh_users[0][password_hash]: must be a crypt(3) hash",
    ),
    "unknown user key": ({"jh_users": [{"name": "bob", "password": "x"}]}, "jh_users[0][password]: unknown key here"),
    "duplicate users": ({"jh_users": [{"name": "bob"}, {"name": "bob"}]}, "jh_users lists bob more than once"),
    "hub user as hub user": (
        {"jh_users": [{"name": "jupyter"}]},
        "the hub's own account 'jupyter' cannot be a hub user",
    ),
    "bad address": ({"jh_public_ip": "256.1.1.1"}, "jh_public_ip: Input is not a valid IPv4 address"),
    "bad index url": (
        {"jh_pip_index_url": "ftp://mirror/simple"},
        "jh_pip_index_url: URL scheme should be 'http' or 'https'",
    ),
    "missing CA file": (
        {"jh_extra_ca_certificates": ["/nonexistent/ca.crt"]},
        "jh_extra_ca_certificates[0]: Path does not point to a file",
    ),
    "unknown server release": (
        {"jh_server_release": "jupyterhub-99"},
        "jh_server_release: 'jupyterhub-99' is not a folder of files/server/ (choose one of jupyterhub-5, jupyterhub-6)",
    ),
    "check interval above timeout": (
        {"jh_idle_timeout": 60, "jh_idle_check_interval": 120},
        "jh_idle_check_interval must not exceed jh_idle_timeout",
    ),
    "kernel name with spaces": (
        {"jh_kernels": [{"name": "my kernel", "display_name": "K", "packages": "minimal"}]},
        "jh_kernels[0][name]: String should match pattern",
    ),
    "unknown kernel packages": (
        {"jh_kernels": [{"name": "k", "display_name": "K", "packages": "nope"}]},
        "jh_kernels[0]: packages: 'nope' is not a folder of files/kernels/; choose one of minimal, teaching",
    ),
    "duplicate kernels": (
        {"jh_kernels": [{"name": "k", "display_name": "K", "packages": "minimal"}] * 2},
        "jh_kernels: two kernels have the same name",
    ),
    "nltk package with a slash": ({"jh_nltk_packages": ["../etc"]}, "jh_nltk_packages[0]: String should match pattern"),
    "services without a domain": (
        {"jh_services": [{"path": "/r/", "upstream": "http://127.0.0.1:1/"}]},
        "jh_services needs jh_domain",
    ),
    "service inside the hub": (
        {"jh_domain": "hub.example.org", "jh_services": [{"path": "/user/x/", "upstream": "http://127.0.0.1:1/"}]},
        "jh_services[0]: path /user/x/ overlaps /user/",
    ),
    "manual certificate without files": (
        {"jh_domain": "hub.example.org", "jh_certificate": "manual"},
        "jh_certificate = 'manual' needs jh_certificate_file",
    ),
    "public proxy behind nginx": (
        {"jh_domain": "hub.example.org", "jh_public_ip": "0.0.0.0"},
        "jh_public_ip must stay on loopback",
    ),
    "bad domain": ({"jh_domain": "Hub Server"}, "jh_domain: must be a DNS name"),
    "unknown certificate mode": (
        {"jh_domain": "hub.example.org", "jh_certificate": "acme"},
        "jh_certificate: Input should be 'letsencrypt', 'manual' or 'selfsigned'",
    ),
    "kernel with two definitions": (
        {"jh_kernels": [{"name": "k", "display_name": "K", "packages": "minimal", "environment": "teaching.yml"}]},
        "jh_kernels[0]: give either packages (a venv) or environment (a conda environment file)",
    ),
    "unknown environment file": (
        {"jh_kernels": [{"name": "k", "display_name": "K", "environment": "../x.yml"}]},
        "jh_kernels[0][environment]: '../x.yml' is not an environment file of files/kernels/ (a file name ending in .yml, no /); choose one of teaching.yml",
    ),
    "unknown server python": (
        {"jh_server_python": "3.12"},
        "jh_server_python: Input should be 'auto', 'system' or 'conda'",
    ),
    "bad installer checksum": (
        {"jh_conda_installer_sha256": "abc"},
        "jh_conda_installer_sha256: String should match pattern '^[0-9a-f]{64}$'",
    ),
    "no conda channels": ({"jh_conda_channels": []}, "jh_conda_channels: List should have at least 1 item"),
    "conda inside the install root": (
        {"jh_conda_prefix": "/opt/jupyter/conda"},
        "jh_conda_prefix must be outside jh_install_root",
    ),
    "bad channel alias": (
        {"jh_conda_channel_alias": "mirror.example.org"},
        "jh_conda_channel_alias: Input should be a valid URL",
    ),
    "command without notifier": (
        {"jh_notify_command": "/usr/local/bin/page-admin"},
        "jh_notify_command needs jh_notify_on_failure = True",
    ),
}


@pytest.mark.parametrize("data, message", BAD.values(), ids=BAD.keys())
def test_bad_input_is_refused_with_the_settings_name(data, message):
    with pytest.raises(SettingsError) as error:
        Settings.from_data(data)
    assert message in str(error.value)
    assert "no host was changed" in str(error.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(SettingsError) as error:
        Settings.from_data({"jh_idle_timeout": "1", "jh_hub_user": "Hub"})
    assert "jh_idle_timeout" in str(error.value) and "jh_hub_user" in str(error.value)


def test_offline_installer_must_match_the_pinned_checksum(tmp_path):
    installer = tmp_path / "Miniforge3-Linux-x86_64.sh"
    installer.write_bytes(b"not the pinned installer\n")
    with pytest.raises(SettingsError) as error:
        Settings.from_data({"jh_conda_installer_file": str(installer)})
    assert f"jh_conda_installer_file {installer} has sha256" in str(error.value)
    assert "give the installer that matches the pinned checksum" in str(error.value)
    pinned = hashlib.sha256(installer.read_bytes()).hexdigest()
    settings = Settings.from_data({"jh_conda_installer_file": str(installer), "jh_conda_installer_sha256": pinned})
    assert settings.conda_installer_file == installer


def test_server_release_may_be_a_folder_on_the_controller(tmp_path):
    (tmp_path / "requirements.in").write_text("jupyterhub==6.1.1\n")
    assert Settings.from_data({"jh_server_release": str(tmp_path)}).server_release_dir == tmp_path


def test_lab_settings_merge_over_the_deploys_defaults():
    settings = Settings.from_data(
        {"jh_lab_settings": {"@jupyterlab/apputils-extension:notification": {"checkForUpdates": True}}}
    )
    assert settings.lab_overrides["@jupyterlab/apputils-extension:notification"] == {
        "fetchNews": "false",
        "checkForUpdates": True,
    }
