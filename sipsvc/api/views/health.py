"""Probes for orchestrators and the Prometheus scrape: ``/healthz``, ``/readyz``, ``/metrics``.

They need no token (put the HTTP address on a private network, or filter ``/metrics`` at the
proxy, if the counts must stay private) and answer plain JSON or text, not Kazoo's envelope.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from ...store.errors import REDIS_ERRORS

from ..keys import METRICS, SIP_LISTENERS, STORES
from ..metrics import CONTENT_TYPE

log = logging.getLogger("sipsvc.api")
PING_TIMEOUT = 1.0  # seconds Redis has to answer the readiness PING


async def healthz(request: web.Request) -> web.Response:
    """The process is up and its event loop answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready for traffic: Redis answers a PING within PING_TIMEOUT and the SIP sockets are
    bound; otherwise 503 with the reason."""
    checks = {"redis": await _redis_check(request), "sip": _sip_check(request)}
    failed = [f"{name}: {result}" for name, result in checks.items() if result != "ok"]
    if failed:
        return web.json_response({"status": "unready", "reason": "; ".join(failed), "checks": checks},
                                 status=503)
    return web.json_response({"status": "ready", "checks": checks})


async def _redis_check(request: web.Request) -> str:
    try:
        await request.app[STORES].stats.ping(PING_TIMEOUT)
        return "ok"
    except TimeoutError:
        problem = f"no answer to PING within {PING_TIMEOUT} s"
    except REDIS_ERRORS as exc:
        problem = f"unreachable: {exc}"
    request.app[METRICS].redis_errors.labels("readyz").inc()
    log.warning("not ready: redis %s", problem)
    return problem


def _sip_check(request: web.Request) -> str:
    listeners = request.app.get(SIP_LISTENERS)
    if listeners is None:
        return "not listening"
    if listeners.udp.is_closing():
        return "UDP socket closed"
    if not listeners.tcp.is_serving():
        return "TCP socket closed"
    return "ok"


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format. Registered devices are counted in Redis now; when that fails the
    other metrics are still served, without that gauge."""
    registered = None
    try:
        registered = await request.app[STORES].stats.registered_devices(time.time())
    except REDIS_ERRORS as exc:
        request.app[METRICS].redis_errors.labels("metrics").inc()
        log.warning("metrics: cannot count registered devices: %s", exc)
    body = request.app[METRICS].render(registered)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
