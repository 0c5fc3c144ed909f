"""Wiring: builds the store, the services and the HTTP application from a ``Config``.

No globals: everything with a lifetime (the Redis client, an embedded Redis server) is opened in
a ``cleanup_ctx`` and handed to the views through typed ``AppKey``s.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from pathlib import Path
from typing import AsyncIterator

from aiohttp import web

from .accounts.service import AccountService
from .api.cors import cors
from .api.errors import error_middleware
from .api.keys import (ACCOUNTS, CONFIG, DEVICES, EVENTS, METRICS, NOTIFIER, QUICKCALL, REGISTRAR,
                       SECURITY, SIP_ENDPOINT, SIP_LISTENERS, STORES)
from .api.limits import RateLimiter, rate_limit_middleware
from .api.metrics import Metrics, measure_loop_lag
from .api.routes import add_routes
from .config import Config, ConfigError
from .devices.service import DeviceService
from .events.hub import RegistrationEvents
from .notify.service import NotifyService
from .quickcall.originator import Originator
from .quickcall.service import QuickcallService
from .randomness import random_bytes
from .registrar.guard import AuthGuard, GuardPolicy
from .registrar.policy import RegistrarPolicy
from .registrar.service import RegistrarService
from .sip.digest import NonceSigner
from .sip.parser import Limits
from .sip.transaction import TimerConfig
from .store import open_stores
from .transport.endpoint import SipEndpoint
from .transport.listen import listen
from .transport.tcp import TcpLimits
from .transport.trace import TracingSipEndpoint

log = logging.getLogger("sipsvc")


def admin_token(config: Config) -> str:
    """The configured admin token, or one generated once into ``<data_dir>/admin-token``."""
    if config.admin_token:
        return config.admin_token
    path = Path(config.data_dir) / "admin-token"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    log.info("generated an admin token into %s (set SIPSVC_ADMIN_TOKEN to choose one)", path)
    return token


REUSE_PORT = web.AppKey("reuse_port", int)  # SO_REUSEPORT group size; 0 = not shared
SHUTDOWN_DRAIN = 5.0  # seconds SIP requests in progress get to finish at shutdown


def create_app(config: Config, *, reuse_port: int = 0) -> web.Application:
    metrics = Metrics.for_process()
    app = web.Application(
        middlewares=[metrics.middleware, error_middleware, *_limits(config)],
        # Bodies past the limit are refused while reading (answered 400 by the request helper).
        client_max_size=config.max_body_bytes,
    )
    if config.cors_origins:  # off by default: no Access-Control-* header at all
        app.middlewares.insert(1, cors(app, config.cors_origins))
    app[CONFIG] = config
    app[REUSE_PORT] = reuse_port
    app[METRICS] = metrics
    app.cleanup_ctx.append(_services_ctx)
    app.cleanup_ctx.append(_sip_ctx)
    app.cleanup_ctx.append(_metrics_ctx)
    app.on_shutdown.append(_close_event_streams)
    app.on_shutdown.append(_stop_accepting_sip_connections)
    add_routes(app)
    return app


def _limits(config: Config) -> list:
    """The per-token rate limit (inside the error middleware: its 429 carries a request id)."""
    if not config.rate_limit:
        return []
    return [rate_limit_middleware(RateLimiter(config.rate_limit, config.rate_burst))]


async def _services_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    stores = await open_stores(config.redis_url, Path(config.data_dir))
    stores.start()
    app[STORES] = stores
    app[ACCOUNTS] = AccountService(
        stores.accounts, admin_token=admin_token(config), token_ttl=config.token_ttl
    )
    app[DEVICES] = DeviceService(stores.devices)
    app[QUICKCALL] = QuickcallService(stores.devices, allow_anonymous=config.quickcall_allow_anonymous)
    policy = RegistrarPolicy(min_expires=config.min_expires, max_expires=config.max_expires,
                             default_expires=config.default_expires, max_contacts=config.max_contacts)
    secret = await stores.bindings.nonce_secret(secrets.token_bytes(32))
    app[SECURITY] = AuthGuard(stores.bans, GuardPolicy(
        max_failures_per_source=config.max_failures_per_source,
        max_failures_per_user=config.max_failures_per_user, failure_window=config.failure_window,
        ban_seconds=config.ban_seconds, ban_action=config.ban_action,
        scanner_user_agents=config.scanner_user_agents if config.drop_scanners else (),
    ))
    app[REGISTRAR] = RegistrarService(
        accounts=stores.accounts, devices=stores.devices, bindings=stores.bindings, policy=policy,
        nonces=NonceSigner(secret, config.nonce_lifetime), nonce_lifetime=config.nonce_lifetime,
        random_bytes=random_bytes, algorithms=config.digest_algorithms, guard=app[SECURITY],
    )
    app[EVENTS] = RegistrationEvents(stores.registration_events)
    app[EVENTS].start()
    try:
        yield
    finally:
        await app[EVENTS].stop()
        await stores.close()


async def _close_event_streams(app: web.Application) -> None:
    """Open event streams end first, so they do not hold up a graceful shutdown."""
    if EVENTS in app:
        app[EVENTS].close_streams()


def sip_limits(config: Config) -> Limits:
    """What one SIP message may hold (issue 6: hostile input)."""
    return Limits(max_message=config.max_message_bytes, max_headers=config.max_headers,
                  max_line=config.max_line_length, max_uri=config.max_uri_length, max_vias=config.max_vias)


def tcp_limits(config: Config) -> TcpLimits:
    """What one TCP peer may hold (issue 6: hostile input)."""
    return TcpLimits(message_timeout=config.tcp_message_timeout, max_buffered=config.tcp_max_buffered_bytes,
                     max_per_source=config.tcp_max_connections_per_source,
                     max_connections=config.tcp_max_connections)


async def _stop_accepting_sip_connections(app: web.Application) -> None:
    """At shutdown (the HTTP listener is closed by then): refuse new SIP TCP connections at once;
    requests in progress are still answered (``_sip_ctx`` drains them before closing)."""
    if SIP_LISTENERS in app:
        app[SIP_LISTENERS].tcp.close()


async def _sip_ctx(app: web.Application) -> AsyncIterator[None]:
    """The SIP endpoint and its UDP and TCP listeners on ``config.sip``."""
    config = app[CONFIG]
    timers = TimerConfig(config.t1, config.t2, config.t4)
    # The trace is a subclass chosen here, so that with it off nothing on the hot path checks it.
    endpoint = (TracingSipEndpoint if config.sip_trace else SipEndpoint)(
        timers=timers,
        handlers={"REGISTER": app[REGISTRAR].register},
        quick_handlers={"REGISTER": app[REGISTRAR].answer_now},
        limits=sip_limits(config), max_pending=config.max_pending_requests,
        max_transactions=config.max_transactions,
    )
    endpoint.screen = app[SECURITY].screen
    try:
        listeners = await listen(endpoint, config.sip.host, config.sip.port,
                                 max_message=config.max_message_bytes,
                                 idle_timeout=config.tcp_idle_timeout, group=app[REUSE_PORT],
                                 tcp_limits=tcp_limits(config))
    except OSError as exc:
        raise ConfigError(f"sip: cannot listen on {config.sip}: {exc.strerror or exc}") from None
    # Sibling workers over local sockets, other nodes sharing the Redis over its pub/sub.
    relay = app[STORES].relay
    await endpoint.join_siblings(str(config.data_dir), remote=relay.post, alive=relay.alive)
    await relay.start(endpoint.node, endpoint.siblings.received)
    app[SIP_ENDPOINT] = endpoint
    app[SIP_LISTENERS] = listeners
    app[NOTIFIER] = NotifyService(
        endpoint=endpoint, store=app[STORES].notify, timers=timers,
        rate=config.notify_rate, random_bytes=random_bytes,
    )
    app[REGISTRAR].reachable = app[NOTIFIER].reachable
    originator = app[QUICKCALL].originator = Originator(
        endpoint=endpoint, store=app[STORES].quickcall, timers=timers, gateway=config.quickcall_gateway,
        random_bytes=random_bytes,
    )
    try:
        yield
    finally:
        # Graceful: requests in progress are answered while UDP and the open TCP connections
        # still work; then the connections are closed and this node leaves the relay.
        await endpoint.drain(SHUTDOWN_DRAIN)
        await originator.close()
        await app[NOTIFIER].close()
        endpoint.close_connections()
        await listeners.close()
        await relay.stop()
        await endpoint.close()


async def _metrics_ctx(app: web.Application) -> AsyncIterator[None]:
    """Point the metrics at the services' counters and measure the event loop's lag."""
    metrics = app[METRICS]
    metrics.watch_endpoint(app[SIP_ENDPOINT])
    metrics.watch_registrar(app[REGISTRAR])
    metrics.watch_guard(app[SECURITY])
    metrics.watch_notifier(app[NOTIFIER])
    metrics.watch_relay(app[STORES].relay)
    monitor = asyncio.get_running_loop().create_task(measure_loop_lag(metrics))
    try:
        yield
    finally:
        monitor.cancel()
        await asyncio.gather(monitor, return_exceptions=True)
