"""The usage report (tasks.status.report): Prometheus's answers summed per group and per UTC day, the
page rendered from a canned answer and from an empty one, the script that asks Prometheus, and the
page's mode."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, date, datetime
from html.parser import HTMLParser

import pytest

from tasks.ops import SCRIPTS
from tasks.report import (
    DAY,
    GIB,
    NO_GROUP,
    OVER_TIME,
    PER_DAY,
    Period,
    ReportError,
    daily,
    page_name,
    per_day_per_group,
    per_group,
    render_page,
    usage,
    write_page,
)
from tasks.report_svg import nice_top

# 2026-12-06 15:00 UTC; the period: 12-04, 12-05, 12-06.
NOW = int(datetime(2026, 12, 6, 15, 0, tzinfo=UTC).timestamp())
PERIOD = Period(3, NOW)
START = PERIOD.start
GROUPS = {"ml-2026": ["alice", "bob"], "stats": ["alice"]}


def matrix(label: str | None, series: dict[str, list[tuple[float, float | str]]]) -> dict:
    """A query_range answer as Prometheus gives it: each series' values as [time, "value"] (a key of
    "host mountpoint" gives both labels)."""
    result = [
        {"metric": labels(label, key), "values": [[time, str(value)] for time, value in points]}
        for key, points in series.items()
    ]
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


def labels(label: str | None, key: str) -> dict:
    if label == "mountpoint":
        host, mountpoint = key.split(" ")
        return {"host": host, "mountpoint": mountpoint}
    return {label: key} if label else {}


def day_end(day: int) -> int:
    """Where a per-day answer evaluates day (0: the period's first)."""
    return START + (day + 1) * DAY


def canned() -> dict:
    """Three days: alice (two groups) and carol (none) had servers, alice's kernels were killed
    three times on the last day, bob never started one."""
    hours = [START + DAY + hour * 3600 for hour in range(8, 12)] + [NOW - 600, NOW - 300]
    return {
        "running_servers": matrix(None, {"": [(t, 2) for t in hours]}),
        "memory": matrix(
            "user",
            {"alice": [(t, 1 * GIB) for t in hours], "carol": [(t, GIB / 2) for t in hours[:2]]},
        ),
        "disk_used": matrix("mountpoint", {"hub /": [(t, 45 * GIB) for t in hours]}),
        "disk_size": matrix("mountpoint", {"hub /": [(t, 50 * GIB) for t in hours]}),
        "active_users": matrix(None, {"": [(day_end(1), 3), (day_end(2), 2)]}),
        "oom_kills": matrix("user", {"alice": [(day_end(1), 0), (day_end(2), 3.08)]}),
        "cpu_seconds": matrix("user", {"alice": [(day_end(2), 7200)], "carol": [(day_end(1), 1800)]}),
        "memory_peak": matrix(
            "user", {"alice": [(day_end(1), GIB), (day_end(2), 2 * GIB)], "carol": [(day_end(1), GIB)]}
        ),
        "spawns": matrix("status", {"success": [(day_end(1), 4), (day_end(2), 2)], "failure": [(day_end(2), 1)]}),
        "spawn_median": matrix(None, {"": [(day_end(1), 6.5), (day_end(2), "NaN")]}),
        "spawn_p95": matrix(None, {"": [(day_end(1), 19.0)]}),
    }


def empty() -> dict:
    return {name: matrix(None, {}) for name in [*OVER_TIME, *PER_DAY]}


class Page(HTMLParser):
    """What a test reads of the page: each plot's points, each table's rows."""

    def __init__(self, text: str):
        super().__init__()
        self.points: list[dict] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.plot = self.table = None
        self.cell: list[str] | None = None
        self.text = text
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "data-plot" in attributes:
            self.plot = attributes["data-plot"]
        if tag in ("rect", "circle") and "data-value" in attributes:
            self.points.append({"plot": self.plot, **attributes})
        if tag == "table":
            self.table = attributes["data-table"]
            self.tables[self.table] = []
        if tag == "tr" and self.table:
            self.tables[self.table].append([])
        if tag in ("td", "th"):
            self.cell = []

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.tables[self.table][-1].append("".join(self.cell).strip())
            self.cell = None
        if tag == "table":
            self.table = None

    def rows(self, table: str) -> list[list[str]]:
        return self.tables[table][1:]

    def point(self, plot: str, series: str, **where) -> str:
        [found] = [
            p
            for p in self.points
            if p["plot"] == plot and p["data-series"] == series and all(p[f"data-{k}"] == v for k, v in where.items())
        ]
        return found["data-value"]


def test_the_period_is_whole_utc_days_up_to_now():
    assert PERIOD.dates == [date(2026, 12, 4), date(2026, 12, 5), date(2026, 12, 6)]
    assert datetime.fromtimestamp(START, UTC) == datetime(2026, 12, 4, tzinfo=UTC)
    arguments = PERIOD.queries()
    assert len(arguments) == 5 * (len(OVER_TIME) + len(PER_DAY))
    over_time = arguments[: 5 * len(OVER_TIME)]
    assert over_time[1:4] == [str(START), str(NOW), str(PERIOD.step)] and PERIOD.step >= 30
    per_day = arguments[5 * len(OVER_TIME) :]
    # Evaluated at each day's end, [1d] before it: the last is today's so far.
    assert per_day[1:4] == [str(START + DAY), str(START + 3 * DAY), str(DAY)]
    assert Period(366, NOW).step * 1000 >= 366 * DAY - DAY


def test_a_per_day_answer_belongs_to_the_day_before_its_midnight():
    assert daily(PERIOD, [(day_end(0), 1), (day_end(2), 5)]) == {date(2026, 12, 4): 1, date(2026, 12, 6): 5}


def test_a_person_in_two_groups_counts_in_both_and_one_in_none_under_no_group():
    memory = per_group({"alice": [(1, 10), (2, 20)], "carol": [(1, 1)], "bob": [(2, 5)]}, GROUPS)
    assert memory == {"ml-2026": [(1, 10), (2, 25)], "stats": [(1, 10), (2, 20)], NO_GROUP: [(1, 1)]}
    kills = per_day_per_group(
        {"alice": {date(2026, 12, 6): 2.9}, "carol": {date(2026, 12, 5): 1.1}}, GROUPS, 1, whole=True
    )
    assert kills == {
        "ml-2026": {date(2026, 12, 6): 3},
        "stats": {date(2026, 12, 6): 3},
        NO_GROUP: {date(2026, 12, 5): 1},
    }


def test_the_page_shows_each_figure_in_its_plot_and_its_table():
    page = Page(render_page("hub-1.example.org", PERIOD, usage(canned(), PERIOD, GROUPS)))
    assert "<script" not in page.text and "http" not in page.text.replace("http-equiv", "")
    assert page.point("active-users", "active users", day="2026-12-05") == "3"
    assert page.point("active-users", "with a server", day="2026-12-05") == "2"
    assert page.rows("active-users") == [["2026-12-04", "–", "0"], ["2026-12-05", "3", "2"], ["2026-12-06", "2", "1"]]
    # alice's three kills count in both her groups; extrapolation's fraction rounded away.
    assert page.point("oom-kills", "ml-2026", day="2026-12-06") == "3"
    assert page.point("oom-kills", "stats", day="2026-12-06") == "3"
    assert page.rows("oom-kills")[2] == ["2026-12-06", "0", "3", "3"]
    assert page.tables["oom-kills"][0] == ["day", NO_GROUP, "ml-2026", "stats"]
    assert page.rows("cpu-per-group")[1:] == [
        ["2026-12-05", "0.50", "0.00", "0.00"],
        ["2026-12-06", "0.00", "2.00", "2.00"],
    ]
    assert page.rows("spawn-times")[1:] == [["2026-12-05", "4", "–", "6.5", "19.0"], ["2026-12-06", "2", "1", "–", "–"]]
    assert page.rows("running-servers")[1] == ["2026-12-05", "2"]
    assert page.rows("memory-per-group")[1] == ["2026-12-05", "0.50", "1.00", "1.00"]
    assert page.rows("disk") == [["hub /", "50.0", "45.0", "90.0", "90.0"]]
    assert {p["data-value"] for p in page.points if p["plot"] == "disk"} == {"90.0"}
    assert page.rows("people") == [
        ["alice", "ml-2026, stats", "2", "2.00", "2.00", "3"],
        ["carol", NO_GROUP, "1", "1.00", "0.50", "0"],
    ]
    assert page.rows("groups") == [
        [NO_GROUP, "1", "0.50", "0"],
        ["ml-2026", "1", "2.00", "3"],
        ["stats", "1", "2.00", "3"],
    ]
    assert "No data in this period" not in page.text


def test_names_on_the_page_are_escaped():
    answers = canned()
    answers["disk_used"] = matrix("mountpoint", {"hub /mnt/<b>": [(NOW - 300, GIB)]})
    answers["disk_size"] = matrix("mountpoint", {"hub /mnt/<b>": [(NOW - 300, 2 * GIB)]})
    text = render_page("hub", PERIOD, usage(answers, PERIOD, GROUPS))
    assert "/mnt/<b>" not in text and "/mnt/&lt;b&gt;" in text


def test_a_period_without_data_says_so_in_every_plot():
    page = Page(render_page("hub", PERIOD, usage(empty(), PERIOD, {})))
    assert page.text.count("No data in this period.") == 7
    assert page.points == []
    assert page.rows("people") == [["Nobody's server ran in this period."]]
    assert page.rows("active-users")[0] == ["2026-12-04", "–", "0"]


def test_prometheus_without_an_answer_gives_no_report():
    answers = empty()
    answers["memory"] = {"status": "unreachable"}
    with pytest.raises(ReportError, match="Prometheus on the hub server does not answer"):
        usage(answers, PERIOD, {})


def test_the_y_axis_ends_on_a_round_figure():
    assert [nice_top(v) for v in (0, 0.3, 1, 3, 7, 12, 99, 101)] == [1, 0.5, 1, 5, 10, 20, 100, 200]


def test_the_page_is_its_owner_s_alone(tmp_path):
    folder = tmp_path / "reports"
    path = write_page(folder, "hub-2026-12-04-2026-12-06.html", "<p>alice</p>")
    assert oct(folder.stat().st_mode & 0o777) == "0o700" and oct(path.stat().st_mode & 0o777) == "0o600"
    path.chmod(0o644)
    write_page(folder, path.name, "<p>again</p>")
    assert oct(path.stat().st_mode & 0o777) == "0o600" and path.read_text() == "<p>again</p>"


def test_the_page_is_named_after_its_host_and_days():
    assert page_name("hub-1.example.org", PERIOD) == "hub-1.example.org-2026-12-04-2026-12-06.html"
    assert page_name("../x/y", PERIOD) == "_x_y-2026-12-04-2026-12-06.html"


def run_script(tmp_path, *args: str, curl: str) -> subprocess.CompletedProcess:
    """files/bin/prometheus-report with a curl that answers as given (its arguments: args.log)."""
    (tmp_path / "curl").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/args.log\n{curl}\n')
    (tmp_path / "curl").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    return subprocess.run(
        ["sh", SCRIPTS / "prometheus-report", *args], capture_output=True, text=True, env=env, check=False
    )


def test_the_script_gives_prometheus_s_answers_by_name(tmp_path):
    answer = json.dumps(matrix(None, {"": [(1, 2)]}))
    query = 'max(jupyterhub_running_servers{job="jupyterhub"})'
    result = run_script(
        tmp_path, "9090", "servers", "10", "20", "5", query, "x", "1", "2", "3", "up", curl=f"echo '{answer}'"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"servers": json.loads(answer), "x": json.loads(answer)}
    first = (tmp_path / "args.log").read_text().splitlines()[0]
    assert "http://127.0.0.1:9090/api/v1/query_range" in first and f"query={query}" in first
    assert "start=10" in first and "end=20" in first and "step=5" in first


def test_the_script_says_when_prometheus_does_not_answer_and_refuses_bad_input(tmp_path):
    result = run_script(tmp_path, "9090", "servers", "10", "20", "5", "up", curl="exit 7")
    assert json.loads(result.stdout) == {"servers": {"status": "unreachable"}}
    assert run_script(tmp_path, "9090", 'a"b', "1", "2", "3", "up", curl="true").returncode == 2
    assert run_script(tmp_path, "90;90", curl="true").returncode == 2
    assert run_script(tmp_path, "9090", "servers", "1", "2", curl="true").returncode == 2
