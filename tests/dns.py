"""BIND (Debian's `bind9`), the DNS server of the tests' per-user subdomains (tests/e2e/test_subdomains.py).

It is the DNS Pebble's validator asks: primary for the zones the tests add (a site's name and its
wildcard, updated over RFC 2136 by certbot's dns-rfc2136 plugin on the target with a TSIG key),
and a forwarder to pebble-challtestsrv for every other name (the targets' A records, tests/pebble.py).
It listens on the Docker bridge's gateway, which the targets reach, and on loopback.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype

KEY_NAME = "jhd-test-key"
KEY_ALGORITHM = "hmac-sha256"
SERIAL = 1


class Bind:
    def __init__(self, workdir: Path, listen_address: str, port: int, forward_port: int):
        self.dir = workdir / "bind"
        self.address = listen_address
        self.port = port
        self.forward_port = forward_port
        self.zones: dict[str, str] = {}
        self.process: subprocess.Popen | None = None
        self.secret_file = self.dir / "tsig.secret"

    def start(self) -> Bind:
        self.dir.mkdir(exist_ok=True)
        made = subprocess.run(
            ["tsig-keygen", "-a", KEY_ALGORITHM, KEY_NAME], check=True, capture_output=True, text=True
        )
        secret = made.stdout.split('secret "', 1)[1].split('"', 1)[0]
        self.secret_file.write_text(secret + "\n")
        self.secret_file.chmod(0o600)
        self._write_config()
        log = open(self.dir / "named.log", "a")  # noqa: SIM115 (named writes to it until stop)
        self.process = subprocess.Popen(
            ["named", "-g", "-c", str(self.dir / "named.conf")], stdout=log, stderr=subprocess.STDOUT
        )
        self._wait(self._answers)
        return self

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)

    def add_zone(self, zone: str, records: dict[str, str]) -> None:
        """A zone this server holds, updatable with the TSIG key; records: relative name -> IPv4 address
        ("@" the apex, "*" the wildcard)."""
        lines = [
            "$TTL 5",
            f"@ SOA ns.{zone}. hostmaster.{zone}. {SERIAL} 60 60 600 5",
            f"@ NS ns.{zone}.",
            f"ns A {self.address}",
            *(f"{name} A {address}" for name, address in records.items()),
        ]
        (self.dir / f"{zone}.zone").write_text("\n".join(lines) + "\n")
        self.zones[zone] = zone
        self._write_config()
        self._rndc("reconfig")
        self._wait(lambda: self.query(zone + ".", "SOA") is not None)

    def query(self, name: str, kind: str, server: str | None = None) -> list[str] | None:
        """The answers for name (None: no answer section or an error)."""
        message = dns.message.make_query(name, dns.rdatatype.from_text(kind))
        try:
            response = dns.query.udp(message, server or self.address, port=self.port, timeout=2)
        except (OSError, dns.exception.DNSException):
            return None
        records = [str(item) for rrset in response.answer for item in rrset]
        return records or None

    def _rndc(self, *command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["rndc", "-c", str(self.dir / "rndc.conf"), *command], capture_output=True, check=False)

    def _answers(self) -> bool:
        return self._rndc("status").returncode == 0

    def _wait(self, ready) -> None:
        deadline = time.monotonic() + 30
        while not ready():
            if time.monotonic() > deadline or (self.process and self.process.poll() is not None):
                raise RuntimeError(f"named did not answer; see {self.dir / 'named.log'}")
            time.sleep(0.3)

    def _write_config(self) -> None:
        d = self.dir
        rndc_port = self.port + 1
        rndc_key = f'key "rndc-key" {{ algorithm hmac-sha256; secret "{self._rndc_secret()}"; }};\n'
        (d / "rndc.conf").write_text(
            rndc_key + f'options {{ default-key "rndc-key"; default-server 127.0.0.1; default-port {rndc_port}; }};\n'
        )
        zones = "".join(
            f'zone "{zone}" {{ type primary; file "{d / zone}.zone"; allow-update {{ key "{KEY_NAME}"; }}; }};\n'
            for zone in self.zones
        )
        (d / "named.conf").write_text(
            f"""options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {self.port} {{ 127.0.0.1; {self.address}; }};
    listen-on-v6 {{ none; }};
    allow-query {{ any; }};
    recursion yes;
    allow-recursion {{ any; }};
    forwarders {{ 127.0.0.1 port {self.forward_port}; }};
    forward only;
    dnssec-validation no;
}};
key "{KEY_NAME}" {{ algorithm {KEY_ALGORITHM}; secret "{self.secret_file.read_text().strip()}"; }};
{rndc_key}controls {{ inet 127.0.0.1 port {rndc_port} allow {{ 127.0.0.1; }} keys {{ "rndc-key"; }}; }};
{zones}"""
        )

    def _rndc_secret(self) -> str:
        path = self.dir / "rndc.secret"
        if not path.exists():
            made = subprocess.run(["tsig-keygen", "rndc-key"], check=True, capture_output=True, text=True)
            path.write_text(made.stdout.split('secret "', 1)[1].split('"', 1)[0])
        return path.read_text()
