"""Claims: values unique across accounts (realms, SIP credentials, authn-by-IP addresses).

A claim is one Redis string, ``<holder>|<since>``, taken with a single-key script, so the
check-and-take is atomic on a single server and on Redis Cluster alike. A writer takes the
claims of its new document before saving it and releases the ones it no longer needs after.
If a writer dies between those steps a claim can outlive the value it guarded; such a claim is
*abandoned* and may be taken over once the caller has checked that its holder no longer
uses the value and the claim is older than ``ABANDONED_AFTER`` (so a write still in flight is
never overtaken).
"""

from __future__ import annotations

from typing import Awaitable, Callable

import redis.asyncio as aioredis

from .errors import ValueTakenError
from .scripts import Scripts

ABANDONED_AFTER = 60.0

# Given a claim's holder, True when that holder still uses the claimed value.
HolderCheck = Callable[[str], Awaitable[bool]]


class Claims:
    def __init__(self, redis: aioredis.Redis, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts

    async def holder(self, key: str) -> str | None:
        current = await self._redis.get(key)
        return current.partition("|")[0] if current else None

    async def take(
        self, kind: str, value: str, key: str, claimant: str, now: float,
        holder_uses_value: HolderCheck,
    ) -> None:
        """Take the claim ``key`` for ``claimant`` or raise ``ValueTakenError``."""
        result = await self._scripts.claim(keys=[key], args=[claimant, now, ""])
        if result == "ok":
            return
        holder, _, since = result.partition("|")
        abandoned = now - float(since or 0) > ABANDONED_AFTER and not await holder_uses_value(holder)
        if abandoned:
            result = await self._scripts.claim(keys=[key], args=[claimant, now, result])
            if result == "ok":
                return
            holder = result.partition("|")[0]
        raise ValueTakenError(kind, value, holder)

    async def release(self, key: str, claimant: str) -> None:
        await self._scripts.release(keys=[key], args=[claimant])
