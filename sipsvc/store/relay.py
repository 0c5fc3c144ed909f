"""Messages between sipsvc nodes over Redis pub/sub, and which nodes are alive.

Several nodes sharing one Redis act as one service, but a phone registered over TCP can only be
reached through the process holding its connection, and the answer to a request comes back on
that connection whichever process sent the request. The transport names the node that must act
(in TCP connection ids, Via branches and dialog tags); when that node is not a worker beside us
the message goes to it here: each node subscribes to its own channel (``keys.node_channel``) and
any node can PUBLISH to it. The payload is opaque to the store (the transport's framing).

Liveness: every node puts itself in ``keys.nodes`` (a sorted set scored with Redis's own clock,
so hosts' clocks need not agree) every ``HEARTBEAT`` seconds and reads back the nodes seen in
the last ``DEAD_AFTER`` seconds. A node that dies stops beating and drops out of that set within
``DEAD_AFTER`` (plus one heartbeat), so its TCP bindings are reported unreachable instead of
timing out; one that stops cleanly removes itself at once. A PUBLISH that no one received
also marks its node dead here until its next heartbeat is seen.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Callable

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from .errors import REDIS_ERRORS

from . import keys
from .subscription import follow, pause

log = logging.getLogger("sipsvc.store")
HEARTBEAT = 1.0  # seconds between two heartbeats (and two reads of the live nodes)
DEAD_AFTER = 3.0  # seconds without a heartbeat after which a node counts as dead
FORGET_AFTER = 3600.0  # seconds after which a dead node's entry is removed

OnMessage = Callable[[bytes], None]


class NodeRelay:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self.node = ""
        self._live: set[str] = set()
        self._on_message: OnMessage = lambda data: None
        self._tasks: list[asyncio.Task] = []
        self._pending: list[tuple[str, str]] = []  # (node, payload) to publish this turn
        self._sending: set[asyncio.Task] = set()
        self._stopping = False
        self.counters: Counter[str] = Counter()

    async def start(self, node: str, on_message: OnMessage) -> None:
        """Join as ``node``: beat once (so the live set is known before we serve), then keep
        beating and pass each message for us to ``on_message``."""
        self.node, self._on_message = node, on_message
        try:
            await self._beat()
        except REDIS_ERRORS as exc:
            log.warning("node heartbeat failed (retrying): %s", exc)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._listen()), loop.create_task(self._heartbeats())]

    def alive(self, node: str) -> bool:
        """Whether ``node`` beat within the last ``DEAD_AFTER`` seconds (as last seen)."""
        return node == self.node or node in self._live

    def post(self, node: str, data: bytes) -> None:
        """Send ``data`` to ``node``'s channel, in the background with the other messages of this
        turn of the loop (one pipeline); dropped, logged and counted if Redis fails."""
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        # latin-1 maps every byte to one character and back: the payload survives the client's
        # text decoding unchanged.
        self._pending.append((node, data.decode("latin-1")))

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._publish(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _publish(self, batch: list[tuple[str, str]]) -> None:
        try:
            if isinstance(self._redis, RedisCluster):  # PUBLISH has no slot to pipeline by
                receivers = await asyncio.gather(
                    *(self._redis.publish(keys.node_channel(node), text) for node, text in batch))
            else:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for node, text in batch:
                        pipe.publish(keys.node_channel(node), text)
                    receivers = await pipe.execute()
        except REDIS_ERRORS as exc:
            self.counters["relay_failed"] += len(batch)
            log.warning("could not relay %d message(s) to other nodes: %s", len(batch), exc)
            return
        for (node, _), heard in zip(batch, receivers):
            if heard:
                self.counters["relayed"] += 1
            else:
                self.counters["relay_unheard"] += 1
                self._live.discard(node)

    async def _beat(self) -> None:
        seconds, micros = await self._redis.time()
        now = seconds + micros / 1e6
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(keys.nodes(), {self.node: now})
            pipe.zremrangebyscore(keys.nodes(), "-inf", f"({now - FORGET_AFTER!r}")
            pipe.zrangebyscore(keys.nodes(), f"({now - DEAD_AFTER!r}", "+inf")
            *_, live = await pipe.execute()
        self._live = set(live)

    async def _heartbeats(self) -> None:
        failing = False
        while not self._stopping:
            if await pause(HEARTBEAT, lambda: self._stopping):
                return
            try:
                await self._beat()
                failing = False
            except REDIS_ERRORS as exc:
                if not failing:  # once per outage; the last known live set stays in use
                    log.warning("node heartbeat failed (retrying): %s", exc)
                failing = True

    async def _listen(self) -> None:
        await follow(self._redis, keys.node_channel(self.node), self._received,
                     stopping=lambda: self._stopping, paused="node relay paused")

    def _received(self, message: dict | None) -> None:
        if message is not None and message["type"] == "message":
            self._deliver(message["data"])

    def _deliver(self, data: str | bytes) -> None:
        try:
            self._on_message(data.encode("latin-1") if isinstance(data, str) else data)
        except Exception:  # noqa: BLE001 - one bad message must not stop the relay
            log.exception("a relayed message could not be handled")

    async def stop(self) -> None:
        """Leave: stop listening and beating, and take this node out of the live set so the
        others report its TCP bindings unreachable at once."""
        self._stopping = True
        if self._sending:
            await asyncio.wait(list(self._sending), timeout=2)
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=5)
            for task in pending:
                task.cancel()
        if self.node:
            try:
                await self._redis.zrem(keys.nodes(), self.node)
            except REDIS_ERRORS:
                pass  # it drops out by itself after DEAD_AFTER
