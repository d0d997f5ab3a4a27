"""The usage report (tasks.status.report): a period's figures from Prometheus on the hub server
(jh_monitoring), as one HTML page per host with its plots drawn as inline SVG (no script, nothing
fetched) and, under each plot, the table of its figures.

Prometheus answers range queries (files/bin/prometheus-report, run as root on the hub through a fact:
its ports are root's and prometheus's alone); everything else happens here on the controller: the
sums per group of jh_groups (a person in two groups counts in both, a person in none under
"(no group)"), the figures per UTC day, the drawing. Nothing on the host changes.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pyinfra.api import FactBase

from tasks import layout
from tasks.ops import SCRIPTS, TEMPLATES, command
from tasks.report_svg import draw

DAY = 86400
NO_GROUP = "(no group)"
# The most points a plot over time keeps (Prometheus's step follows from it), and its least step:
# the hub's metrics are read every 15 s, the users' servers' every 30 s.
POINTS = 1000
LEAST_STEP = 30
GIB = 2**30
# File systems worth a figure (as the DiskAlmostFull alert reads them), each host's (a cluster's nodes too).
DISKS = 'job="node",fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs"'
# Sampled through the period, every step.
OVER_TIME = {
    "running_servers": 'max(jupyterhub_running_servers{job="jupyterhub"})',
    "memory": 'sum by (user) (jupyterhub_user_memory_bytes{job="node"})',
    "disk_used": f"max by (host, mountpoint) (node_filesystem_size_bytes{{{DISKS}}} - node_filesystem_avail_bytes{{{DISKS}}})",
    "disk_size": f"max by (host, mountpoint) (node_filesystem_size_bytes{{{DISKS}}})",
}
# Over each UTC day, evaluated at its end (today's end is ahead: its figures so far).
SPAWNS = 'jupyterhub_server_spawn_duration_seconds_bucket{job="jupyterhub",status="success"}'
PER_DAY = {
    # The hub counts who was active in the last 24 h (hourly): its last count of the day.
    "active_users": 'max(last_over_time(jupyterhub_active_users{job="jupyterhub",period="24h"}[1d]))',
    "oom_kills": 'sum by (user) (increase(jupyterhub_user_oom_kills_total{job="node"}[1d]))',
    "cpu_seconds": 'sum by (user) (increase(jupyterhub_user_cpu_seconds_total{job="node"}[1d]))',
    # The kernel's peak where it keeps one (Linux 5.19 and later), else the most read every 30 s.
    "memory_peak": 'max by (user) (max_over_time(jupyterhub_user_memory_peak_bytes{job="node"}[1d])'
    ' or max_over_time(jupyterhub_user_memory_bytes{job="node"}[1d]))',
    "spawns": 'sum by (status) (increase(jupyterhub_server_spawn_duration_seconds_count{job="jupyterhub"}[1d]))',
    "spawn_median": f"histogram_quantile(0.5, sum by (le) (increase({SPAWNS}[1d])))",
    "spawn_p95": f"histogram_quantile(0.95, sum by (le) (increase({SPAWNS}[1d])))",
}


class ReportError(Exception):
    """Prometheus could not give the report's figures."""


@dataclass(frozen=True)
class Period:
    """The days a report covers, in UTC, up to now (today the last)."""

    days: int
    now: float

    @property
    def first(self) -> date:
        return datetime.fromtimestamp(self.now, UTC).date() - timedelta(days=self.days - 1)

    @property
    def start(self) -> int:
        return int(datetime.combine(self.first, datetime.min.time(), UTC).timestamp())

    @property
    def dates(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range(self.days)]

    @property
    def step(self) -> int:
        return max(LEAST_STEP, math.ceil((self.now - self.start) / POINTS))

    def day_of(self, time: float) -> date:
        return datetime.fromtimestamp(time, UTC).date()

    def queries(self) -> list[str]:
        """files/bin/prometheus-report's arguments after the port: NAME START END STEP QUERY, each."""
        arguments = []
        for name, query in OVER_TIME.items():
            arguments += [name, str(self.start), str(int(self.now)), str(self.step), query]
        for name, query in PER_DAY.items():
            arguments += [name, str(self.start + DAY), str(self.start + self.days * DAY), str(DAY), query]
        return arguments


