"""Registration events in Redis: the per-account pub/sub channels the binding scripts publish
to, and the reads a listener needs to start from a consistent state.

``save_bindings.lua`` publishes ``register``, ``refresh`` and ``unregister`` in the same atomic
step that changes a device's bindings (and ``save_device.lua`` / ``delete_device.lua`` publish
``unregister`` when a device write drops its registrations), so a subscriber misses nothing
while subscribed. Expiry has no write to publish from: listeners read the account's
``registered`` sorted set (device id -> expiry of its latest binding) to know when to check.

One ``RegistrationEventFeed`` per process holds one pub/sub connection and subscribes to the
channels of the accounts someone in this process is watching; every node does the same, so
events reach API clients whichever node they are connected to.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

import orjson
import redis.asyncio as aioredis
from .errors import REDIS_ERRORS

from . import keys

log = logging.getLogger("sipsvc.store")
POLL = 0.05  # seconds between looks at the wanted channels and the stop flag
RETRY = 1.0  # seconds before reconnecting after Redis pub/sub failed

OnEvent = Callable[[str, dict], None]  # (account id, event)
OnSubscribed = Callable[[str], None]  # account id, once its channel is subscribed
OnLost = Callable[[], None]  # the subscription dropped: events may have been missed


class RegistrationEventFeed:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._wanted: set[str] = set()
        self._confirmed: set[str] = set()  # accounts whose subscription Redis has confirmed
        self._stopping = False
        self._task: asyncio.Task | None = None
        self._on_event: OnEvent = lambda account_id, event: None
        self._on_subscribed: OnSubscribed = lambda account_id: None
        self._on_lost: OnLost = lambda: None

    def start(self, on_event: OnEvent, on_subscribed: OnSubscribed, on_lost: OnLost) -> None:
        self._on_event, self._on_subscribed, self._on_lost = on_event, on_subscribed, on_lost
        self._task = asyncio.get_running_loop().create_task(self._listen())

    async def stop(self) -> None:
        # As in auth_cache: the loop sees the flag and closes its own connection (cancelling
        # inside redis-py can leave the connection locked).
        self._stopping = True
        if self._task is not None:
            _, pending = await asyncio.wait([self._task], timeout=5)
            for task in pending:
                task.cancel()

    def want(self, account_id: str) -> None:
        self._wanted.add(account_id)

    def unwant(self, account_id: str) -> None:
        self._wanted.discard(account_id)

    def subscribed(self, account_id: str) -> bool:
        """Whether the account's channel is subscribed now (Redis confirmed it, and it is not
        being dropped yet): a watcher arriving just as the last one left need not wait."""
        return account_id in self._confirmed

    async def registered(self, account_id: str, now: float) -> dict[str, float]:
        """Device id -> expiry of its latest binding, for the account's registered devices."""
        rows = await self._redis.zrangebyscore(
            keys.registered_devices(account_id), f"({now!r}", "+inf", withscores=True)
        return dict(rows)

    async def expiries(self, account_id: str, device_ids: list[str]) -> list[float | None]:
        """The current expiry of each device's latest binding (None: not registered)."""
        return await self._redis.zmscore(keys.registered_devices(account_id), device_ids)

    async def _sync_subscriptions(self, pubsub, subscribed: set[str]) -> None:
        wanted = set(self._wanted)
        added, removed = wanted - subscribed, subscribed - wanted
        if added:
            await pubsub.subscribe(*(keys.registration_events(a) for a in added))
            subscribed |= added
        if removed:
            self._confirmed -= removed
            await pubsub.unsubscribe(*(keys.registration_events(a) for a in removed))
            subscribed -= removed

    def _dispatch(self, message: dict) -> None:
        account_id = keys.account_of_registration_events(message["channel"])
        if message["type"] == "subscribe":
            if account_id in self._wanted:
                self._confirmed.add(account_id)
            self._on_subscribed(account_id)
        elif message["type"] == "message":
            try:
                event = orjson.loads(message["data"])
            except orjson.JSONDecodeError:
                log.warning("ignored a malformed registration event on %s", message["channel"])
                return
            self._on_event(account_id, event)

    async def _listen(self) -> None:
        while not self._stopping:
            pubsub = self._redis.pubsub()
            subscribed: set[str] = set()
            try:
                while not self._stopping:
                    await self._sync_subscriptions(pubsub, subscribed)
                    if not subscribed:
                        await asyncio.sleep(POLL)
                        continue
                    message = await pubsub.get_message(timeout=POLL)
                    if message is not None:
                        self._dispatch(message)
            except REDIS_ERRORS as exc:
                log.warning("registration events paused until Redis pub/sub is back: %s", exc)
            finally:
                self._confirmed.clear()
                self._on_lost()
                await pubsub.aclose()
            for _ in range(int(RETRY / POLL)):
                if self._stopping:
                    break
                await asyncio.sleep(POLL)
