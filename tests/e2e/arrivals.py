"""A class arriving at once, as its people would: each logs in through the form, starts their
server, follows the progress page's event stream, opens JupyterLab as the browser does after the
redirect, and runs code in a kernel. Used by tests/e2e/test_class_arrives.py (asserts) and
tests/bench/class_arrives.py (figures)."""

from __future__ import annotations

import json
import statistics
import threading
import time
from dataclasses import dataclass, field

from tests.e2e.hub_client import HubClient


@dataclass
class Arrival:
    name: str
    order: int
    asked: float = 0.0  # when they submitted the login form (time.monotonic)
    ready: float | None = None  # when the progress page said the server is ready
    result: float | None = None  # when their code printed its answer
    error: str | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def waited(self) -> float | None:
        return None if self.result is None else self.result - self.asked


def progress(user: HubClient, timeout: float) -> list[dict]:
    """The progress page's events (the same stream its script reads) until ready or failed."""
    url = user._url(f"/hub/api/users/{user.user}/server/progress")
    headers = {"Authorization": f"token {user.token}", "Accept": "text/event-stream"}
    events = []
    with user.session.get(url, headers=headers, stream=True, verify=user.verify, timeout=timeout) as response:
        response.raise_for_status()
        for line in response.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                event = json.loads(line[5:])
                events.append(event)
                if event.get("ready") or event.get("failed"):
                    break
    return events


def arrive(base_url: str, person: Arrival, password: str, at: float, timeout: float, verify) -> None:
    """One person's arrival at `at` (time.monotonic); fills in person, never raises."""
    time.sleep(max(0.0, at - time.monotonic()))
    user = HubClient(base_url, verify=verify)
    person.asked = time.monotonic()
    try:
        response = user.login(person.name, password)
        if response.status_code != 302:
            raise AssertionError(f"login: {response.status_code}")
        user.create_token()
        response = user.api("POST", f"/hub/api/users/{person.name}/server")
        if response.status_code not in (201, 202):
            raise AssertionError(f"spawn: {response.status_code} {response.text[:200]}")
        events = progress(user, timeout)
        person.messages = [e.get("message", "") for e in events]
        if not events or not events[-1].get("ready"):
            raise AssertionError(f"progress ended without ready: {events[-1:]}")
        person.ready = time.monotonic()
        # Where the progress page sends the browser: JupyterLab, through the proxy's route.
        page = user.get(f"/user/{person.name}/lab")
        if page.status_code != 200 or "jupyter" not in page.text.lower():
            raise AssertionError(f"/user/{person.name}/lab right after ready: {page.status_code}")
        answer = user.run_code("print(6 * 7)", timeout=timeout)
        if answer.strip() != "42":
            raise AssertionError(f"the kernel printed {answer!r}")
        person.result = time.monotonic()
    except Exception as error:  # noqa: BLE001 - each person's failure is a finding, reported
        person.error = f"{type(error).__name__}: {error}"


def class_arrives(
    base_url: str, people: dict[str, str], spacing: float = 0.05, timeout: float = 600, verify=True
) -> list[Arrival]:
    """Everyone in `people` (name -> password) logs in, `spacing` seconds apart in dict order."""
    arrivals = [Arrival(name, order) for order, name in enumerate(people)]
    start = time.monotonic() + 1
    threads = [
        threading.Thread(
            target=arrive, args=(base_url, a, people[a.name], start + a.order * spacing, timeout, verify), daemon=True
        )
        for a in arrivals
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return arrivals


def summary(arrivals: list[Arrival]) -> dict:
    """Failures, and the wait from login to first result: median, 95th percentile, slowest."""
    waits = sorted(a.waited for a in arrivals if a.waited is not None)
    figures: dict = {"people": len(arrivals), "failures": sum(1 for a in arrivals if a.error)}
    if waits:
        figures["median (s)"] = statistics.median(waits)
        figures["p95 (s)"] = waits[min(len(waits) - 1, round(0.95 * (len(waits) - 1)))]
        figures["slowest (s)"] = waits[-1]
        figures["median / slowest"] = figures["median (s)"] / waits[-1]
    return figures
