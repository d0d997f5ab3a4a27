"""Fetch NLTK data packages from an NLTK index into a data directory.

    python3 fetch.py INDEX_URL DATA_DIR PACKAGE_ID...

Reads the same index.xml as `nltk.downloader`, checks each package's MD5 from the
index, and unpacks it where nltk.data.find() looks (DATA_DIR/<subdir>/<id>). The
deploy uses this rather than nltk's own downloader, which refuses index mirrors on
private addresses (an intranet mirror is exactly what some sites have). Standard
library only, so any python3 runs it.
"""

import hashlib
import os
import sys
import urllib.request
import zipfile
from io import BytesIO
from xml.etree import ElementTree


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read()


def main(index_url: str, data_dir: str, ids: list) -> None:
    index = ElementTree.fromstring(fetch(index_url))
    packages = {p.get("id"): p for p in index.findall("packages/package")}
    for package_id in ids:
        package = packages.get(package_id)
        if package is None:
            sys.exit(f"NLTK package {package_id!r} is not in {index_url}")
        data = fetch(package.get("url"))
        if hashlib.md5(data).hexdigest() != package.get("checksum"):
            sys.exit(f"NLTK package {package_id!r}: checksum mismatch with {index_url}")
        subdir = os.path.join(data_dir, package.get("subdir", ""))
        os.makedirs(subdir, exist_ok=True)
        with open(os.path.join(subdir, package_id + ".zip"), "wb") as archive:
            archive.write(data)
        if package.get("unzip", "1") == "1":
            zipfile.ZipFile(BytesIO(data)).extractall(subdir)
        print(f"{package_id}: {len(data)} bytes into {subdir}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
