"""The conda commands the deploy runs, as far as they can be checked without a channel."""

from pathlib import PurePosixPath

from tasks import conda
from tasks.settings import Settings

INSTALLER = PurePosixPath("/var/cache/jupyterhub-deploy/conda-installer.sh")


def test_condarc_names_channels_mirror_and_the_system_trust_store():
    settings = Settings.from_data({"jh_conda_channels": ["conda-forge", "bioconda"],
                                   "jh_conda_channel_alias": "https://mirror.example.org/conda"})
    assert conda.condarc(settings).splitlines()[1:] == [
        "channels:", "  - conda-forge", "  - bioconda",
        "channel_alias: https://mirror.example.org/conda",
        "ssl_verify: /etc/ssl/certs/ca-certificates.crt",
        "always_yes: true", "auto_update_conda: false", "notify_outdated_conda: false",
    ]
    assert "channel_alias" not in conda.condarc(Settings.from_data({}))


def test_installer_runs_unattended_and_updates_an_existing_installation():
    settings = Settings.from_data({})
    command = conda.install_command(settings, INSTALLER)
    assert command.startswith("if [ -x /opt/miniconda3/bin/conda ]; then update=-u; else update=; fi && ")
    assert f"bash {INSTALLER} -b $update -p /opt/miniconda3 && " in command
    # The stamp that says which installer made the installation is written only after it succeeded.
    assert command.endswith(f"echo {settings.conda_installer_sha256} > /opt/miniconda3/.installed-installer-sha256"
                            f" && rm -f {INSTALLER}")


def test_environment_is_created_once_then_updated_with_prune():
    settings = Settings.from_data({"jh_pip_index_url": "https://mirror.example.org/simple"})
    command = conda.env_command(settings, PurePosixPath("/opt/jupyter/kernels/python3"), "python3.yml")
    pip = "PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_INDEX_URL=https://mirror.example.org/simple"
    assert command == (
        "if [ -d /opt/jupyter/kernels/python3/conda-meta ]; then "
        f"{pip} /opt/miniconda3/bin/conda env update --prefix /opt/jupyter/kernels/python3 --file python3.yml --prune; "
        f"else rm -rf /opt/jupyter/kernels/python3 && {pip} /opt/miniconda3/bin/conda env create "
        "--prefix /opt/jupyter/kernels/python3 --file python3.yml; fi"
    )
