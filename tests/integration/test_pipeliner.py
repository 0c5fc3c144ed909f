"""The registrar's auto-pipelining against a real Redis: calls of one loop turn share a batch,
a call after a quiet spell goes out at once, and under load a batch waits at most ``COALESCE``
for company (fewer write and read system calls)."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from sipsvc.store.pipeliner import COALESCE, Pipeliner

ECHO = "return ARGV[1]"


class _CountingPipeliner(Pipeliner):
    """The real pipeliner; it notes each batch it sends to Redis and when."""

    def __init__(self, redis: aioredis.Redis) -> None:
        super().__init__(redis)
        self.batches: list[tuple[float, int]] = []

    async def _pipeline(self, batch):
        self.batches.append((asyncio.get_running_loop().time(), len(batch)))
        return await super()._pipeline(batch)


async def test_batches_share_a_turn_and_are_spaced_under_load(redis_url):
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        script = redis.register_script(ECHO)
        await script(args=["load"])  # loaded: EVALSHA works from the first batch
        pipeliner = _CountingPipeliner(redis)
        loop = asyncio.get_running_loop()

        # One turn: three calls, one batch, each caller its own reply.
        replies = await asyncio.gather(*(pipeliner.run(script, [], [str(n)]) for n in range(3)))
        assert replies == ["0", "1", "2"] and [size for _, size in pipeliner.batches] == [3]

        # After a quiet spell a lone call leaves in the turn it was made.
        await asyncio.sleep(5 * COALESCE)
        made = loop.time()
        assert await pipeliner.run(script, [], ["alone"]) == "alone"
        assert pipeliner.batches[-1][0] - made < COALESCE * 0.8

        # Right after that batch, the next one waits for the rest of the millisecond.
        assert await pipeliner.run(script, [], ["soon"]) == "soon"
        (first, _), (second, _) = pipeliner.batches[-2:]
        assert second - first >= COALESCE * 0.9
    finally:
        await redis.aclose()
