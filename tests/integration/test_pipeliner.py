"""The registrar's auto-pipelining against a real Redis: calls of one loop turn share a batch,
a call after a quiet spell goes out at once, and under load a batch waits at most ``COALESCE``
for company (fewer write and read system calls); dropped connections, a stalled Redis and the
command timeout. The tests that kill connections or pause the server use a private
redis-server, never the shared test Redis."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import redis.asyncio as aioredis
from redis.exceptions import TimeoutError as RedisTimeoutError

from sipsvc.store.pipeliner import COALESCE, MAX_BATCHES, Pipeliner
from tests.integration import redis_servers

ECHO = "return ARGV[1]"


@contextlib.asynccontextmanager
async def pipelining(url: str, pipeliner_class: type = Pipeliner, **options):
    """(pipeliner, the ECHO script loaded, an admin client) on the Redis at ``url``."""
    redis = aioredis.Redis.from_url(url, decode_responses=True, **options)
    pipeliner = pipeliner_class(redis)
    admin = aioredis.Redis.from_url(url)
    try:
        script = redis.register_script(ECHO)
        await script(args=["load"])  # loaded: EVALSHA works from the first batch
        yield pipeliner, script, admin
    finally:
        await pipeliner.close()
        await redis.aclose()
        await admin.aclose()


@pytest.fixture
def private_redis_url(tmp_path):
    server = redis_servers.plain(tmp_path / "redis", appendonly=False).start()
    yield server.url
    server.stop()


class _CountingPipeliner(Pipeliner):
    """The real pipeliner; it notes each batch it sends to Redis and when."""

    def __init__(self, redis: aioredis.Redis) -> None:
        super().__init__(redis)
        self.batches: list[tuple[float, int]] = []

    async def _pipeline(self, batch):
        self.batches.append((asyncio.get_running_loop().time(), len(batch)))
        return await super()._pipeline(batch)


async def test_batches_share_a_turn_and_are_spaced_under_load(redis_url):
    async with pipelining(redis_url, _CountingPipeliner) as (pipeliner, script, _):
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


async def test_a_batch_on_a_connection_redis_dropped_is_sent_again(private_redis_url):
    async with pipelining(private_redis_url) as (pipeliner, script, admin):
        assert await pipeliner.run(script, [], ["before"]) == "before"  # its connection is idle now
        await admin.client_kill_filter(_type="normal", skipme=True)  # as a Redis restart would
        assert await pipeliner.run(script, [], ["after"]) == "after"


class _PeakPipeliner(Pipeliner):
    """The real pipeliner; it notes the most batches it had in flight at once."""

    def __init__(self, redis: aioredis.Redis) -> None:
        super().__init__(redis)
        self.in_flight = self.peak = 0

    async def _exchange(self, commands):
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await super()._exchange(commands)
        finally:
            self.in_flight -= 1


async def test_a_stalled_redis_holds_a_bounded_number_of_batches(private_redis_url):
    async with pipelining(private_redis_url, _PeakPipeliner) as (pipeliner, script, admin):
        await admin.execute_command("CLIENT", "PAUSE", "300", "ALL")  # Redis answers nothing for 0.3 s
        calls = []
        for n in range(4 * MAX_BATCHES):  # a call every 2 ms: each would be a batch of its own
            calls.append(pipeliner.run(script, [], [str(n)]))
            await asyncio.sleep(0.002)
        replies = await asyncio.wait_for(asyncio.gather(*calls), 5)
        assert replies == [str(n) for n in range(4 * MAX_BATCHES)]
        assert pipeliner.peak == MAX_BATCHES


async def test_no_answer_within_the_command_timeout_fails_the_batch_and_the_next_one_works(private_redis_url):
    async with pipelining(private_redis_url, socket_timeout=0.2) as (pipeliner, script, admin):
        await admin.execute_command("CLIENT", "PAUSE", "600", "ALL")
        with pytest.raises(RedisTimeoutError):
            await pipeliner.run(script, [], ["stalled"])
        await asyncio.sleep(0.6)  # the pause is over
        assert await pipeliner.run(script, [], ["after"]) == "after"
