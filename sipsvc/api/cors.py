"""CORS (the Fetch standard's CORS protocol), off unless ``api.cors_origins`` names origins.

With no origins configured nothing here runs and no ``Access-Control-*`` header is ever sent, so
browsers refuse cross-origin calls. With origins, a request whose ``Origin`` is listed (or any
origin, for ``*``) gets ``Access-Control-Allow-Origin`` naming it, and a preflight ``OPTIONS`` is
answered 204 before routing. Credentials are the ``X-Auth-Token`` header, never cookies, so
``Allow-Credentials`` is not sent.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import web

ALLOWED_METHODS = "GET, PUT, POST, PATCH, DELETE"
ALLOWED_HEADERS = "X-Auth-Token, Authorization, Content-Type, If-Match, X-Request-ID"
EXPOSED_HEADERS = "X-Request-ID, ETag, Retry-After"
MAX_AGE = "600"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _allowed(origins: frozenset[str], origin: str | None) -> bool:
    return origin is not None and ("*" in origins or origin in origins)


def cors(app: web.Application, origins: tuple[str, ...]):
    """Install CORS for ``origins`` on ``app``; returns the middleware answering preflights."""
    allowed = frozenset(origins)

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if _allowed(allowed, origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            response.headers.add("Vary", "Origin")

    @web.middleware
    async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
                and _allowed(allowed, request.headers.get("Origin"))):
            return web.Response(status=204, headers={
                "Access-Control-Allow-Methods": ALLOWED_METHODS,
                "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                "Access-Control-Max-Age": MAX_AGE,
            })
        return await handler(request)

    app.on_response_prepare.append(add_headers)
    return preflight
