"""What the health checks and the metrics read from Redis: a bounded ping, and how many devices
are registered across every account, counted at scrape time.

The count is one ZCOUNT per account over its registered-devices index (``keys.registered_devices``,
scored by expiry), pipelined; the accounts come from ``keys.account_ids``, which account creation
maintains. Accounts created before that set existed are added once, by a SCAN, by the first
process that needs the set; a marker key records that it was done.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from . import keys

BATCH = 1000  # commands per pipeline round trip


class RedisStats:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def ping(self, timeout: float) -> None:
        """Return once Redis answers PING. Raises TimeoutError after ``timeout`` seconds, or the
        client's error (RedisError, OSError) when it cannot connect."""
        async with asyncio.timeout(timeout):
            await self._redis.ping()

    async def registered_devices(self, now: float) -> int:
        """Devices with at least one live binding, over every account."""
        account_ids = await self._account_ids()
        total = 0
        for start in range(0, len(account_ids), BATCH):
            async with self._redis.pipeline(transaction=False) as pipe:
                for account_id in account_ids[start:start + BATCH]:
                    pipe.zcount(keys.registered_devices(account_id), f"({now!r}", "+inf")
                total += sum(await pipe.execute())
        return total

    async def _account_ids(self) -> list[str]:
        if not await self._redis.exists(keys.account_ids_complete()):
            await self._index_existing_accounts()
        return sorted(await self._redis.smembers(keys.account_ids()))

    async def _index_existing_accounts(self) -> None:
        found: list[str] = []
        async for key in self._redis.scan_iter(match=keys.ACCOUNT_PATTERN, count=BATCH):
            found.append(keys.account_id_of(key))
            if len(found) >= BATCH:
                await self._redis.sadd(keys.account_ids(), *found)
                found.clear()
        if found:
            await self._redis.sadd(keys.account_ids(), *found)
        await self._redis.set(keys.account_ids_complete(), "1")
