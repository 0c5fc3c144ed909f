"""``/ui/``: the operator page (static files, no build step) and its two assets.

The page needs no token to load; it asks for one and sends it to the API in ``X-Auth-Token``.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from ...errors import NotFoundError

_FILES = resources.files("sipsvc.api").joinpath("ui")
_TYPES = {"html": "text/html", "js": "text/javascript", "css": "text/css"}
_ASSETS = ("ui.js", "ui.css")
# The page runs no script but its own and talks only to this origin.
_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; frame-ancestors 'none'"


def _serve(name: str) -> web.Response:
    body = _FILES.joinpath(name).read_bytes()
    return web.Response(body=body, content_type=_TYPES[name.rpartition(".")[2]], charset="utf-8",
                        headers={"Cache-Control": "no-cache", "Content-Security-Policy": _CSP,
                                 "X-Content-Type-Options": "nosniff"})


async def index(request: web.Request) -> web.Response:
    return _serve("index.html")


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["asset"]
    if name not in _ASSETS:
        raise NotFoundError("asset", name)
    return _serve(name)
