"""What the deploy derives from the settings: the Derived base of Settings (model.py) holds
the properties the tasks read besides the settings themselves (settings.layout, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.layout import HUB_API_PORT, Layout
from tasks.settings.constants import DB_URL, DEFAULT_PARTITION, LAB_DEFAULTS, LETS_ENCRYPT_STAGING, SERVER_RELEASES

if TYPE_CHECKING:
    from tasks.settings.parts import GitHub, HubUser, Oidc


class Derived:
    """Properties of Settings computed from its fields (which model.py declares)."""

    @property
    def postgresql_database(self) -> str | None:
        """The PostgreSQL database of the hub (jh_db_url), or None: SQLite."""
        return DB_URL.fullmatch(self.db_url)["name"] if self.db_url else None

    @property
    def hub_database(self) -> str:
        """The database as the shipped scripts take it: the SQLite file, or postgresql:NAME."""
        name = self.postgresql_database
        return f"postgresql:{name}" if name else str(self.layout.database)

    @property
    def hub_api_url(self) -> str:
        """Where the hub listens for the proxy, the culler and the deploy: loopback."""
        return f"http://127.0.0.1:{HUB_API_PORT}"

    @property
    def hub_api(self) -> str:
        """The hub's REST API, on loopback."""
        return f"{self.hub_api_url}{self.base_url}hub/api"

    @property
    def cluster_api_url(self) -> str | None:
        """Where the nodes' servers reach the hub's API (a cluster's): nginx on this host's cluster
        address, which passes the API alone, to the nodes alone."""
        return f"http://{self.cluster_address}:{HUB_API_PORT}" if self.cluster else None

    @property
    def partitions(self) -> list[str]:
        return list(self.slurm_partitions) or [DEFAULT_PARTITION]

    @property
    def oauth(self) -> Oidc | GitHub | None:
        """The OAuth provider's settings (OpenID Connect or GitHub), if logins go through one."""
        return self.oidc or self.github

    @property
    def bound_login(self) -> bool:
        """Whether logins bind each name to one account of a provider (OpenID Connect, GitHub, a
        learning platform's LTI 1.3 launches): jh_users' account, the names file."""
        return self.oauth is not None or self.lti13 is not None

    @property
    def present_users(self) -> list[HubUser]:
        return [u for u in self.users if u.state == "present"]

    @property
    def absent_users(self) -> list[HubUser]:
        return [u for u in self.users if u.state == "absent"]

    @property
    def lab_overrides(self) -> dict[str, dict[str, Any]]:
        """JupyterLab's overrides.json: the deploy's defaults, then jh_lab_settings over them."""
        merged = {plugin: dict(values) for plugin, values in LAB_DEFAULTS.items()}
        for plugin, values in self.lab_settings.items():
            merged.setdefault(plugin, {}).update(values)
        return merged

    @property
    def activity_interval(self) -> int:
        """Seconds between reports of users' activity to the hub (JupyterHub's default 300): well
        within the idle timeout, or the culler would stop a server in use on stale news."""
        return min(300, max(10, self.idle_timeout // 4))

    @property
    def server_release_dir(self) -> Path:
        release = Path(self.server_release)
        return release if release.is_absolute() else SERVER_RELEASES / self.server_release

    @property
    def local_url(self) -> str:
        """The hub's URL through the proxy, from the host itself."""
        address = "127.0.0.1" if str(self.public_ip) == "0.0.0.0" else self.public_ip
        return f"http://{address}:{self.public_port}{self.base_url}"

    @property
    def acme_server(self) -> str:
        return LETS_ENCRYPT_STAGING if self.acme_staging else str(self.acme_directory_url)

    @property
    def layout(self) -> Layout:
        """Where everything lives on the host (tasks/layout.py)."""
        return Layout(self.install_root, self.conda_prefix)
