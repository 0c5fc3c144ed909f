"""Wiring: builds the store, the services and the HTTP application from a ``Config``.

No globals: everything with a lifetime (the Redis client, an embedded Redis server) is opened in
a ``cleanup_ctx`` and handed to the views through typed ``AppKey``s.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import AsyncIterator

from aiohttp import web

from .accounts.service import AccountService
from .api.errors import error_middleware
from .api.keys import ACCOUNTS, CONFIG, DEVICES, EVENTS, NOTIFIER, QUICKCALL, REGISTRAR
from .api.routes import add_routes
from .config import Config, ConfigError
from .devices.service import DeviceService
from .events.hub import RegistrationEvents
from .notify.service import NotifyService
from .quickcall.service import QuickcallService
from .registrar.policy import RegistrarPolicy
from .registrar.service import RegistrarService
from .sip.digest import NonceSigner
from .sip.transaction import TimerConfig
from .store import Stores, open_stores
from .transport.endpoint import SipEndpoint
from .transport.listen import Listeners, listen

log = logging.getLogger("sipsvc")
STORES = web.AppKey("stores", Stores)
SIP_LISTENERS = web.AppKey("sip_listeners", Listeners)
SIP_ENDPOINT = web.AppKey("sip_endpoint", SipEndpoint)


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


def create_app(config: Config, *, reuse_port: int = 0) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware],
        # Bodies past the limit are refused while reading (answered 400 by the request helper).
        client_max_size=config.max_body_bytes,
    )
    app[CONFIG] = config
    app[REUSE_PORT] = reuse_port
    app.cleanup_ctx.append(_services_ctx)
    app.cleanup_ctx.append(_sip_ctx)
    app.on_shutdown.append(_close_event_streams)
    add_routes(app)
    return app


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
    app[REGISTRAR] = RegistrarService(
        accounts=stores.accounts, devices=stores.devices, bindings=stores.bindings, policy=policy,
        nonces=NonceSigner(secret, config.nonce_lifetime), nonce_lifetime=config.nonce_lifetime,
        random_bytes=secrets.token_bytes, algorithms=config.digest_algorithms,
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


async def _sip_ctx(app: web.Application) -> AsyncIterator[None]:
    """The SIP endpoint and its UDP and TCP listeners on ``config.sip``."""
    config = app[CONFIG]
    timers = TimerConfig(config.t1, config.t2, config.t4)
    endpoint = SipEndpoint(
        timers=timers,
        handlers={"REGISTER": app[REGISTRAR].register},
    )
    try:
        listeners = await listen(endpoint, config.sip.host, config.sip.port,
                                 max_message=config.max_message_bytes,
                                 idle_timeout=config.tcp_idle_timeout, group=app[REUSE_PORT])
    except OSError as exc:
        raise ConfigError(f"sip: cannot listen on {config.sip}: {exc.strerror or exc}") from None
    if app[REUSE_PORT] > 1:
        await endpoint.join_siblings(str(config.data_dir))
    app[SIP_ENDPOINT] = endpoint
    app[SIP_LISTENERS] = listeners
    app[NOTIFIER] = NotifyService(
        endpoint=endpoint, store=app[STORES].notify, timers=timers,
        rate=config.notify_rate, random_bytes=secrets.token_bytes,
    )
    try:
        yield
    finally:
        await app[NOTIFIER].close()
        await listeners.close()
        await endpoint.close()
