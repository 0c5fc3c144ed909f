"""Automatic pipelining of hot-path script calls (the registrar's one EVALSHA per REGISTER).

Calls made during one turn of the event loop are sent to Redis together, as one pipeline: one
write and one read for the batch instead of one each per call. A lone call still goes out in the
same turn it was made (``call_soon``), so nothing waits for a batch to fill; only under load,
when the last batch left less than ``COALESCE`` ago, does the next wait for the rest of that
interval. Results come back in order and each caller gets its own result or exception.

Batches go out on connections of the pipeliner's own (made by the client's pool, so with its
address, credentials, TLS and Sentinel lookup), written and read directly: redis-py's pipeline
object costs about 50 µs of CPU per batch on top (bench/README.md), and at most
``MAX_BATCHES`` batches are in flight, so a stalled Redis holds a few connections, not
thousands. A batch that meets a broken connection (Redis restarted, or failed over) is sent once
more on a new one, as redis-py's own retry does.

On Redis Cluster redis-py refuses EVALSHA in a pipeline (the calls of a batch may live on
different nodes), so there each call of the batch is sent on its own, concurrently.
"""

from __future__ import annotations

import asyncio
import math

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError, NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Call = tuple[AsyncScript, list, list, asyncio.Future]
# At most one batch per this many seconds: under load a batch waits up to 2 ms for company
# (each batch is a write and a read system call, and the write wakes Redis: 5-8 % of a worker's
# CPU at 3,500 registrations/s with batches of one or two; 2 ms instead of 1 ms took 7-10 % off
# the CPU at 2,000-3,000/s); a call after a quiet spell still goes out in the same turn.
COALESCE = 0.002
MAX_BATCHES = 16  # batches in flight at once, each on a connection of its own


class Pipeliner:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._pending: list[Call] = []
        self._scheduled = False
        self._batches: set[asyncio.Task] = set()
        self._idle: list[AbstractConnection] = []  # our connections not sending a batch now
        self._last_flush = float("-inf")

    def run(self, script: AsyncScript, keys: list, args: list) -> "asyncio.Future":
        """EVALSHA ``script`` in the next batch; the future holds its reply."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((script, keys, args, future))
        if not self._scheduled:
            self._schedule()
        return future

    def _schedule(self) -> None:
        self._scheduled = True
        loop = asyncio.get_running_loop()
        wait = self._last_flush + COALESCE - loop.time()
        if wait > 0:
            loop.call_later(wait, self._flush)
        else:
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if not self._pending or len(self._batches) >= MAX_BATCHES:
            return  # nothing to send, or the next batch to finish sends it
        self._last_flush = asyncio.get_running_loop().time()
        batch, self._pending = self._pending, []
        task = asyncio.ensure_future(self._send(batch))
        self._batches.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self._batches.discard(task)
        if self._pending and not self._scheduled:
            self._schedule()

    async def _send(self, batch: list[Call]) -> None:
        try:
            replies = await self._execute(batch)
        except BaseException as exc:  # noqa: BLE001 - every caller hears of a failed batch
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (*_, future), reply in zip(batch, replies):
            if future.done():  # the caller gave up (cancelled)
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _execute(self, batch: list[Call]) -> list:
        if isinstance(self._redis, RedisCluster):  # each script reloads itself after NOSCRIPT
            return await asyncio.gather(*(script(keys=keys, args=args) for script, keys, args, _ in batch),
                                        return_exceptions=True)
        replies = await self._pipeline(batch)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:  # Redis restarted or failed over: load the scripts, then send those again
            for script in {id(batch[i][0]): batch[i][0] for i in missing}.values():
                script.sha = await self._redis.script_load(script.script)
            for i, reply in zip(missing, await self._pipeline([batch[i] for i in missing])):
                replies[i] = reply
        return replies

    async def _pipeline(self, batch: list[Call]) -> list:
        commands = [("EVALSHA", script.sha, len(keys), *keys, *args) for script, keys, args, _ in batch]
        try:
            return await self._exchange(commands)
        except RedisConnectionError:  # a connection Redis dropped (restart, failover): once more
            return await self._exchange(commands)

    async def _exchange(self, commands: list[tuple]) -> list:
        """Write ``commands`` on one of our connections and read their replies (an error reply
        in its place); a connection that failed midway is closed, never reused."""
        connection = self._idle.pop() if self._idle else self._redis.connection_pool.make_connection()
        try:
            await connection.connect()  # at once when it is connected already
            await connection.send_packed_command(connection.pack_commands(commands), check_health=False)
            replies: list = []
            # One deadline for the batch's replies (the connection's command timeout), rather
            # than a timer per reply.
            async with asyncio.timeout(connection.socket_timeout):
                for _ in commands:
                    try:
                        replies.append(await connection.read_response(timeout=math.inf))
                    except ResponseError as exc:  # the reply was read whole: the stream is in step
                        replies.append(exc)
        except TimeoutError:
            await connection.disconnect(nowait=True)
            raise RedisTimeoutError(f"no answer from Redis within {connection.socket_timeout} s") from None
        except BaseException:
            await connection.disconnect(nowait=True)
            raise
        self._idle.append(connection)
        return replies

    async def close(self) -> None:
        if self._batches:
            await asyncio.wait(list(self._batches), timeout=5)
        for connection in self._idle:
            await connection.disconnect()
        self._idle.clear()
