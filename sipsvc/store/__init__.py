"""The one store module: every Redis key, script and TTL lives below here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .accounts import RedisAccountStore
from .bans import RedisBanStore
from .bindings import RedisBindingStore
from .claims import Claims
from .connection import Store, open_store
from .devices import RedisDeviceStore
from .notify import RedisNotifyStore
from .quickcall import RedisQuickcallStore
from .registration_events import RegistrationEventFeed
from .relay import NodeRelay
from .scripts import Scripts
from .stats import RedisStats


@dataclass
class Stores:
    """The open store and the typed views the services use."""

    connection: Store
    accounts: RedisAccountStore
    devices: RedisDeviceStore
    bindings: RedisBindingStore
    notify: RedisNotifyStore
    stats: RedisStats
    quickcall: RedisQuickcallStore
    registration_events: RegistrationEventFeed
    bans: RedisBanStore
    relay: NodeRelay

    @property
    def description(self) -> str:
        return self.connection.description

    def start(self) -> None:
        """Start what runs in the background (the auth cache's subscription)."""
        self.devices.auth_cache.start()
        self.bans.cache.start()

    async def close(self) -> None:
        await self.relay.stop()
        await self.devices.auth_cache.stop()
        await self.bans.cache.stop()
        await self.bindings.close()
        await self.connection.close()


def stores_for(connection: Store) -> Stores:
    scripts = Scripts.register(connection.redis)
    claims = Claims(connection.redis, scripts)
    return Stores(
        connection,
        RedisAccountStore(connection.redis, claims),
        RedisDeviceStore(connection.redis, scripts, claims),
        RedisBindingStore(connection.redis, scripts),
        RedisNotifyStore(connection.redis),
        RedisStats(connection.redis),
        RedisQuickcallStore(connection.redis),
        RegistrationEventFeed(connection.redis),
        RedisBanStore(connection.redis, scripts),
        NodeRelay(connection.redis),
    )


async def open_stores(redis_url: str | None, data_dir: Path) -> Stores:
    return stores_for(await open_store(redis_url, data_dir))
