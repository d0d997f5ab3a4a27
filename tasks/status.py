"""Print each host's state: services, versions, certificate expiry, disk use, user servers; or write
a usage report of a period from Prometheus's data (jh_monitoring; tasks/report.py).

    pyinfra inventory.py tasks.status.show
    pyinfra inventory.py tasks.status.report [--data jh_report_days=7] [--data jh_report_dir=reports]

Each reads only (a fact running files/bin/hub-status, or files/bin/prometheus-report); neither changes
the host, with or without --dry. The report is written on the controller, in both cases:
jh_report_dir/<host>-<first day>-<last day>.html.
"""

from __future__ import annotations

import time

from pyinfra import host
from pyinfra.api import FactBase, deploy

from tasks import layout
from tasks.ops import SCRIPTS, command
from tasks.report import Period, PrometheusAnswers, ReportError, page_name, render_page, usage, write_page
from tasks.settings import current_settings


class HubStatus(FactBase):
    """files/bin/hub-status's "key: value" lines, as an ordered dict."""

    def command(self, venv: str, kernels: str, install_root: str) -> str:
        args = command(venv, kernels, install_root, layout.NGINX_SITE, *layout.SERVICES, "nginx.service")
        return f"sh -s {args} <<'STATUS'\n{(SCRIPTS / 'hub-status').read_text()}STATUS"

    def process(self, output):
        return dict(line.split(": ", 1) if ": " in line else (line, "") for line in output)


@deploy("Hub status")
def show() -> None:
    paths = current_settings().layout
    status = host.get_fact(
        HubStatus, venv=str(paths.venv), kernels=str(paths.kernels_dir), install_root=str(paths.install_root)
    )
    width = max(map(len, status), default=0) + 1
    lines = [f"  {key + ':':<{width}} {value}" for key, value in status.items()]
    print(f"--> {host.name}\n" + "\n".join(lines), flush=True)


@deploy("Usage report")
def report() -> None:
    settings = current_settings()
    if settings.monitoring is None:
        print(f"--> {host.name}: no report: monitoring is off here (jh_monitoring)", flush=True)
        return
    period = Period(settings.report_days, int(time.time()))
    answers = host.get_fact(PrometheusAnswers, days=period.days, now=int(period.now))
    try:
        content = usage(answers, period, settings.groups)
    except ReportError as error:
        print(f"--> {host.name}: no report: {error}", flush=True)
        return
    path = write_page(settings.report_dir, page_name(host.name, period), render_page(host.name, period, content))
    print(f"--> {host.name}: {path} ({period.days} days, readable by you alone: it names people)", flush=True)
