"""hubside-monitoring-gate: the hub's say on who sees Prometheus and Alertmanager through nginx.

A service the hub starts (jh_monitoring with jh_domain). nginx asks it, before every request to
PREFIX/prometheus/ or PREFIX/alertmanager/, whether the browser is signed in to it (nginx's
auth_request to PREFIX/auth): 204 for a person the hub lets use this service (its scope
access:services!service=NAME, which the hub's admin role holds and a plain user's does not),
401 for nobody signed in (nginx then sends the browser to PREFIX, which signs in through the hub's
OAuth), 403 for anyone else. It listens on a Unix socket in a folder of the hub's account that
nobody else can write in, so no other local account can answer nginx in its place.
"""

from __future__ import annotations

import argparse
import os
from html import escape

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from tornado import httpserver, ioloop, web
from tornado.netutil import bind_unix_socket

# How long the hub's answer for a token is trusted: a person who stops being an admin loses the
# monitoring pages within this time.
TOKEN_CACHE_SECONDS = 60


class GateHandler(HubOAuthenticated, web.RequestHandler):
    """The gate's HubOAuth, given to each handler (not a process-wide instance made from variables)."""

    def initialize(self, hub_auth: HubOAuth) -> None:
        self.hub_auth = hub_auth


class AuthHandler(GateHandler):
    """nginx's subrequest: the browser's cookie of this service, checked with the hub.

    The cookie is read here, not through HubOAuthenticated's get_current_user, whose XSRF rule
    refuses the cookie on a page's own fetches (Prometheus's UI asks its API so), which nginx
    forwards with their Sec-Fetch-Mode. The cookie is SameSite=Lax and the subrequest is a GET."""

    async def get(self):
        cookie = self.get_secure_cookie(self.hub_auth.cookie_name)
        user = await self.hub_auth.user_for_token(cookie.decode("ascii", "replace"), sync=False) if cookie else None
        if not user:
            raise web.HTTPError(401)
        if not self.hub_auth.check_scopes(self.hub_auth.access_scopes, user):
            raise web.HTTPError(403)
        self.set_status(204)


class IndexHandler(GateHandler):
    """PREFIX: signs in through the hub (a person without the scope gets 403), then links."""

    def prepare(self):
        # The sign-in keeps the page asked for until it ends (for anyone who asks, ten minutes):
        # the bare page alone, not whatever a stranger puts in its query.
        if self.request.query:
            self.redirect(self.hub_auth.base_url)

    @web.authenticated
    def get(self):
        prefix = self.hub_auth.base_url
        name = escape(self.current_user["name"])
        self.write(
            "<!doctype html><title>Monitoring</title>"
            f"<p>Signed in to the hub as {name}.</p><ul>"
            f'<li><a href="{prefix}prometheus/">Prometheus</a></li>'
            f'<li><a href="{prefix}alertmanager/">Alertmanager</a> (read-only here: silences with amtool on the'
            " server)</li></ul>"
        )


class CallbackHandler(GateHandler, HubOAuthCallbackHandler):
    """The end of the sign-in through the hub: the cookie set, back to the index."""


def application(auth: HubOAuth) -> web.Application:
    prefix, given = auth.base_url, {"hub_auth": auth}
    return web.Application(
        [
            (f"{prefix}auth", AuthHandler, given),
            (f"{prefix}oauth_callback", CallbackHandler, given),
            (prefix, IndexHandler, given),
        ],
        # Cookies of a gate that restarts are void: each start signs in again through the hub.
        cookie_secret=os.urandom(32),
    )


def hub_auth(name: str, prefix: str, secure: bool) -> HubOAuth:
    """The hub's OAuth for service NAME at PREFIX; its API token and URL from the hub's variables."""
    return HubOAuth(
        api_token=os.environ["JUPYTERHUB_API_TOKEN"],
        api_url=os.environ["JUPYTERHUB_API_URL"],
        oauth_client_id=f"service-{name}",
        oauth_redirect_uri=f"{prefix}oauth_callback",
        base_url=prefix,
        access_scopes={f"access:services!service={name}"},
        cookie_options={"samesite": "Lax", "secure": secure},
        cache_max_age=TOKEN_CACHE_SECONDS,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the service's name in the hub")
    parser.add_argument("--prefix", required=True, help="its path, e.g. /services/monitoring/")
    parser.add_argument("--socket", required=True, help="the Unix socket nginx connects to")
    parser.add_argument("--insecure-cookie", action="store_true", help="plain HTTP (tests)")
    args = parser.parse_args(argv)
    server = httpserver.HTTPServer(application(hub_auth(args.name, args.prefix, not args.insecure_cookie)))
    # nginx's account connects; the folder is the hub's alone, so nobody else can put a socket here.
    server.add_socket(bind_unix_socket(args.socket, mode=0o666))
    ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
