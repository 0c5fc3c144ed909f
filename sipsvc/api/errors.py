"""The one place where errors become HTTP answers (Kazoo's error envelope).

Services raise ``sipsvc.errors.ServiceError`` subclasses, the store ``StoreUnavailableError``,
the request helpers ``BadRequestError``; each maps to a status, Kazoo's message code and data.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

from aiohttp import web
from redis.exceptions import RedisClusterException, RedisError

from ..errors import (
    AuthenticationError, ConflictError, ForbiddenError, NotFoundError, NotRegisteredError,
    SyncRunningError, ValidationFailedError,
)
from ..quickcall.errors import CallElsewhereError, DeviceUnavailableError, GatewayNotConfiguredError
from ..store.errors import StoreUnavailableError
from . import envelope
from .keys import METRICS

log = logging.getLogger("sipsvc.api")


class BadRequestError(Exception):
    """The request itself is unusable (body, query string); the message says why."""


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _answer(request: web.Request, exc: Exception) -> web.Response:
    if isinstance(exc, ValidationFailedError):
        return envelope.error(request, 400, "validation error", exc.errors)
    if isinstance(exc, BadRequestError):
        return envelope.error(request, 400, "invalid request", {"message": str(exc)})
    if isinstance(exc, NotFoundError):
        return envelope.error(request, 404, "bad_identifier",
                              {"cause": exc.identifier, "message": "bad identifier"})
    if isinstance(exc, AuthenticationError):
        return envelope.error(request, 401, "invalid_credentials", {"message": str(exc)})
    if isinstance(exc, ForbiddenError):
        return envelope.error(request, 403, "forbidden", {"message": str(exc)})
    if isinstance(exc, DeviceUnavailableError):
        return envelope.error(request, 409, "device_unavailable",
                              {"cause": exc.device_id, "message": str(exc)})
    if isinstance(exc, GatewayNotConfiguredError):
        return envelope.error(request, 409, "quickcall gateway not configured", {"message": str(exc)})
    if isinstance(exc, CallElsewhereError):
        return envelope.error(request, 409, "quickcall held elsewhere",
                              {"cause": exc.node, "message": str(exc)})
    if isinstance(exc, ConflictError):
        data = {"message": "conflicting documents"}
        if exc.current_revision:
            data["current_revision"] = exc.current_revision
        return envelope.error(request, 409, "datastore_conflict", data)
    if isinstance(exc, NotRegisteredError):
        return envelope.error(request, 409, "device not registered",
                              {"cause": exc.device_id, "message": exc.reason})
    if isinstance(exc, SyncRunningError):
        return envelope.error(request, 409, "sync already running", {"message": str(exc)})
    if isinstance(exc, (StoreUnavailableError, RedisError, RedisClusterException, ConnectionError)):
        log.warning("store unavailable: %s", exc)
        if METRICS in request.app:
            request.app[METRICS].redis_errors.labels("api").inc()
        return envelope.error(request, 503, "datastore_unreachable",
                              {"message": "the data store is unreachable; try again shortly"})
    log.exception("unhandled error on %s %s", request.method, request.path)
    return envelope.error(request, 500, "internal_server_error",
                          {"message": "internal server error"})


def _http_answer(request: web.Request, exc: web.HTTPException) -> web.Response:
    code = exc.reason.lower().replace(" ", "_")
    response = envelope.error(request, exc.status, code, {"message": exc.reason})
    if isinstance(exc, web.HTTPMethodNotAllowed):
        response.headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = envelope.assign_request_id(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = _http_answer(request, exc)
    except Exception as exc:  # noqa: BLE001 - every error gets an envelope, never a traceback
        response = _answer(request, exc)
    response.headers["X-Request-ID"] = request_id
    return response
