"""Pebble, a real ACME server (Debian's `pebble` package), as the test CA.

Pebble's validator resolves names through BIND (tests/dns.py), which holds the zones of
the tests' per-user subdomains (DNS-01 over RFC 2136) and forwards every other name to
pebble-challtestsrv's DNS, where the tests add an A record per target; it then fetches
the HTTP-01 challenge from the target's port 80, as Let's Encrypt would. Pebble's directory listens on the
Docker bridge's gateway address, which the targets can reach.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import requests

from tests.certificates import self_signed
from tests.dns import Bind

# Test sessions that run side by side (tests/e2e.sh) each get their own ports.
PORT_OFFSET = int(os.environ.get("JHD_PORT_OFFSET", "0"))
DNS_PORT = 8053 + PORT_OFFSET
BIND_PORT = 7353 + PORT_OFFSET  # and its control port, one up
CHALLTESTSRV_MANAGEMENT = f"127.0.0.1:{8055 + PORT_OFFSET}"
# How long the certificates it issues last.
CERTIFICATE_DAYS = 10
DIRECTORY_PORT = 14000 + PORT_OFFSET
MANAGEMENT_PORT = 15000 + PORT_OFFSET


class Pebble:
    def __init__(self, workdir: Path, listen_address: str):
        self.workdir = workdir
        self.address = listen_address
        self.processes: list[subprocess.Popen] = []
        self.tls_ca = workdir / "pebble-tls-ca.crt"
        self.dns = Bind(workdir, listen_address, BIND_PORT, forward_port=DNS_PORT)

    @property
    def directory_url(self) -> str:
        return f"https://{self.address}:{DIRECTORY_PORT}/dir"

    def start(self) -> Pebble:
        self._make_tls_certificate()
        config = self.workdir / "pebble-config.json"
        config.write_text(
            json.dumps(
                {
                    "pebble": {
                        "listenAddress": f"{self.address}:{DIRECTORY_PORT}",
                        "managementListenAddress": f"127.0.0.1:{MANAGEMENT_PORT}",
                        "certificate": str(self.workdir / "pebble-tls.crt"),
                        "privateKey": str(self.workdir / "pebble-tls.key"),
                        "httpPort": 80,
                        "tlsPort": 443,
                        "ocspResponderURL": "",
                        "externalAccountBindingRequired": False,
                        # Ten days: the hubs' monitoring sees a certificate that ends within 14 days
                        # (CertificateExpiresSoon, tests/e2e/test_web.py). The deploy asks for one only
                        # when it has none, so its re-runs stay no-ops.
                        "certificateValidityPeriod": CERTIFICATE_DAYS * 86400,
                    }
                }
            )
        )
        log = open(self.workdir / "pebble.log", "a")  # noqa: SIM115 (the servers write to it until stop)
        self.processes.append(
            subprocess.Popen(
                [
                    "pebble-challtestsrv",
                    "-management",
                    CHALLTESTSRV_MANAGEMENT,
                    "-dns01",
                    f"127.0.0.1:{DNS_PORT}",
                    "-http01",
                    "",
                    "-https01",
                    "",
                    "-tlsalpn01",
                    "",
                    "-defaultIPv4",
                    "",
                    "-defaultIPv6",
                    "",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        self.dns.start()
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0")
        self.processes.append(
            subprocess.Popen(
                ["pebble", "-config", str(config), "-dnsserver", f"127.0.0.1:{BIND_PORT}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(self.directory_url, verify=str(self.tls_ca), timeout=2).raise_for_status()
                requests.get(f"http://{CHALLTESTSRV_MANAGEMENT}/", timeout=2)
                return self
            except requests.RequestException as error:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"pebble did not start; see {self.workdir / 'pebble.log'}") from error
                time.sleep(0.3)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(timeout=10)
        self.dns.stop()

    def add_name(self, name: str, address: str) -> None:
        """Point name at address in the DNS Pebble's validator uses."""
        response = requests.post(
            f"http://{CHALLTESTSRV_MANAGEMENT}/add-a", json={"host": name + ".", "addresses": [address]}, timeout=5
        )
        response.raise_for_status()

    def root_certificates(self) -> Path:
        """The roots Pebble issues under (made anew each time Pebble starts)."""
        path = self.workdir / "pebble-roots.pem"
        roots = []
        for index in range(2):
            response = requests.get(
                f"https://127.0.0.1:{MANAGEMENT_PORT}/roots/{index}", verify=str(self.tls_ca), timeout=5
            )
            if response.ok:
                roots.append(response.text)
        path.write_text("".join(roots))
        return path

    def _make_tls_certificate(self) -> None:
        """A small CA and a leaf for Pebble's own HTTPS endpoint (the package ships none)."""
        w = self.workdir
        openssl = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
        self_signed(self.tls_ca, w / "pebble-tls-ca.key", "jhd test ACME TLS CA", days=2)
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={self.address}",
            "-keyout",
            str(w / "pebble-tls.key"),
            "-out",
            str(w / "pebble-tls.csr"),
        )
        (w / "san.ext").write_text(f"subjectAltName=IP:{self.address},IP:127.0.0.1\n")
        openssl(
            "x509",
            "-req",
            "-in",
            str(w / "pebble-tls.csr"),
            "-CA",
            str(self.tls_ca),
            "-CAkey",
            str(w / "pebble-tls-ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            str(w / "san.ext"),
            "-out",
            str(w / "pebble-tls.crt"),
        )
