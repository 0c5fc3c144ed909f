"""What check-sync reads: a device's document with its live bindings (one, or many in pipelined
batches), and the account's bulk-sync lock, a key with a TTL so that it holds across nodes and
frees itself if its holder dies."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
import redis.asyncio as aioredis
from redis.exceptions import LockError

from ..registrar.policy import Binding
from . import keys
from .bindings import load_binding

BATCH = 500  # devices read per pipelined round trip


@dataclass(frozen=True)
class SyncTarget:
    device_id: str
    doc: dict = field(repr=False)
    bindings: list[Binding]


def _target(device_id: str, doc: str | None, stored: list[str], now: float) -> SyncTarget | None:
    if doc is None:
        return None
    live = (b for b in map(load_binding, stored) if b.expires_at > now)
    return SyncTarget(device_id, orjson.loads(doc), sorted(live, key=lambda b: b.registered_at))


class BulkLock:
    """The account's bulk-sync lock (redis-py's token lock: only its holder extends or frees it)."""

    def __init__(self, redis: aioredis.Redis, account_id: str, ttl: float) -> None:
        self._lock = redis.lock(keys.sync_lock(account_id), timeout=ttl, blocking=False)

    async def acquire(self) -> bool:
        return await self._lock.acquire()

    async def refresh(self) -> None:
        await self._lock.reacquire()

    async def release(self) -> None:
        try:
            await self._lock.release()
        except LockError:  # it expired meanwhile (and may be someone else's by now)
            pass


class RedisNotifyStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def target(self, account_id: str, device_id: str, now: float) -> SyncTarget | None:
        """The device and its live bindings; None when there is no such device."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.device(account_id, device_id), "doc")
            pipe.hvals(keys.bindings(account_id, device_id))
            doc, stored = await pipe.execute()
        return _target(device_id, doc, stored, now)

    async def registered(self, account_id: str, now: float) -> list[str]:
        """Ids of the account's devices with a live binding, sorted."""
        ids = await self._redis.zrangebyscore(keys.registered_devices(account_id), f"({now!r}", "+inf")
        return sorted(ids)

    async def targets(self, account_id: str, device_ids: list[str], now: float) -> list[SyncTarget]:
        """``target`` for many devices, ``BATCH`` per round trip; missing devices are left out."""
        out: list[SyncTarget] = []
        for start in range(0, len(device_ids), BATCH):
            chunk = device_ids[start:start + BATCH]
            async with self._redis.pipeline(transaction=False) as pipe:
                for device_id in chunk:
                    pipe.hget(keys.device(account_id, device_id), "doc")
                    pipe.hvals(keys.bindings(account_id, device_id))
                results = await pipe.execute()
            for index, device_id in enumerate(chunk):
                found = _target(device_id, results[2 * index], results[2 * index + 1], now)
                if found is not None:
                    out.append(found)
        return out

    def bulk_lock(self, account_id: str, ttl: float) -> BulkLock:
        return BulkLock(self._redis, account_id, ttl)
