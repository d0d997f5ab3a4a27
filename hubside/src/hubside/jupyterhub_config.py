# The hub's configuration: the same file on every host (hubside/src/hubside/jupyterhub_config.py).
# What differs between hosts is data, in hub.json beside this file, written by the deploy from
# the settings: edit the settings (group_data/, inventory.py) and re-run the deploy, not these files.
from hubside.config import apply

apply(get_config(), __file__)  # noqa: F821
