"""The local demo target (`make demo`), and the harness's command line:

    python -m tests.harness demo up [--suite SUITE]   boot the demo container, write .demo/inventory.py
    python -m tests.harness demo info                 how to reach the hub and log in
    python -m tests.harness demo down                 remove it (and the dockerd it started)
    python -m tests.harness images SUITE...           build target images ahead of time
    python -m tests.harness engine-stop               stop the private Docker engine once idle

`demo up` writes the demo's own pyinfra inventory, plain data that imports nothing,
so that the deploy runs on it like on any server: pyinfra -y .demo/inventory.py deploy.py
"""

from __future__ import annotations

import argparse
import os

from tests.harness.containers import (
    Target,
    controller_ca_certificates,
    password_hash,
    remove_container,
    start_target,
)
from tests.harness.engine import Engine
from tests.harness.images import REPO, SUITES, ensure_images, log

DEMO_DIR = REPO / ".demo"
DEMO_INVENTORY = DEMO_DIR / "inventory.py"
DEMO_NAME = "jhd-demo"
DEMO_LOGIN = ("demo", "demo")
DEMO_PORT = 8443


def demo_host(target: Target, login_hash: str) -> tuple[str, dict]:
    """The demo target as an inventory entry (the `demo` group of .demo/inventory.py)."""
    user, _ = DEMO_LOGIN
    return target.name, {
        **target.inventory_data(),
        # nginx with a self-signed certificate; Docker publishes 443 on 127.0.0.1:8443.
        "jh_domain": "localhost",
        "jh_certificate": "selfsigned",
        "jh_users": [{"name": user, "password_hash": login_hash}],
        "jh_admin_users": [user],
        "jh_extra_ca_certificates": controller_ca_certificates(),
    }


def write_demo_inventory(host: tuple[str, dict]) -> None:
    """.demo/inventory.py: the group `demo` holding this one host, as Python literals (no imports)."""
    name, data = host
    entries = "".join(f"            {key!r}: {value!r},\n" for key, value in data.items())
    text = (
        '"""The local demo container: written by `make demo`, removed by `make demo-down`. Do not edit."""\n\n'
        f"demo = [\n    (\n        {name!r},\n        {{\n{entries}        }},\n    ),\n]\n"
    )
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    partial = DEMO_INVENTORY.with_suffix(".partial")
    partial.write_text(text)
    os.replace(partial, DEMO_INVENTORY)


def demo_up(suite: str) -> Target:
    engine = Engine()
    ensure_images(engine.client, [suite])
    target = start_target(
        engine.client,
        suite,
        DEMO_NAME,
        DEMO_DIR,
        ports={"443/tcp": ("127.0.0.1", DEMO_PORT)},
    )
    write_demo_inventory(demo_host(target, password_hash(DEMO_LOGIN[1])))
    return target


def demo_down() -> None:
    engine = Engine()
    remove_container(engine.client, DEMO_NAME)
    DEMO_INVENTORY.unlink(missing_ok=True)
    # Left by versions that kept the demo's state in JSON for the admin's inventory.py.
    (DEMO_DIR / "target.json").unlink(missing_ok=True)
    engine.stop_idle_private_engine()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.harness",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="the local demo target")
    demo.add_argument("action", choices=["up", "down", "info"])
    demo.add_argument("--suite", default="noble", choices=sorted(SUITES))
    images = sub.add_parser("images", help="build target images ahead of time")
    images.add_argument("suites", nargs="+", choices=sorted(SUITES))
    sub.add_parser("engine-stop", help="stop the private Docker engine an earlier command started, if idle")
    args = parser.parse_args(argv)
    if args.command == "images":
        ensure_images(Engine().client, args.suites)
    elif args.command == "engine-stop":
        Engine().stop_idle_private_engine()
    elif args.action == "up":
        target = demo_up(args.suite)
        log(f"demo target {target.name} ({target.suite}) at {target.address}; inventory: {DEMO_INVENTORY}")
    elif args.action == "info":
        user, password = DEMO_LOGIN
        print(
            f"\nJupyterHub demo: open https://localhost:{DEMO_PORT}/ (a self-signed certificate: accept it)"
            f" and log in as {user} / {password}"
        )
        print("Remove it with: make demo-down\n")
    else:
        demo_down()