class PrometheusAnswers(FactBase):
    """Prometheus's answers to a period's queries (files/bin/prometheus-report), by name."""

    def command(self, days: int, now: int) -> str:
        args = command(layout.PROMETHEUS_PORT, *Period(days, now).queries())
        return f"sh -s {args} <<'REPORT'\n{(SCRIPTS / 'prometheus-report').read_text()}REPORT"

    def process(self, output):
        return json.loads("\n".join(output))


Series = dict[str, list[tuple[float, float]]]


def series(answers: dict, name: str, *labels: str) -> Series:
    """One answer as {its labels' values (or name): [(time, value)]}, values that are no number left out."""
    answer = answers.get(name)
    if not isinstance(answer, dict) or answer.get("status") != "success":
        if isinstance(answer, dict) and answer.get("status") == "unreachable":
            raise ReportError("Prometheus on the hub server does not answer (systemctl status prometheus)")
        why = answer.get("error", answer.get("status")) if isinstance(answer, dict) else "no answer"
        raise ReportError(f"Prometheus gave no {name}: {why}")
    found: Series = {}
    for result in answer["data"]["result"]:
        key = " ".join(result["metric"].get(label, "") for label in labels) if labels else name
        points = [(float(time), float(value)) for time, value in result["values"]]
        points = [(time, value) for time, value in points if math.isfinite(value)]
        if points:
            found.setdefault(key, []).extend(points)
    return found


def groups_of(groups: dict[str, list[str]]) -> dict[str, list[str]]:
    """Each person's groups (from jh_groups), sorted."""
    memberships: dict[str, list[str]] = defaultdict(list)
    for group, members in sorted(groups.items()):
        for member in members:
            memberships[member].append(group)
    return memberships


def per_group(by_user: Series, groups: dict[str, list[str]]) -> Series:
    """Users' series summed per group, time by time: a person in two groups counts in both, one in
    none under NO_GROUP."""
    memberships = groups_of(groups)
    sums: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for user, points in by_user.items():
        for group in memberships.get(user) or [NO_GROUP]:
            for time, value in points:
                sums[group][time] += value
    return {group: sorted(points.items()) for group, points in sorted(sums.items())}


def by_day(period: Period, points: list[tuple[float, float]], how=max) -> dict[date, float]:
    """Points of one series as one figure per UTC day (how: max, sum, ...). A per-day answer's points
    are evaluated at their day's end (midnight after it): a second earlier is the day itself."""
    days: dict[date, list[float]] = defaultdict(list)
    for time, value in points:
        days[period.day_of(time)].append(value)
    return {day: how(values) for day, values in days.items() if period.first <= day}


def daily(period: Period, points: list[tuple[float, float]]) -> dict[date, float]:
    """A per-day answer (evaluated at each day's end) as {day: value}."""
    return by_day(period, [(time - 1, value) for time, value in points])


@dataclass
class Plot:
    """A plot and the table of its figures. kind: "bars" (one per day and series) or "lines" (over time);
    series: {name: {x: value}}, x a day for bars and a time in seconds for lines."""

    key: str
    title: str
    unit: str
    kind: str
    series: dict[str, dict]
    columns: list[str]
    rows: list[list[str]]
    note: str = ""
    shapes: dict = field(default_factory=dict)


def figure(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}"


