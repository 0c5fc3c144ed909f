"""Following one Redis pub/sub channel in the background, through Redis outages.

The auth cache, the ban cache and the node relay each keep one subscription per process. They
share the shape: subscribe, look for a message every ``POLL`` seconds (so a stop is noticed
quickly and the loop closes its own connection), and when Redis fails, say so once per outage
and subscribe again a second later.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Awaitable, Callable

import redis.asyncio as aioredis

from .errors import REDIS_ERRORS

log = logging.getLogger("sipsvc.store")
POLL = 0.05  # seconds between looks for a message (and at the stop flag)
RETRY = 1.0  # seconds before subscribing again after Redis failed

Handler = Callable[[dict | None], "Awaitable[None] | None"]


async def pause(seconds: float, stopping: Callable[[], bool]) -> bool:
    """Sleep ``seconds`` unless ``stopping()`` turns true first; True when it did."""
    for _ in range(int(seconds / POLL)):
        if stopping():
            return True
        await asyncio.sleep(POLL)
    return stopping()


async def follow(redis: aioredis.Redis, channel: str, handle: Handler, *,
                 stopping: Callable[[], bool], paused: str,
                 lost: Callable[[], None] | None = None) -> None:
    """Pass what each look at ``channel`` finds to ``handle`` (a pub/sub message, the
    subscription's confirmation included, or None when nothing came) until ``stopping()``.
    When Redis fails: log "<paused> until Redis pub/sub is back", call ``lost``, and retry."""
    while not stopping():
        pubsub = redis.pubsub()
        try:
            await pubsub.subscribe(channel)
            while not stopping():
                handled = handle(await pubsub.get_message(timeout=POLL))
                if inspect.isawaitable(handled):
                    await handled
        except REDIS_ERRORS as exc:
            log.warning("%s until Redis pub/sub is back: %s", paused, exc)
        finally:
            if lost is not None:
                lost()
            await pubsub.aclose()
        await pause(RETRY, stopping)
