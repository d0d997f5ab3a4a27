"""Alertmanager's webhook post, handed to jh_notify_command: one run of COMMAND per alert, its one
argument "alert NAME STATUS on HOST: SUMMARY". Run by the system's python3 as root, one connection
each (jupyterhub-alert-notify.socket, Accept=yes, on loopback; only Alertmanager's account and root
may connect: files/bin/monitoring-ports-firewall), the connection as standard input and output.

    notify-alerts.py COMMAND [ARGUMENT ...]
"""

import json
import re
import subprocess
import sys

MAX_BODY = 1024 * 1024
# Within the unit's RuntimeMaxSec (300 s): at most this many runs of this long from one post.
MOST_ALERTS, COMMAND_SECONDS = 12, 20
# A label's text as the command gets it: printable, no line breaks, bounded.
UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


def text(value, limit=200):
    return UNPRINTABLE.sub("?", str(value))[:limit]


def read_request(stream):
    """The POST's JSON body, or None for anything else."""
    request_line = stream.readline(8192)
    length = 0
    while True:
        line = stream.readline(8192)
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length" and value.strip().isdigit():
            length = int(value.strip())
    if not request_line.startswith(b"POST ") or not 0 < length <= MAX_BODY:
        return None
    try:
        return json.loads(stream.read(length))
    except ValueError:
        return None


def argument(alert):
    labels = alert.get("labels") or {}
    summary = (alert.get("annotations") or {}).get("summary", "")
    name, host = text(labels.get("alertname", "?"), 80), text(labels.get("host", "?"), 80)
    return f"alert {name} {text(alert.get('status', '?'), 20)} on {host}: {text(summary)}"


def main():
    command = sys.argv[1:]
    body = read_request(sys.stdin.buffer)
    status = "200 OK" if isinstance(body, dict) else "400 Bad Request"
    sys.stdout.buffer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
    sys.stdout.flush()
    if not isinstance(body, dict):
        return 1
    failed = 0
    for alert in (body.get("alerts") or [])[:MOST_ALERTS]:
        if isinstance(alert, dict):
            try:
                # Its output to the journal, not into Alertmanager's connection.
                result = subprocess.run(
                    [*command, argument(alert)],
                    stdin=subprocess.DEVNULL,
                    stdout=sys.stderr,
                    timeout=COMMAND_SECONDS,
                    check=False,
                )
                failed += result.returncode != 0
            except subprocess.TimeoutExpired:
                print(f"{command[0]} took over {COMMAND_SECONDS} s: stopped", file=sys.stderr)
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
