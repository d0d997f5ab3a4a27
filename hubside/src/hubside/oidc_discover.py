"""hubside-oidc-discover: read an OpenID Connect issuer's discovery document; write the endpoints the hub uses.

    hubside-oidc-discover ISSUER OUTPUT CA_BUNDLE

OUTPUT is written (0644, in one step) only if the document is the issuer's own (its
"issuer" is ISSUER) and every endpoint is an https URL; other oidc-endpoints-*.json beside
it (of an issuer used before) are removed. Run by root in a folder only root writes.
"""

from __future__ import annotations

import glob
import json
import os
import ssl
import sys
import tempfile
import urllib.request

ENDPOINTS = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint")


def main():
    issuer, output, ca_bundle = sys.argv[1:]
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    context = ssl.create_default_context(cafile=ca_bundle)
    try:
        with urllib.request.urlopen(url, timeout=30, context=context) as response:
            document = json.load(response)
    except (OSError, ValueError) as error:
        raise SystemExit(f"hubside-oidc-discover: jh_oidc issuer: no discovery document at {url}: {error}") from None
    if str(document.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise SystemExit(f"hubside-oidc-discover: {url} is the document of {document.get('issuer')!r}, not of {issuer}")
    endpoints = {"issuer": issuer}
    for key in ENDPOINTS:
        value = document.get(key)
        if not isinstance(value, str) or not value.startswith("https://") or any(c.isspace() for c in value):
            raise SystemExit(f"hubside-oidc-discover: {url}: {key} is {value!r}, not an https URL")
        endpoints[key] = value
    directory = os.path.dirname(output)
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".oidc-endpoints-")
    with os.fdopen(descriptor, "w") as file:
        json.dump(endpoints, file, indent=2, sort_keys=True)
    os.chmod(temporary, 0o644)
    os.replace(temporary, output)
    for old in glob.glob(os.path.join(directory, "oidc-endpoints-*.json")):
        if old != output:
            os.unlink(old)
    print(f"hubside-oidc-discover: endpoints of {issuer} written to {output}")
