"""`make bench-cluster`: the cluster deploy's fan-out, as ratios measured in one run.

    python -m tests.bench.cluster [--keep]

On Ubuntu 24.04 containers it starts itself: two clusters, a hub with 1 node and a hub with
8 nodes (no kernels but the server venv's, each cluster's /home one folder of this machine):

  cold       hub + 1 node, and hub + 8 nodes (one run each)
  no-op      a re-run of hub + 8 nodes ÷ a re-run of hub + 1 node (medians of five, interleaved)

The machine is shared and noisy: compare ratios, not seconds.
"""

from __future__ import annotations

import json
import statistics
from concurrent.futures import ThreadPoolExecutor

from tests import harness
from tests.bench.run import PYINFRA, SUITE, WORKDIR, finish_bench, log, start_bench, timed

SETTINGS = {
    "jh_kernels": [],
    "jh_extra_ca_certificates": harness.controller_ca_certificates(),
    "jh_cluster": True,
    "jh_firewall": True,
    "jh_spawn_profiles": [{"key": "small", "display": "Cluster: 1 CPU, 1 GB", "where": "cluster", "memory": "1G"}],
}


def inventory(name: str, hub: harness.Target, nodes: list[harness.Target]):
    def data(target: harness.Target) -> dict:
        return {**target.inventory_data(), **SETTINGS, "jh_cluster_address": target.address}

    path = WORKDIR / f"cluster-{name}.py"
    hubs = [(hub.name, data(hub))]
    listed = [(node.name, data(node)) for node in nodes]
    path.write_text(
        "import json\n"
        f"hubs = [tuple(h) for h in json.loads({json.dumps(json.dumps(hubs))})]\n"
        f"nodes = [tuple(h) for h in json.loads({json.dumps(json.dumps(listed))})]\n"
    )
    return path


def main(argv: list[str] | None = None) -> None:
    args, engine = start_bench(argv, __doc__)
    clusters = {"one": 1, "eight": 8}
    names = {
        size: [f"jhd-bench-{size}-hub"] + [f"jhd-bench-{size}-node{i}" for i in range(1, n + 1)]
        for size, n in clusters.items()
    }
    log(f"starting {sum(len(n) for n in names.values())} {SUITE} containers")

    def boot(size: str, name: str) -> harness.Target:
        home = WORKDIR / f"cluster-{size}-home"
        home.mkdir(exist_ok=True)
        return harness.start_target(engine.client, SUITE, name, WORKDIR, volumes={str(home): "/home"})

    with ThreadPoolExecutor(4) as pool:
        targets = {size: list(pool.map(lambda name, s=size: boot(s, name), listed)) for size, listed in names.items()}
    one = inventory("one", targets["one"][0], targets["one"][1:])
    eight = inventory("eight", targets["eight"][0], targets["eight"][1:])
    figures: dict[str, float] = {}
    try:
        log("cold: hub + 1 node, then hub + 8 nodes")
        figures["cold deploy, hub + 1 node (s)"] = timed([*PYINFRA, str(one), "deploy.py"])
        figures["cold deploy, hub + 8 nodes (s)"] = timed([*PYINFRA, str(eight), "deploy.py"])
        figures["cold 8 / 1"] = figures["cold deploy, hub + 8 nodes (s)"] / figures["cold deploy, hub + 1 node (s)"]
        log("no-op re-runs, hub + 1 node and hub + 8 nodes, five of each, interleaved")
        times: dict[str, list[float]] = {"one": [], "eight": []}
        for _ in range(5):
            times["one"].append(timed([*PYINFRA, str(one), "deploy.py"]))
            times["eight"].append(timed([*PYINFRA, str(eight), "deploy.py"]))
        figures["no-op, hub + 1 node (s)"] = statistics.median(times["one"])
        figures["no-op, hub + 8 nodes (s)"] = statistics.median(times["eight"])
        figures["no-op 8 / 1 (goal <= 2)"] = figures["no-op, hub + 8 nodes (s)"] / figures["no-op, hub + 1 node (s)"]
    finally:
        everyone = [name for listed in names.values() for name in listed]
        finish_bench("make bench-cluster", figures, engine, everyone, args.keep)


if __name__ == "__main__":
    main()
