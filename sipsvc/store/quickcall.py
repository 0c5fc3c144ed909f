"""What a placed quickcall reads and keeps: the device with its live bindings (as check-sync
reads them), and the call's record, a JSON string with a TTL, so that any node can report a
call and name the node that holds it."""

from __future__ import annotations

import orjson
import redis.asyncio as aioredis

from . import keys
from .notify import RedisNotifyStore, SyncTarget


class RedisQuickcallStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._devices = RedisNotifyStore(redis)

    async def target(self, account_id: str, device_id: str, now: float) -> SyncTarget | None:
        """The device and its live bindings; None when there is no such device."""
        return await self._devices.target(account_id, device_id, now)

    async def save_call(self, account_id: str, call_id: str, record: dict, ttl: int) -> None:
        await self._redis.set(keys.quickcall(account_id, call_id), orjson.dumps(record), ex=ttl)

    async def load_call(self, account_id: str, call_id: str) -> dict | None:
        stored = await self._redis.get(keys.quickcall(account_id, call_id))
        return None if stored is None else orjson.loads(stored)
