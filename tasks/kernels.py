"""Kernel environments, their registration, and the shared NLTK data.

Each kernel is an environment of its own under <install root>/kernels/<name>, owned
by root (users compute in it but cannot change it): a venv of the server's base
Python built from a pinned lock, or a conda environment from an environment file,
each remade only when its definition changes. Its kernel
spec is written to <install root>/share/jupyter/kernels/<name>, which the hub puts
first on the single-user servers' JUPYTER_PATH: a kernel named python3 replaces the
server venv's own default kernel, and rebuilding the server venv keeps every kernel.
"""

from __future__ import annotations

import json
from io import StringIO

from pyinfra.api import deploy
from pyinfra.operations import files, server

from tasks import conda
from tasks.locks import await_venv, lock_for, venv_from_lock
from tasks.ops import command, root_directory, root_file
from tasks.platform import Platform, target_platform
from tasks.settings import KERNEL_SETS, Kernel, Settings, current_settings
from tasks.snapshot import Managed, children, prefetch


def kernel_spec(settings: Settings, kernel: Kernel) -> str:
    python = settings.layout.kernels_dir / kernel.name / "bin" / "python"
    spec = {
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": kernel.display_name,
        "language": "python",
        "metadata": {"debugger": True},
    }
    return json.dumps(spec, indent=1) + "\n"


def install_unit(kernel: Kernel) -> str:
    return f"jupyterhub-install-kernel-{kernel.name}.service"


def start(settings: Settings, platform: Platform) -> None:
    """The venv kernels whose lock changed start installing, beside the rest of the deploy: nothing
    else needs them, and they are most of a first deploy's downloads. `finish` waits for them."""
    root_directory(f"Kernel environments {settings.layout.kernels_dir}", settings.layout.kernels_dir)
    for kernel in settings.kernels:
        if kernel.conda:
            continue
        env = settings.layout.kernels_dir / kernel.name
        if "conda-meta" in children(env, kind="d"):
            # Was a conda kernel: the venv is made afresh (conda does the same the other way).
            files.directory(name=f"Kernel {kernel.name}: remove its conda environment", path=str(env), present=False)
        lock = lock_for(KERNEL_SETS / kernel.packages, platform, f"kernel {kernel.name}")
        venv_from_lock(f"Kernel {kernel.name}", settings, platform, env, lock, background=install_unit(kernel))


def finish(settings: Settings, platform: Platform) -> None:
    """The end of each install `start` started (the run fails, showing its journal, if one failed)."""
    for kernel in settings.kernels:
        if not kernel.conda:
            lock = lock_for(KERNEL_SETS / kernel.packages, platform, f"kernel {kernel.name}")
            await_venv(
                f"Kernel {kernel.name}", settings, settings.layout.kernels_dir / kernel.name, lock, install_unit(kernel)
            )


def kernel_env(settings: Settings, kernel: Kernel) -> None:
    """A conda kernel's environment (a venv kernel's is started by `start`), and the kernel's spec."""
    env = settings.layout.kernels_dir / kernel.name
    if kernel.conda:
        conda.environment(settings, f"Kernel {kernel.name}", env, KERNEL_SETS / kernel.environment)
    root_file(
        f"Kernel {kernel.name}: spec ({kernel.display_name})",
        StringIO(kernel_spec(settings, kernel)),
        settings.layout.jupyter_data_dir / "kernels" / kernel.name / "kernel.json",
    )


def remove_dropped_kernels(settings: Settings) -> None:
    wanted = {k.name for k in settings.kernels}
    specs = settings.layout.jupyter_data_dir / "kernels"
    for name in children(specs, kind="d"):
        if name in wanted:
            continue
        files.directory(name=f"Unregister kernel {name}", path=str(specs / name), present=False)
        if not settings.keep_removed_kernel_envs:
            files.directory(
                name=f"Remove the environment of kernel {name}",
                path=str(settings.layout.kernels_dir / name),
                present=False,
            )


def nltk_data(settings: Settings) -> None:
    root_directory(f"Shared NLTK data {settings.layout.nltk_data}", settings.layout.nltk_data)
    # Packages are directories below a category (corpora/, tokenizers/, ...).
    prefetch(deep=[settings.layout.nltk_data])
    present = {
        name
        for category in children(settings.layout.nltk_data, "d")
        for name in children(settings.layout.nltk_data / category, "d")
    }
    missing = [p for p in settings.nltk_packages if p not in present]
    if missing:
        paths = settings.layout
        server.shell(
            name=f"NLTK data: {', '.join(missing)}",
            commands=[
                command(
                    paths.venv / "bin" / "hubside-nltk-fetch",
                    settings.nltk_index_url,
                    paths.nltk_data,
                    *missing,
                )
            ],
        )


def managed_paths(settings: Settings, platform: Platform) -> Managed:
    """The kernel environments and their specs; the NLTK data two levels down."""
    paths, names = settings.layout, [kernel.name for kernel in settings.kernels]
    specs = paths.jupyter_data_dir / "kernels"
    return Managed(
        hashed=(specs, *(specs / name for name in names), paths.kernels_dir, *(paths.kernels_dir / n for n in names)),
        deep=(paths.nltk_data,),
    )


def apply(settings: Settings, platform: Platform) -> None:
    """After `start`: conda kernels, every kernel's spec, dropped kernels, the NLTK data."""
    for kernel in settings.kernels:
        kernel_env(settings, kernel)
    remove_dropped_kernels(settings)
    nltk_data(settings)


@deploy("Update the kernel environments")
def update() -> None:
    """Only the kernels (and conda, if they need it); the server and the hub keep running.

        pyinfra inventory.py tasks.kernels.update

    Each kernel whose definition (lock or environment file) changed is brought to
    it; the others are left as they are.
    """
    settings = current_settings()
    platform = target_platform(settings)
    conda.apply(settings, platform)
    start(settings, platform)
    apply(settings, platform)
    finish(settings, platform)
