"""Routes to servers on Unix sockets: to configurable-http-proxy without the port JupyterHub keeps."""

from __future__ import annotations

from hubside.proxy import UnixSocketProxy

from .conftest import run

SOCKET = "http+unix://%2frun%2fjupyterhub-servers%2falice%2fserver.sock"


def test_a_socket_s_route_goes_to_the_proxy_without_a_port_and_comes_back_with_it(monkeypatch):
    sent = []

    async def api_request(self, path, method="GET", body=None, client=None):
        sent.append((path, method, body))

    monkeypatch.setattr(UnixSocketProxy, "api_request", api_request)
    proxy = UnixSocketProxy(api_url="http://127.0.0.1:8001", auth_token="t")
    run(proxy.add_route("/user/alice/", f"{SOCKET}:80", {"user": "alice"}))
    run(proxy.add_route("/user/bob/", "http://127.0.0.1:20001", {"user": "bob"}))
    assert [body["target"] for _, _, body in sent] == [SOCKET, "http://127.0.0.1:20001"]
    # As JupyterHub compares it with the server's address (check_routes): the same again.
    route = proxy._reformat_routespec("/user/alice/", {"target": SOCKET, "jupyterhub": True, "user": "alice"})
    assert route == {"routespec": "/user/alice/", "target": f"{SOCKET}:80", "data": {"user": "alice"}}
    tcp = proxy._reformat_routespec("/user/bob/", {"target": "http://127.0.0.1:20001", "jupyterhub": True})
    assert tcp["target"] == "http://127.0.0.1:20001"
