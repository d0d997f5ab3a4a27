"""`make bench`: the deploy's speed as ratios against baselines measured in the same run.

    python -m tests.bench.run [--keep]

On fresh Ubuntu 24.04 containers it starts itself (systemd, sshd, reached over SSH), with
the hub stack alone (jh_kernels = [], no web front), as the speed issue states it:

  cold      deploy ÷ tests/bench/handwritten.sh (floor, deploy, deploy, floor)
  no-op     a re-run ÷ `pyinfra INVENTORY exec -- true` (a one-command pyinfra run)
  --dry     a --dry run ÷ the no-op re-run
  fan-out   a no-op re-run on 8 targets ÷ on 1; a cold deploy on 4 targets ÷ on 1
  commands  SSH commands of a no-op re-run (facts and operations, from pyinfra --debug)
  seed      a cold deploy of the seed's defaults (the teaching kernel too), in seconds, and the
            hand-written script installing the same (the teaching kernel's venv too)
  upgrade   JupyterHub 5 to 6 with a kernel: how long the hub's API did not answer (polled on the
            target every 20 ms), and the upgrade's steps from its journal
  disk      sizes of the server venv and a kernel venv, and of two server venvs side by side

Timings are medians of three (no-op, --dry and the one-command run: five, interleaved)
where a step is cheap to repeat. The machine is shared
and noisy: compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests import harness

REPO = harness.REPO
SUITE = "noble"
WORKDIR = Path("/tmp/jhd-bench")
SETTINGS = {"jh_kernels": [], "jh_extra_ca_certificates": harness.controller_ca_certificates()}
PYINFRA = [sys.executable, "-m", "pyinfra", "-y"]
# The seed's default kernel (jh_kernels' default), which SETTINGS leaves out.
KERNELS = {"jh_kernels": [{"name": "python3", "display_name": "Python 3", "packages": "teaching"}]}


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def timed(command: list[str], **kwargs) -> float:
    start = time.monotonic()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, **kwargs)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return elapsed


def inventory(name: str, targets: list[harness.Target], settings: dict | None = None) -> Path:
    hosts = [(t.name, {**t.inventory_data(), **SETTINGS, **(settings or {})}) for t in targets]
    path = WORKDIR / f"inventory-{name}.py"
    path.write_text(f"import json\nhubs = [tuple(h) for h in json.loads({json.dumps(json.dumps(hosts))})]\n")
    return path


def ssh_options(target: harness.Target) -> list[str]:
    known = ["-o", f"UserKnownHostsFile={target.known_hosts}", "-o", "StrictHostKeyChecking=accept-new"]
    return ["-i", target.ssh_key, *known]


def ssh(target: harness.Target) -> list[str]:
    return ["ssh", *ssh_options(target)]


def handwritten(target: harness.Target, kernel: bool = False) -> float:
    """Upload the locks and run tests/bench/handwritten.sh over SSH: the floor (with the teaching
    kernel: the seed's defaults)."""
    lock = REPO / "files" / "server" / "jupyterhub-6" / "py3.12.txt"
    kernel_lock = REPO / "files" / "kernels" / "teaching" / "py3.12.txt"
    node = REPO / "files" / "proxy" / "node-requirements.txt"
    proxy = [REPO / "files" / "proxy" / "package.json", REPO / "files" / "proxy" / "package-lock.json"]
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    cas = harness.controller_ca_certificates()
    scp = ["scp", "-q", *ssh_options(target)]
    remote = f"root@{target.address}"
    script = REPO / "tests" / "bench" / "handwritten.sh"
    start = time.monotonic()
    # The controller's CAs as the deploy's jh_extra_ca_certificates would install them.
    timed([*ssh(target), remote, "mkdir -p /root/bench/proxy /usr/local/share/ca-certificates/bench"])
    timed([*scp, str(script), str(lock), str(node), f"{remote}:/root/bench/"])
    if kernel:
        timed([*scp, str(kernel_lock), f"{remote}:/root/bench/kernel.txt"])
    timed([*scp, *map(str, proxy), f"{remote}:/root/bench/proxy/"])
    timed([*scp, *cas, f"{remote}:/usr/local/share/ca-certificates/bench/"])
    run = f"update-ca-certificates >/dev/null && cd /root/bench && bash handwritten.sh {lock.name} {node.name} proxy {bundle} {'kernel.txt' if kernel else ''}"
    timed([*ssh(target), remote, run])
    return time.monotonic() - start


# Polls the hub's health on the target until /tmp/bench-stop-poll exists; prints the longest time
# from an answer to the next answer after a failure.
POLLER = """
import os, time, urllib.request
longest, last = 0.0, time.monotonic()
while not os.path.exists("/tmp/bench-stop-poll"):
    try:
        urllib.request.urlopen("http://127.0.0.1:8000/hub/health", timeout=2).read()
        now = time.monotonic()
        longest, last = max(longest, now - last), now
    except OSError:
        pass
    time.sleep(0.02)
print(longest)
"""


def outage_during(target: harness.Target, command: list[str]) -> tuple[float, str]:
    """The longest time the hub's API did not answer while ``command`` ran, and the upgrade's steps."""
    remote = f"root@{target.address}"
    timed([*ssh(target), remote, "rm -f /tmp/bench-stop-poll"])
    poller = subprocess.Popen(
        [*ssh(target), remote, "python3", "-c", shlex.quote(POLLER)], stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(1)
        timed(command)
    finally:
        timed([*ssh(target), remote, "touch /tmp/bench-stop-poll"])
    longest = float(poller.communicate(timeout=30)[0])
    steps = subprocess.run(
        [*ssh(target), remote, "journalctl -t jupyterhub-upgrade -o cat -n 1 --no-pager"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return longest, steps


def median_of(count: int, command: list[str]) -> float:
    return statistics.median(timed(command) for _ in range(count))


def ssh_commands(inventory_path: Path) -> int:
    """Commands a no-op re-run sends: facts plus operations' commands."""
    result = subprocess.run(
        [*PYINFRA, "--debug", str(inventory_path), "deploy.py"], cwd=REPO, capture_output=True, text=True
    )
    return result.stderr.count("Running command on")


def sizes(target: harness.Target, paths: str) -> str:
    """Each path's size alone, then all together (files hard-linked between them counted once)."""
    du = f"for path in {paths}; do du -sh $path; done; du -sch {paths} | tail -n 1"
    return subprocess.run(
        [*ssh(target), f"root@{target.address}", du], capture_output=True, text=True, check=True
    ).stdout


def start_bench(argv: list[str] | None, doc: str | None) -> tuple[argparse.Namespace, harness.Engine]:
    """The command line (--keep) and the Docker engine, with the suite's image ready."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="leave the containers running")
    args = parser.parse_args(argv)
    WORKDIR.mkdir(exist_ok=True)
    engine = harness.Engine()
    harness.ensure_images(engine.client, [SUITE])
    return args, engine


def finish_bench(command: str, figures: dict, engine: harness.Engine, names: list[str], keep: bool) -> None:
    """Print the figures (JSON, then a line each) and remove the containers unless kept."""
    print(json.dumps({"command": command, "suite": SUITE, "figures": figures}, indent=1, ensure_ascii=False))
    for key, value in figures.items():
        print(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")
    if not keep:
        for name in names:
            harness.remove_container(engine.client, name)
        engine.stop_idle_private_engine()


def main(argv: list[str] | None = None) -> None:
    args, engine = start_bench(argv, __doc__)
    names = [f"jhd-bench-floor{i}" for i in (1, 2)] + [f"jhd-bench-{i}" for i in range(1, 9)]
    names += ["jhd-bench-disk", "jhd-bench-seed", "jhd-bench-seedfloor"]
    log(f"starting {len(names)} {SUITE} containers")
    with ThreadPoolExecutor(4) as pool:
        targets = dict(
            zip(names, pool.map(lambda n: harness.start_target(engine.client, SUITE, n, WORKDIR), names), strict=True)
        )
    floor1, floor2 = targets["jhd-bench-floor1"], targets["jhd-bench-floor2"]
    hubs = [targets[f"jhd-bench-{i}"] for i in range(1, 9)]
    one = inventory("one", hubs[:1])
    figures: dict[str, float | int | str] = {}
    try:
        log("cold: floor, deploy, deploy, floor")
        floors = [handwritten(floor1)]
        deploys = [timed([*PYINFRA, str(one), "deploy.py"])]
        deploys.append(timed([*PYINFRA, str(inventory("two", hubs[1:2])), "deploy.py"]))
        floors.append(handwritten(floor2))
        figures["cold handwritten script (s)"] = statistics.mean(floors)
        figures["cold deploy (s)"] = statistics.mean(deploys)
        figures["cold ratio (goal <= 1.0)"] = statistics.mean(deploys) / statistics.mean(floors)

        log("seed: a cold deploy of the seed's defaults (the teaching kernel too), and its floor")
        seed = inventory("seed", [targets["jhd-bench-seed"]], KERNELS)
        figures["cold deploy of the seed's defaults (s, goal < 30)"] = timed([*PYINFRA, str(seed), "deploy.py"])
        figures["its hand-written script (s)"] = handwritten(targets["jhd-bench-seedfloor"], kernel=True)

        log("no-op and --dry on one target, against `exec -- true`")
        # Interleaved, five of each: the machine's load drifts between runs.
        runs = {"floor": [*PYINFRA, str(one), "exec", "--", "true"], "noop": [*PYINFRA, str(one), "deploy.py"]}
        runs["dry"] = [*PYINFRA, "--dry", str(one), "deploy.py"]
        times = {name: [] for name in runs}
        for _ in range(5):
            for name, command in runs.items():
                times[name].append(timed(command))
        floor, noop, dry = (statistics.median(times[name]) for name in ("floor", "noop", "dry"))
        figures["one-command run (s)"] = floor
        figures["no-op re-run (s)"] = noop
        figures["no-op ratio (goal <= 3)"] = noop / floor
        figures["--dry (s)"] = dry
        figures["--dry / no-op (goal <= 1)"] = dry / noop
        figures["SSH commands of a no-op re-run"] = ssh_commands(one)

        log("fan-out: cold on 4 targets at once, then 8 no-op")
        cold4 = timed([*PYINFRA, str(inventory("four", hubs[2:6])), "deploy.py"])
        figures["cold deploy, 4 targets (s)"] = cold4
        figures["cold 4 / 1 (goal <= 2.5)"] = cold4 / statistics.mean(deploys)
        timed([*PYINFRA, str(inventory("last", hubs[6:8])), "deploy.py"])
        eight = inventory("eight", hubs)
        noop8 = median_of(3, [*PYINFRA, str(eight), "deploy.py"])
        noop1 = median_of(3, [*PYINFRA, str(one), "deploy.py"])
        figures["no-op, 8 targets (s)"] = noop8
        figures["no-op 8 / 1 (goal <= 2)"] = noop8 / noop1

        log("upgrade and disk: JupyterHub 5 with a kernel, upgraded to 6: two server venvs side by side")
        disk = targets["jhd-bench-disk"]
        timed(
            [*PYINFRA, str(inventory("older", [disk], {**KERNELS, "jh_server_release": "jupyterhub-5"})), "deploy.py"]
        )
        outage, steps = outage_during(disk, [*PYINFRA, str(inventory("newer", [disk], KERNELS)), "deploy.py"])
        figures["upgrade: the hub's API unavailable (s, goal <= 3)"] = outage
        figures["upgrade: its steps"] = steps
        figures["disk"] = sizes(disk, "/opt/jupyter/envs/* /opt/jupyter/kernels/python3")
    finally:
        finish_bench("make bench", figures, engine, names, args.keep)


if __name__ == "__main__":
    main()
