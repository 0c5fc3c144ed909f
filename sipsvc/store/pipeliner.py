"""Automatic pipelining of hot-path script calls (the registrar's one EVALSHA per REGISTER).

Calls made during one turn of the event loop are sent to Redis together, as one pipeline: one
write and one read for the batch instead of one each per call. redis-py spends about 85 µs of
CPU on a lone EVALSHA and about 12–30 µs per command inside a pipeline of 50–5 (measured here,
see ``bench/README.md``), and under load many REGISTERs arrive in the same turn. A lone call
still goes out in the same turn it was made (``call_soon``), so nothing waits for a batch to
fill; only under load, when the last batch left less than ``COALESCE`` ago, does the next wait
for the rest of that millisecond. Results come back in order and each caller gets its own
result or exception.

On Redis Cluster redis-py refuses EVALSHA in a pipeline (the calls of a batch may live on
different nodes), so there each call of the batch is sent on its own, concurrently.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

Call = tuple[AsyncScript, list, list, asyncio.Future]
# At most one batch per this many seconds: under load a batch waits up to 1 ms for company
# (each batch is a write and a read system call, 8 % of a worker's CPU at 3,500 registrations/s
# with batches of one or two); a call after a quiet spell still goes out in the same turn.
COALESCE = 0.001


class Pipeliner:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._pending: list[Call] = []
        self._batches: set[asyncio.Task] = set()
        self._last_flush = float("-inf")

    def run(self, script: AsyncScript, keys: list, args: list) -> "asyncio.Future":
        """EVALSHA ``script`` in the next batch; the future holds its reply."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._pending:
            wait = self._last_flush + COALESCE - loop.time()
            if wait > 0:
                loop.call_later(wait, self._flush)
            else:
                loop.call_soon(self._flush)
        self._pending.append((script, keys, args, future))
        return future

    def _flush(self) -> None:
        self._last_flush = asyncio.get_running_loop().time()
        batch, self._pending = self._pending, []
        task = asyncio.ensure_future(self._send(batch))
        self._batches.add(task)
        task.add_done_callback(self._batches.discard)

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
        async with self._redis.pipeline(transaction=False) as pipe:
            for script, keys, args, _ in batch:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            return await pipe.execute(raise_on_error=False)

    async def close(self) -> None:
        if self._batches:
            await asyncio.wait(list(self._batches), timeout=5)
