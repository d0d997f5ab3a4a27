"""A class of 50 arrives at once on a real Ubuntu 24.04 hub: everyone logs in at nearly the same
moment, starts their server, opens JupyterLab and runs code. Nobody fails, and people are served
in the order they came (hubside.admission). The figures it prints are this run's; the bench
(make bench-class) measures them against baselines."""

from __future__ import annotations

import pytest

from tests import harness
from tests.e2e.arrivals import class_arrives, summary
from tests.e2e.conftest import plain_hub, run_pyinfra, write_inventory

CLASS = {f"student{n:02d}": f"student{n:02d}-password" for n in range(1, 51)}


@pytest.fixture(scope="module")
def classroom(start, workdir):
    host = start("noble", "jhd-test-class")
    users = [
        *host.data["jh_users"],
        *({"name": n, "password_hash": harness.password_hash(p)} for n, p in CLASS.items()),
    ]
    settings = plain_hub(host, jh_users=users, jh_user_memory_limit="512M", jh_user_cpu_limit=1)
    result = run_pyinfra(write_inventory(workdir / "class.py", [(host.name, settings)]))
    assert result.returncode == 0, result.stderr[-6000:]
    return host


def memory_mib(host, pattern: str) -> int:
    """The memory in use now of the units matching pattern, together."""
    out = host.sh(f"systemctl show -p MemoryCurrent --value '{pattern}' 2>/dev/null || true")
    return sum(int(v) for v in out.split() if v.isdigit()) // 1024**2


def test_fifty_people_at_once_are_all_served_first_come_first_served(classroom, capsys):
    arrivals = class_arrives(f"http://{classroom.address}:8000", CLASS)
    figures = summary(arrivals)
    figures["memory of the hub (MiB)"] = memory_mib(classroom, "jupyterhub.service")
    figures["memory of the proxy (MiB)"] = memory_mib(classroom, "jupyterhub-proxy.service")
    figures["memory of the servers (MiB)"] = memory_mib(classroom, "jupyter-singleuser@*.service")
    shown = ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())
    with capsys.disabled():
        print(f"\n[class] {len(CLASS)} at once: {shown}")
    failed = {a.name: a.error for a in arrivals if a.error}
    assert failed == {}, failed
    # First come, first served: the first ten had their answer before any of the last ten.
    first, last = arrivals[:10], arrivals[-10:]
    assert max(a.result for a in first) < min(a.result for a in last), [(a.name, a.waited) for a in arrivals]
    # The waiting were told their place, and never an error.
    told = [a for a in arrivals if any("ahead of you" in m for m in a.messages)]
    assert told and all(a.order > 0 for a in told)
