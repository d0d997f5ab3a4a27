"""`make bench-class`: a class arriving at once, against baselines measured in the same run.

    python -m tests.bench.class_arrives [--keep] [--runs N] [--sizes 50,100]

On one fresh Ubuntu 24.04 container (the hub stack, a minimal kernel, 100 listed people, each
server held to 1 CPU and 512M), it measures:

  alone       one person: login to the first result of their code (the median of three)
  all at once each class size with every server starting at the same time (jh_start_slots = the
              class size: the deploy's behaviour before the admission queue), once
  in turn     each class size with the deploy's default slots, --runs times
  figures     failures; the wait from login to first result: median, 95th percentile, slowest;
              median ÷ slowest; slowest ÷ the CPU floor (size × alone ÷ cores); memory of the hub,
              the proxy and all servers with everyone's kernel running

The machine is shared and noisy: compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from tests import harness
from tests.bench.run import PYINFRA, SETTINGS, SUITE, WORKDIR, finish_bench, inventory, log, timed
from tests.e2e.arrivals import class_arrives, summary
from tests.e2e.hub_client import HubClient

PEOPLE = {f"student{n:03d}": f"student{n:03d}-password" for n in range(1, 101)}
ADMIN = ("teacher", "teacher-password")
HUB = {
    "jh_public_ip": "0.0.0.0",
    "jh_allow_public_http": True,
    "jh_nltk_packages": [],
    "jh_kernels": [{"name": "python3", "display_name": "Python 3", "packages": "minimal"}],
    "jh_idle_timeout": 3600,
    "jh_user_memory_limit": "512M",
    "jh_user_cpu_limit": 1,
    "jh_admin_users": [ADMIN[0]],
}


def memory_mib(container, pattern: str) -> int:
    out = container.exec_run(["systemctl", "show", "-p", "MemoryCurrent", "--value", pattern]).output.decode()
    return sum(int(v) for v in out.split() if v.isdigit()) // 1024**2


def stop_everyone(base_url: str) -> None:
    """The admin stops every server through the API, and waits until the hub has none."""
    admin = HubClient(base_url)
    if admin.login(*ADMIN).status_code != 302:
        raise SystemExit(f"{ADMIN[0]} cannot log in")
    token = admin.create_token()
    session, headers = admin.session, {"Authorization": f"token {token}"}
    for user in session.get(f"{base_url}/hub/api/users", headers=headers).json():
        if user["servers"]:
            session.delete(f"{base_url}/hub/api/users/{user['name']}/server", headers=headers)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        users = session.get(f"{base_url}/hub/api/users", headers=headers).json()
        if not any(u["servers"] for u in users):
            return
        time.sleep(2)
    raise SystemExit("servers still running 5 minutes after they were stopped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="leave the container running")
    parser.add_argument("--runs", type=int, default=3, help="runs in turn per class size")
    parser.add_argument("--sizes", default="50,100", help="class sizes, comma-separated (at most 100)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    WORKDIR.mkdir(exist_ok=True)
    engine = harness.Engine()
    harness.ensure_images(engine.client, [SUITE])
    name = "jhd-bench-class"
    target = harness.start_target(engine.client, SUITE, name, WORKDIR)
    base_url = f"http://{target.address}:8000"
    everyone = {ADMIN[0]: ADMIN[1], **PEOPLE}
    users = [{"name": n, "password_hash": harness.password_hash(p)} for n, p in everyone.items()]
    container = engine.client.containers.get(target.container_id)
    cores = int(container.exec_run(["nproc"]).output.decode().strip())
    figures: dict = {"cores": cores}

    def deploy(label: str, **settings) -> None:
        log(f"deploy: {label}")
        timed(
            [*PYINFRA, str(inventory(label, [target], {**SETTINGS, **HUB, "jh_users": users, **settings})), "deploy.py"]
        )

    def burst(label: str, size: int) -> dict:
        people = dict(list(PEOPLE.items())[:size])
        log(f"{label}: {size} people at once")
        arrivals = class_arrives(base_url, people, timeout=900)
        result = summary(arrivals)
        result["memory: hub, proxy, servers (MiB)"] = ", ".join(
            str(memory_mib(container, unit))
            for unit in ("jupyterhub.service", "jupyterhub-proxy.service", "jupyter-singleuser@*.service")
        )
        errors = sorted({a.error for a in arrivals if a.error})
        if errors:
            result["errors"] = errors[:5]
        stop_everyone(base_url)
        return result

    try:
        deploy("class-in-turn")
        alone = []
        for _ in range(3):
            single = class_arrives(base_url, dict(list(PEOPLE.items())[:1]))
            alone.append(single[0].waited or float("nan"))
            stop_everyone(base_url)
        figures["alone (s)"] = statistics.median(alone)
        for size in sizes:
            floor = size * figures["alone (s)"] / cores
            figures[f"{size}: CPU floor (s)"] = floor
            runs = [burst(f"in turn, run {run + 1}", size) for run in range(args.runs)]
            for run, result in enumerate(runs, 1):
                figures[f"{size} in turn, run {run}"] = result
                if "slowest (s)" in result:
                    result["slowest / CPU floor"] = result["slowest (s)"] / floor
            deploy(f"class-at-once-{size}", jh_start_slots=size)
            result = burst("all at once", size)
            if "slowest (s)" in result:
                result["slowest / CPU floor"] = result["slowest (s)"] / floor
            figures[f"{size} all at once"] = result
            deploy("class-in-turn-again")
    finally:
        command = " ".join(["python -m tests.bench.class_arrives", *(sys.argv[1:] if argv is None else argv)])
        finish_bench(command, figures, engine, [name], args.keep)


if __name__ == "__main__":
    main()
