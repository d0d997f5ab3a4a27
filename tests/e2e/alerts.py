"""Alerts as the tests see them: Alertmanager's webhook posts to a receiver run by the test, Prometheus's
API on the hub, waits for alerts, refused connections (test_operations, test_cluster)."""

from __future__ import annotations

import http.server
import json
import shlex
import threading
import time

from tests.pebble import PORT_OFFSET

WEBHOOK_PORT = 9700 + PORT_OFFSET


class Webhook:
    """Alertmanager's webhook posts, as the test's receiver got them."""

    def __init__(self, address: str, port: int = WEBHOOK_PORT):
        self.posts: list[dict] = []
        posts = self.posts

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((address, port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://{address}:{port}/alerts"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def alerts(self, status: str, since: int = 0) -> list[dict]:
        """The alerts in this status, from the posts since the since-th on."""
        return [alert for post in self.posts[since:] for alert in post["alerts"] if alert["status"] == status]

    def wait_for(self, status: str, names: set[str], host, seconds: float = 300) -> dict[str, dict]:
        """The alerts of these names in this status, each as first received; fails after seconds."""
        deadline = time.monotonic() + seconds
        while True:
            found = {a["labels"]["alertname"]: a for a in self.alerts(status) if a["labels"]["alertname"] in names}
            if set(found) == names:
                return found
            if time.monotonic() > deadline:
                rules = host.sh(
                    "curl -s 127.0.0.1:9090/api/v1/alerts; cat /var/lib/jupyterhub-metrics/jupyterhub.prom;"
                    " curl -s '127.0.0.1:9090/api/v1/query?query=jupyterhub_user_oom_kills_total[15m]';"
                    " systemctl status 'jupyter-singleuser@*' --no-pager",
                    check=False,
                )
                raise AssertionError(f"{status} {names - set(found)} not received: {self.posts}\n{rules}")
            time.sleep(2)


def prometheus(cluster, path: str, **params) -> dict:
    """Prometheus's API on the hub, asked as root (its port is root's and prometheus' alone)."""
    query = " ".join(f"--data-urlencode {shlex.quote(f'{key}={value}')}" for key, value in params.items())
    return json.loads(cluster.hub.sh(f"curl -s --get {query} 127.0.0.1:9090/api/v1/{path}"))["data"]


def refused(host, url: str, user: str | None = None) -> bool:
    """curl from the host (as user) is reset or refused at once: exit 7 or 56, never a timeout (28)."""
    run_as = f"runuser -u {user} -- " if user else ""
    return host.sh(f"{run_as}curl -s -o /dev/null --max-time 10 {url}; echo $?").split()[-1] in ("7", "56")


def received(webhook, status: str, since: int, **labels) -> dict | None:
    """The first alert in this status posted since the since-th post with these labels."""
    for alert in webhook.alerts(status, since):
        if all(alert["labels"].get(key) == value for key, value in labels.items()):
            return alert
    return None


def wait_alerts(webhook, cluster, status: str, since: int, expected: list[dict], seconds: float) -> list[dict]:
    """Each expected alert (its labels) in this status, received within seconds; their arrival times."""
    started, deadline = time.monotonic(), time.monotonic() + seconds
    found: dict[int, tuple[dict, float]] = {}
    while len(found) < len(expected):
        for index, labels in enumerate(expected):
            if index not in found and (alert := received(webhook, status, since, **labels)):
                found[index] = (alert, time.monotonic() - started)
        if time.monotonic() > deadline:
            missing = [labels for index, labels in enumerate(expected) if index not in found]
            rules = cluster.hub.sh(
                "curl -s 127.0.0.1:9090/api/v1/alerts; cat /var/lib/jupyterhub-metrics/slurm.prom; sinfo -N",
                check=False,
            )
            raise AssertionError(f"{status} {missing} not within {seconds} s: {webhook.posts[since:]}\n{rules}")
        time.sleep(2)
    for index, (_, took) in sorted(found.items()):
        print(f"\ncluster: {status} {expected[index]['alertname']} after {took:.0f} s")
    return [found[index][0] for index in range(len(expected))]
