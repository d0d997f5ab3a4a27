"""`hubside-hub`: the hub's unit runs JupyterHub through this, exactly as `jupyterhub` would.

Once JupyterHub has shut down (its cleanup done, its loop closed), the process ends without
the interpreter's teardown of everything JupyterHub imported: half a second on a small server,
during which the unit is still stopping and a restart or an upgrade cannot start the next hub.
"""

from __future__ import annotations

import logging
import os
import sys


def main() -> None:
    from jupyterhub.app import main as jupyterhub

    # A start that fails raises (or exits) as it would under `jupyterhub`, with the teardown.
    jupyterhub()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
