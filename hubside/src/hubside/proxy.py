"""configurable-http-proxy for servers on Unix sockets (JupyterHub 6; hubside.spawner).

JupyterHub keeps a server's address as protocol, host and port, so a Unix socket's URL reaches
the proxy as ``http+unix://<path>:80``; configurable-http-proxy would take ``<path>:80`` for the
socket's path. Routes go to the proxy without that port, and come back from it with it.
"""

from __future__ import annotations

import re

from jupyterhub.proxy import ConfigurableHTTPProxy

PORT_OF_A_SOCKET = re.compile(r"^(http\+unix://[^/:]+):80(?=/|$)")
SOCKET_WITHOUT_PORT = re.compile(r"^(http\+unix://[^/:]+)(?=/|$)")


class UnixSocketProxy(ConfigurableHTTPProxy):
    async def add_route(self, routespec, target, data):
        return await super().add_route(routespec, PORT_OF_A_SOCKET.sub(r"\1", target), data)

    def _reformat_routespec(self, routespec, chp_data):
        route = super()._reformat_routespec(routespec, chp_data)
        route["target"] = SOCKET_WITHOUT_PORT.sub(r"\1:80", route["target"])
        return route