def usage(answers: dict, period: Period, groups: dict[str, list[str]]) -> dict:
    """What the page shows, from Prometheus's answers: its plots and the tables of people and groups."""
    dates = period.dates
    active = {day: v for points in series(answers, "active_users").values() for day, v in daily(period, points).items()}
    peaks = {user: daily(period, points) for user, points in series(answers, "memory_peak", "user").items()}
    with_server = {day: count for day in dates if (count := sum(day in days for days in peaks.values()))}
    servers = series(answers, "running_servers").get("running_servers", [])
    servers_daily = by_day(period, servers)
    spawns = {status: daily(period, p) for status, p in series(answers, "spawns", "status").items()}
    medians = {d: v for p in series(answers, "spawn_median").values() for d, v in daily(period, p).items()}
    p95 = {d: v for p in series(answers, "spawn_p95").values() for d, v in daily(period, p).items()}
    memory = per_group(series(answers, "memory", "user"), groups)
    memory_daily = {group: by_day(period, points) for group, points in memory.items()}
    cpu_users = {user: daily(period, points) for user, points in series(answers, "cpu_seconds", "user").items()}
    oom_users = {user: daily(period, points) for user, points in series(answers, "oom_kills", "user").items()}
    # Every group of someone whose server ran has its column, at 0 where nobody in it had a figure.
    present = {
        group for user in {*peaks, *cpu_users, *oom_users} for group in groups_of(groups).get(user) or [NO_GROUP]
    }
    cpu = per_day_per_group(cpu_users, groups, 1 / 3600, present)
    oom = per_day_per_group(oom_users, groups, 1, present, whole=True)
    used = series(answers, "disk_used", "host", "mountpoint")
    sizes = series(answers, "disk_size", "host", "mountpoint")
    size_at = {mount: dict(points) for mount, points in sizes.items()}
    disk = {
        mount: [(time, 100 * value / size) for time, value in points if (size := size_at.get(mount, {}).get(time))]
        for mount, points in sorted(used.items())
    }

    def each_day(cells) -> list[list[str]]:
        """A table's rows: a day, then the figures cells(day) gives."""
        return [[day.isoformat(), *cells(day)] for day in dates]

    plots = [
        Plot(
            "active-users",
            "Active users per day",
            "people",
            "bars",
            {"active users": active, "with a server": with_server},
            ["day", "active users", "with a server"],
            each_day(lambda day: [figure(active.get(day)), str(with_server.get(day, 0))]),
            "Active: logged in or used the hub within the day (the hub counts them hourly). With a server: "
            "people whose server ran that day.",
        ),
        Plot(
            "running-servers",
            "Servers running",
            "servers",
            "lines",
            {"servers": dict(servers)},
            ["day", "most servers running at once"],
            each_day(lambda day: [figure(servers_daily.get(day))]),
        ),
        Plot(
            "spawn-times",
            "Spawn times per day",
            "seconds",
            "bars",
            {"median": medians, "95th percentile": p95},
            ["day", "servers started", "failed to start", "median (s)", "95th percentile (s)"],
            each_day(
                lambda day: [
                    figure(spawns.get("success", {}).get(day)),
                    figure(spawns.get("failure", {}).get(day)),
                    figure(medians.get(day), 1),
                    figure(p95.get(day), 1),
                ]
            ),
            "From the hub's histogram of spawn times: a median between its buckets is interpolated.",
        ),
        Plot(
            "memory-per-group",
            "Memory of the servers per group",
            "GiB",
            "lines",
            {group: {time: value / GIB for time, value in points} for group, points in memory.items()},
            ["day", *memory],
            each_day(lambda day: [figure(most.get(day, 0) / GIB, 2) for most in memory_daily.values()]),
            "Each group's servers together, the most at once each day (GiB).",
        ),
        Plot(
            "cpu-per-group",
            "CPU time per group per day",
            "CPU hours",
            "bars",
            cpu,
            ["day", *cpu],
            each_day(lambda day: [figure(days.get(day, 0), 2) for days in cpu.values()]),
        ),
        Plot(
            "oom-kills",
            "Processes killed for memory (OOM) per group per day",
            "kills",
            "bars",
            oom,
            ["day", *oom],
            each_day(lambda day: [figure(days.get(day, 0)) for days in oom.values()]),
            "A kernel that outgrew its server's memory limit, killed by the kernel's OOM killer.",
        ),
        Plot(
            "disk",
            "Disk used",
            "%",
            "lines",
            {mount: dict(points) for mount, points in disk.items()},
            ["file system", "size (GiB)", "used now (GiB)", "used now (%)", "most used (%)"],
            [
                [
                    mount,
                    figure(sizes[mount][-1][1] / GIB, 1),
                    figure(used[mount][-1][1] / GIB, 1),
                    figure(points[-1][1], 1),
                    figure(max(value for _, value in points), 1),
                ]
                for mount, points in disk.items()
                if points
            ],
        ),
    ]
    return {"plots": plots, **people_and_groups(peaks, cpu_users, oom_users, groups)}


