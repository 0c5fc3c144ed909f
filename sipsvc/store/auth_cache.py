"""A process-local replica of the registrar's auth records, kept exact by Redis pub/sub.

Every REGISTER needs the auth record of the device behind a SIP claim (credentials, or source
address). A phone re-registers about once an hour, so a cache filled on demand would miss on
nearly every REGISTER: once subscribed, each process loads every record (in batches, in the
background) and then serves them from memory, saving two Redis round trips per REGISTER.
Every device write publishes, in the same script that changes the device, the claim keys it
touched; each process drops those entries and reloads them in the background, in batches, so
the replica stays complete for devices created after it started too (a REGISTER that comes
before the reload loads its record itself). While the subscription is
down (at start, after a Redis blip) the replica is bypassed and emptied, so a missed message
can never leave a stale password in use; entries also expire after ``MAX_AGE`` as a last resort.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import AsyncIterator, Awaitable, Callable

import redis.asyncio as aioredis
from .errors import REDIS_ERRORS

from . import keys
from .subscription import follow

log = logging.getLogger("sipsvc.store")
MAX_AGE = 6 * 3600.0
MAX_ENTRIES = 2_000_000
RELOAD_BATCH = 500  # invalidated records reloaded per round trip
RELOAD_BACKLOG = 100_000  # past this many waiting, records are loaded on demand only

Loader = Callable[[str], Awaitable[dict | None]]
BulkLoader = Callable[[list[str]], Awaitable[dict[str, dict | None]]]
ClaimBatches = Callable[[], AsyncIterator[list[str]]]


class SipAuthCache:
    def __init__(self, redis: aioredis.Redis, load: Loader, load_many: BulkLoader,
                 claim_batches: ClaimBatches) -> None:
        self._redis = redis
        self._load = load
        self._load_many = load_many
        self._claim_batches = claim_batches
        self._preloading: asyncio.Task | None = None
        self._loading: dict[str, asyncio.Future] = {}
        self.preloaded = False  # every record present when the subscription started is in memory
        self._entries: dict[str, tuple[dict | None, float]] = {}
        self._versions: dict[str, int] = {}  # bumped by invalidations, to spot loads they raced
        self._stale: set[str] = set()  # invalidated claims waiting for the background reload
        self._reloading: asyncio.Task | None = None
        self._live = False
        self._stopping = False
        self._task: asyncio.Task | None = None

    async def get(self, claim_key: str) -> dict | None:
        if not self._live:
            return await self._load(claim_key)
        known, record = self.known(claim_key)
        if known:
            return record
        # One load per key at a time: a burst of REGISTERs for one record (or one source
        # address) must not become a burst of identical Redis reads.
        pending = self._loading.get(claim_key)
        if pending is not None:
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self._loading[claim_key] = future
        try:
            version = self._versions.get(claim_key, 0)
            value = await self._load(claim_key)
            if self._live and self._versions.get(claim_key, 0) == version:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[claim_key] = (value, time.monotonic() + MAX_AGE)
            future.set_result(value)
            return value
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else needs to
            raise
        finally:
            del self._loading[claim_key]

    def known(self, claim_key: str) -> tuple[bool, dict | None]:
        """(True, record) when the replica holds a current entry for ``claim_key`` (the record
        may be None: no device holds the claim); (False, None) when only ``get`` can tell."""
        if self._live:
            entry = self._entries.get(claim_key)
            if entry is not None and entry[1] > time.monotonic():
                return True, entry[0]
        return False, None

    def invalidate(self, claim_key: str) -> None:
        self._entries.pop(claim_key, None)
        self._versions[claim_key] = self._versions.get(claim_key, 0) + 1
        if len(self._versions) > MAX_ENTRIES:
            self._versions.clear()
            self._entries.clear()
        if self._live and not self._stopping and len(self._stale) < RELOAD_BACKLOG:
            self._stale.add(claim_key)
            if self._reloading is None:
                self._reloading = asyncio.get_running_loop().create_task(self._reload())

    async def _reload(self) -> None:
        """Load the invalidated records again, a batch per round trip (a burst of device
        writes, such as provisioning a site, becomes a few reads)."""
        try:
            await asyncio.sleep(0)  # let the invalidations of this turn join the first batch
            while self._stale and self._live and not self._stopping:
                await self._load_batch([self._stale.pop() for _ in range(min(len(self._stale), RELOAD_BATCH))])
        except REDIS_ERRORS as exc:
            log.warning("auth records not reloaded (loaded on demand instead): %s", exc)
            self._stale.clear()
        finally:
            self._reloading = None

    def _go_dark(self) -> None:
        self._live = False
        self.preloaded = False
        self._entries.clear()
        self._stale.clear()

    async def _load_batch(self, batch: list[str]) -> None:
        """Load ``batch`` into the replica in one round trip. An invalidation racing the load
        wins (that key is loaded again later), and so does an entry a REGISTER loaded meanwhile."""
        versions = {key: self._versions.get(key, 0) for key in batch}
        values = await self._load_many(batch)
        until = time.monotonic() + MAX_AGE
        for key, value in values.items():
            if self._live and self._versions.get(key, 0) == versions[key] and key not in self._entries:
                self._entries[key] = (value, until)

    async def _preload(self) -> None:
        """Load every record, batch by batch."""
        try:
            async for batch in self._claim_batches():
                if not self._live or self._stopping:
                    return
                await self._load_batch(batch)
            self.preloaded = self._live
        except REDIS_ERRORS as exc:
            log.warning("auth records not preloaded (loaded on demand instead): %s", exc)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._listen())

    async def stop(self) -> None:
        # The loop polls this flag every subscription.POLL seconds and closes its connection itself:
        # cancelling it inside redis-py can leave the connection locked, which then blocks
        # closing the pool. Cancel only as a last resort.
        self._stopping = True
        tasks = [task for task in (self._task, self._preloading, self._reloading) if task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=5)
            for task in pending:
                task.cancel()

    async def _listen(self) -> None:
        await follow(self._redis, keys.AUTH_CHANNEL, self._handle, stopping=lambda: self._stopping,
                     paused="auth cache off", lost=self._go_dark)

    def _handle(self, message: dict | None) -> None:
        if message is None:
            return
        if message["type"] == "subscribe":
            self._entries.clear()
            self._live = True
            self._preloading = asyncio.get_running_loop().create_task(self._preload())
        elif message["type"] == "message":
            self.invalidate(message["data"])
