"""Test certificates made with openssl: the same command for every test that needs one."""

from __future__ import annotations

import subprocess
from pathlib import Path


def self_signed(certificate: Path, key: Path, common_name: str, days: int, alt_names: bool = False) -> None:
    """An RSA 2048 key and a self-signed certificate for common_name (what `openssl req -x509` makes),
    with alt_names also naming it as a subjectAltName (what clients that ignore the CN check)."""
    extra = ["-addext", f"subjectAltName=DNS:{common_name}"] if alt_names else []
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days),
         "-subj", f"/CN={common_name}", *extra, "-keyout", str(key), "-out", str(certificate)],
        check=True,
        capture_output=True,
    )  # fmt: skip
