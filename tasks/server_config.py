"""What every user's server loads from the server venv's own configuration (root's files in the
venv, below the user's own ~/.jupyter): which of jupyter-collaboration's extensions run
(jh_collaboration), and the authorizer that reads the visitors' shares (jh_sharing).

The server venv holds jupyter-collaboration whatever the settings (one lock for every hub), and
its packages turn it on where they are installed: off unless jh_collaboration, by the server
extensions JupyterLab's server loads and the lab extensions its page loads. A user may turn it on
again in their own ~/.jupyter, for their own server only.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from tasks.settings import Settings

# jupyter-collaboration's server extensions (each package's jupyter_server_config.d file) and its
# lab extensions (share/jupyter/labextensions), in the locks' versions (4.2 and 5.0).
SERVER_EXTENSIONS = ("jupyter_server_ydoc", "jupyter_server_fileid")
LAB_EXTENSIONS = ("@jupyter/collaboration-extension", "@jupyter/docprovider-extension")
AUTHORIZER = "hubside.sharing.ShareAuthorizer"
# How long a server keeps the hub's answer about a visitor's token (JupyterHub's default 300 s): a
# share, or its withdrawal, takes effect within this time.
SHARE_CACHE_SECONDS = 30
# Below the venv: jupyter-server's sys-prefix config (read after each package's .d files) and
# JupyterLab's page config.
SERVER_CONFIG = PurePosixPath("etc/jupyter/jupyter_server_config.json")
PAGE_CONFIG = PurePosixPath("etc/jupyter/labconfig/page_config.json")


def server_config(settings: Settings) -> dict:
    """jupyter_server_config.json: the collaboration's server extensions on or off, the authorizer."""
    app: dict = {"jpserver_extensions": {name: settings.collaboration for name in SERVER_EXTENSIONS}}
    if not settings.sharing:
        return {"ServerApp": app}
    app["authorizer_class"] = AUTHORIZER
    # Its guard of every handler (hubside.sharing): a reader reads, whatever the extension.
    app["jpserver_extensions"]["hubside.sharing"] = True
    return {"ServerApp": app, "HubOAuth": {"cache_max_age": SHARE_CACHE_SECONDS}}


def page_config(settings: Settings) -> dict:
    """page_config.json: the collaboration's lab extensions disabled unless it is on."""
    return {"disabledExtensions": {name: not settings.collaboration for name in LAB_EXTENSIONS}}
