"""hubside-nltk-fetch: fetch NLTK data packages from an NLTK index into a data directory.

    hubside-nltk-fetch INDEX_URL DATA_DIR PACKAGE_ID...

Reads the same index.xml as `nltk.downloader`, checks each package's MD5 from the
index, and unpacks it where nltk.data.find() looks (DATA_DIR/<subdir>/<id>). The
deploy uses this rather than nltk's own downloader, which refuses index mirrors on
private addresses (an intranet mirror is exactly what some sites have). Standard
library only, so any python3 runs it.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import urllib.request
import zipfile
from io import BytesIO
from xml.etree import ElementTree


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read()


# The index says where each package goes and where it comes from: trusted no further than
# this (the fetcher runs as root), whoever serves the index.
SUBDIR = re.compile(r"[A-Za-z0-9_]+")
PACKAGE_URL = re.compile(r"https?://[^\s]+")


def fetch_packages(index_url: str, data_dir: str, ids: list) -> None:
    index = ElementTree.fromstring(fetch(index_url))
    packages = {p.get("id"): p for p in index.findall("packages/package")}
    for package_id in ids:
        package = packages.get(package_id)
        if package is None:
            sys.exit(f"NLTK package {package_id!r} is not in {index_url}")
        url, subdir_name = package.get("url", ""), package.get("subdir", "")
        if not PACKAGE_URL.fullmatch(url) or not SUBDIR.fullmatch(subdir_name):
            sys.exit(f"NLTK package {package_id!r}: {index_url} gives a url or subdir this fetcher refuses")
        data = fetch(url)
        if hashlib.md5(data).hexdigest() != package.get("checksum"):
            sys.exit(f"NLTK package {package_id!r}: checksum mismatch with {index_url}")
        subdir = os.path.join(data_dir, subdir_name)
        os.makedirs(subdir, exist_ok=True)
        with open(os.path.join(subdir, package_id + ".zip"), "wb") as archive:
            archive.write(data)
        if package.get("unzip", "1") == "1":
            zipfile.ZipFile(BytesIO(data)).extractall(subdir)
        print(f"{package_id}: {len(data)} bytes into {subdir}")


def main() -> None:
    fetch_packages(sys.argv[1], sys.argv[2], sys.argv[3:])
