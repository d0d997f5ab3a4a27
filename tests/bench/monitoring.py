"""`make bench-monitoring`: what jh_monitoring adds, against the same deploy without it, in the same run.

    python -m tests.bench.monitoring [--keep]

On four fresh Ubuntu 24.04 containers, cold deploys of the hub stack with 50 people listed, without
and with monitoring, in ABBA order (the machine's load drifts); then on a monitored hub a class of
50 arriving at once (the default start slots): the memory of Prometheus, Alertmanager and the node
exporter after the deploy and after the class, and the series Prometheus holds.

The machine is shared and noisy: compare ratios, not seconds.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

from tests import harness
from tests.bench.class_arrives import ADMIN, HUB, PEOPLE, memory_mib
from tests.bench.run import PYINFRA, SETTINGS, WORKDIR, finish_bench, inventory, log, start_bench, timed
from tests.e2e.arrivals import class_arrives, summary

CLASS = dict(list(PEOPLE.items())[:50])
# Alerts go where nothing listens: the bench measures, nobody is paged.
MONITORING = {"jh_monitoring": {"webhook_url": "http://127.0.0.1:9/alerts"}}
DAEMONS = ("prometheus.service", "prometheus-alertmanager.service", "prometheus-node-exporter.service")


def series(container) -> int:
    query = "http://127.0.0.1:9090/api/v1/query?query=prometheus_tsdb_head_series"
    answer = json.loads(container.exec_run(["curl", "-s", query]).output)
    return int(float(answer["data"]["result"][0]["value"][1]))


def daemons_memory(container) -> str:
    return ", ".join(str(memory_mib(container, unit)) for unit in DAEMONS)


def main(argv: list[str] | None = None) -> None:
    args, engine = start_bench(argv, __doc__)
    names = [f"jhd-bench-monitoring{i}" for i in range(1, 5)]
    log(f"starting {len(names)} containers")
    targets = [harness.start_target(engine.client, "noble", name, WORKDIR) for name in names]
    everyone = {ADMIN[0]: ADMIN[1], **CLASS}
    users = [{"name": n, "password_hash": harness.password_hash(p)} for n, p in everyone.items()]
    common = {**SETTINGS, **HUB, "jh_users": users}
    figures: dict = {}
    try:
        plain, monitored = [], []
        for target, settings, times in (
            (targets[0], common, plain),
            (targets[1], {**common, **MONITORING}, monitored),
            (targets[2], {**common, **MONITORING}, monitored),
            (targets[3], common, plain),
        ):
            log(f"cold deploy of {target.name}{' with monitoring' if times is monitored else ''}")
            times.append(timed([*PYINFRA, str(inventory(target.name, [target], settings)), "deploy.py"]))
        figures["cold deploy (s)"] = statistics.mean(plain)
        figures["cold deploy with monitoring (s)"] = statistics.mean(monitored)
        figures["with / without"] = statistics.mean(monitored) / statistics.mean(plain)

        hub = targets[1]
        container = engine.client.containers.get(hub.container_id)
        figures["memory after the deploy: Prometheus, Alertmanager, node exporter (MiB)"] = daemons_memory(container)
        log("a class of 50 arriving at the monitored hub")
        result = summary(class_arrives(f"http://{hub.address}:8000", CLASS, timeout=900))
        figures["the class: failures"] = result.get("failures")
        # Two scrapes and the deploy's metrics of everyone's running server.
        time.sleep(60)
        figures["memory with 50 servers: Prometheus, Alertmanager, node exporter (MiB)"] = daemons_memory(container)
        figures["memory with 50 servers: hub, proxy, servers (MiB)"] = ", ".join(
            str(memory_mib(container, unit))
            for unit in ("jupyterhub.service", "jupyterhub-proxy.service", "jupyter-singleuser@*.service")
        )
        figures["series in Prometheus"] = series(container)
    finally:
        command = " ".join(["python -m tests.bench.monitoring", *(sys.argv[1:] if argv is None else argv)])
        finish_bench(command, figures, engine, names, args.keep)


if __name__ == "__main__":
    main()
