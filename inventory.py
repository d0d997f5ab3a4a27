"""The servers to deploy to.

Add your servers to `hubs` (with per-host settings if they differ from
group_data/all.py). The `demo` group is the local demo container that
`make demo` starts; it exists only while that container runs.
"""

import json
from pathlib import Path

hubs = [
    # ("hub.example.org", {"ssh_user": "admin", "_sudo": True}),
]

_demo = Path(__file__).resolve().parent / ".demo" / "target.json"
if _demo.exists():
    from tests.targets import demo_host

    demo = [demo_host(json.loads(_demo.read_text()))]