def per_day_per_group(by_user: dict[str, dict[date, float]], groups, scale: float, present=(), *, whole=False) -> dict:
    """Users' per-day figures summed per group and day (scaled; counters' extrapolation rounded away);
    the present groups listed even without a figure."""
    memberships = groups_of(groups)
    sums: dict[str, dict[date, float]] = {group: defaultdict(float) for group in present}
    for user, days in by_user.items():
        for group in memberships.get(user) or [NO_GROUP]:
            for day, value in days.items():
                sums.setdefault(group, defaultdict(float))[day] += round(value) if whole else value * scale
    return {group: dict(days) for group, days in sorted(sums.items())}


def people_and_groups(peaks, cpu_users, oom_users, groups) -> dict:
    """The tables of people (each who had a server in the period) and of groups."""
    memberships = groups_of(groups)
    people = []
    for user in sorted(set(peaks) | set(cpu_users) | set(oom_users)):
        people.append(
            {
                "user": user,
                "groups": ", ".join(memberships.get(user) or [NO_GROUP]),
                "days": len(peaks.get(user, {})),
                "peak": max(peaks.get(user, {}).values(), default=0) / GIB,
                "cpu_hours": sum(cpu_users.get(user, {}).values()) / 3600,
                "oom_kills": sum(round(v) for v in oom_users.get(user, {}).values()),
            }
        )
    totals: dict[str, dict] = {}
    for person in people:
        for group in memberships.get(person["user"]) or [NO_GROUP]:
            total = totals.setdefault(group, {"group": group, "people": 0, "cpu_hours": 0.0, "oom_kills": 0})
            total["people"] += 1
            total["cpu_hours"] += person["cpu_hours"]
            total["oom_kills"] += person["oom_kills"]
    return {"people": people, "groups": [totals[name] for name in sorted(totals)]}


def render_page(host_name: str, period: Period, content: dict) -> str:
    """The report as an HTML page (templates/usage-report.html.j2)."""
    for plot in content["plots"]:
        plot.shapes = draw(plot, period)
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=StrictUndefined,
    )
    made = datetime.fromtimestamp(period.now, UTC)
    return environment.get_template("usage-report.html.j2").render(
        host=host_name,
        first=period.first,
        last=period.dates[-1],
        days=period.days,
        made=f"{made:%Y-%m-%d %H:%M} UTC",
        no_group=NO_GROUP,
        **content,
    )


def page_name(host_name: str, period: Period) -> str:
    """<host>-<first day>-<last day>.html, the host's name kept to characters safe in a file's name."""
    safe = re.sub(r"[^A-Za-z0-9._@-]", "_", host_name).lstrip(".")
    return f"{safe}-{period.first}-{period.dates[-1]}.html"


def write_page(folder: Path, name: str, text: str) -> Path:
    """The page in a folder only its owner enters, readable by its owner alone: it names people."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    path = folder / name
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as page:
        os.fchmod(page.fileno(), 0o600)
        page.write(text)
    return path
