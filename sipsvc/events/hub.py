"""Live registration events for API streams: one hub per process fans the Redis feed out to
the watchers of each account, and turns expiries into events.

Events (each a dict with ``event``, ``device_id``, ``at``):

- ``register``: the device had no live binding and now has one (``expires_at``, ``contacts``);
- ``refresh``: a REGISTER of a registered device (``expires_at`` of its latest binding);
- ``unregister``: a REGISTER removed its last binding, or a device write dropped them
  (``reason``: ``device_changed`` or ``device_deleted``);
- ``expired``: the latest binding's expiry passed with no refresh (``expires_at``, the time
  it expired).

The first three are published by the Redis scripts that change bindings, so every node hears
them. Expiry changes nothing in Redis, so each node finds it for its own watchers: it keeps,
per watched account, the expiry of each registered device (from the snapshot, then from
events), and once one has passed it reads the device's score in the account's ``registered``
set: still past (or gone) is ``expired``; later means a refresh it has not heard of yet.
Nodes need no coordination, and a watcher's stream is the same whichever node serves it.

When the Redis subscription drops, events may be lost: once it is back every watcher of the
account gets a fresh ``snapshot`` (and the expiry view is reloaded), so state is never stale
for longer than the outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable

from ..store.errors import REDIS_ERRORS

from ..store.errors import StoreUnavailableError
from ..store.registration_events import RegistrationEventFeed

log = logging.getLogger("sipsvc.events")
CHECK_EVERY = 1.0  # seconds between expiry checks
SUBSCRIBE_TIMEOUT = 5.0
QUEUE_LIMIT = 10_000  # events a slow watcher may lag behind before its stream is closed


class StreamClosedError(Exception):
    """The watch ended: the service is stopping, or the watcher fell too far behind."""


@dataclass(eq=False)
class Watch:
    """One watcher's view: the snapshot it started from, then events in order."""

    snapshot: dict[str, float]
    at: float
    _queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    _closed: bool = False

    def push(self, event: dict | None) -> None:
        if self._closed:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.close()

    def close(self) -> None:
        """End the stream (None wakes a waiting ``next``)."""
        self._closed = True
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)

    async def next(self, timeout: float) -> dict | None:
        """The next event, or None when ``timeout`` passes without one."""
        if self._closed:
            raise StreamClosedError()
        try:
            event = await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None
        if event is None or self._closed:
            raise StreamClosedError()
        return event


@dataclass(eq=False)
class _Account:
    watches: set[Watch] = field(default_factory=set)
    expiries: dict[str, float] = field(default_factory=dict)  # device id -> latest expiry
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    resync: bool = False  # the subscription dropped since the watchers' snapshots


class RegistrationEvents:
    def __init__(self, feed: RegistrationEventFeed, *, clock: Callable[[], float] = time.time,
                 check_every: float = CHECK_EVERY) -> None:
        self._feed = feed
        self._clock = clock
        self._check_every = check_every
        self._accounts: dict[str, _Account] = {}
        self._checker: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    def start(self) -> None:
        self._feed.start(self._on_event, self._on_subscribed, self._on_lost)
        self._checker = asyncio.get_running_loop().create_task(self._check_expiries())

    def close_streams(self) -> None:
        """End every watcher's stream (at shutdown, so open streams do not hold it up)."""
        for account in self._accounts.values():
            for watch in account.watches:
                watch.close()

    async def stop(self) -> None:
        self.close_streams()
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
        await self._feed.stop()

    @contextlib.asynccontextmanager
    async def watch(self, account_id: str) -> AsyncIterator[Watch]:
        """Watch an account: subscribes (waiting until Redis confirms), then reads the
        snapshot. Events heard meanwhile are queued behind it, so none is lost (one may be
        seen twice, which changes no state)."""
        account = self._accounts.get(account_id)
        if account is None:
            account = self._accounts[account_id] = _Account()
            if self._feed.subscribed(account_id):
                account.subscribed.set()
        watch = Watch({}, 0.0)
        account.watches.add(watch)
        self._feed.want(account_id)
        try:
            try:
                await asyncio.wait_for(account.subscribed.wait(), SUBSCRIBE_TIMEOUT)
            except asyncio.TimeoutError:
                raise StoreUnavailableError("no Redis pub/sub subscription") from None
            watch.at = self._clock()
            watch.snapshot = await self._feed.registered(account_id, watch.at)
            for device_id, expires_at in watch.snapshot.items():
                account.expiries[device_id] = max(expires_at, account.expiries.get(device_id, 0.0))
            yield watch
        finally:
            account.watches.discard(watch)
            if not account.watches and self._accounts.get(account_id) is account:
                del self._accounts[account_id]
                self._feed.unwant(account_id)

    # Feed callbacks (run on the loop, never block).

    def _on_event(self, account_id: str, event: dict) -> None:
        account = self._accounts.get(account_id)
        if account is None:
            return
        device_id = event.get("device_id")
        if event.get("event") in ("register", "refresh"):
            account.expiries[device_id] = float(event.get("expires_at", 0))
        elif event.get("event") == "unregister":
            account.expiries.pop(device_id, None)
        self._broadcast(account, event)

    def _on_subscribed(self, account_id: str) -> None:
        account = self._accounts.get(account_id)
        if account is None:
            return
        account.subscribed.set()
        if account.resync:
            account.resync = False
            task = asyncio.get_running_loop().create_task(self._resync(account_id, account))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _on_lost(self) -> None:
        for account in self._accounts.values():
            account.subscribed.clear()
            account.resync = True

    async def _resync(self, account_id: str, account: _Account) -> None:
        try:
            now = self._clock()
            snapshot = await self._feed.registered(account_id, now)
        except REDIS_ERRORS as exc:
            log.warning("registration snapshot after a reconnect failed: %s", exc)
            account.resync = True
            return
        account.expiries = dict(snapshot)
        self._broadcast(account, {"event": "snapshot", "at": now, "registered": snapshot_rows(snapshot)})

    @staticmethod
    def _broadcast(account: _Account, event: dict) -> None:
        for watch in account.watches:
            watch.push(event)

    async def _check_expiries(self) -> None:
        while True:
            await asyncio.sleep(self._check_every)
            try:
                for account_id, account in list(self._accounts.items()):
                    await self._expire(account_id, account)
            except REDIS_ERRORS as exc:
                log.warning("registration expiry check failed (retried): %s", exc)

    async def _expire(self, account_id: str, account: _Account) -> None:
        now = self._clock()
        due = {d: e for d, e in account.expiries.items() if e <= now}
        if not due:
            return
        scores = await self._feed.expiries(account_id, list(due))
        for (device_id, expired_at), score in zip(due.items(), scores):
            if account.expiries.get(device_id) != expired_at:
                continue  # an event changed it while we read
            if score is not None and score > now:
                account.expiries[device_id] = score  # refreshed; its event is on its way
                continue
            del account.expiries[device_id]
            self._broadcast(account, {"event": "expired", "device_id": device_id,
                                      "expires_at": expired_at, "at": now})


def snapshot_rows(snapshot: dict[str, float]) -> list[dict]:
    """A snapshot as the stream shows it: registered devices in id order, with expiry."""
    return [{"device_id": d, "expires_at": snapshot[d]} for d in sorted(snapshot)]
