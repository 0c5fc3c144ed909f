"""Registrations: each device's bindings, and the account's index of registered devices.

Both live under the account's hash tag, so one script applies a REGISTER (ordering checks,
contact limit, nonce-count replay guard, expiry) atomically. A binding counts exactly while
``now < expires_at``: readers filter by time, the hash carries a TTL and the index is trimmed
on writes, so nothing depends on a sweeper.
"""

from __future__ import annotations

import orjson
import redis.asyncio as aioredis

from ..registrar.errors import RegistrarError, RegistrarErrorCode
from ..registrar.policy import Binding, RegisterPlan
from . import keys
from .pipeliner import Pipeliner
from .scripts import Scripts

_REJECTIONS = {
    "out_of_order": RegistrarErrorCode.OUT_OF_ORDER,
    "too_many": RegistrarErrorCode.TOO_MANY_CONTACTS,
}


class NonceReplayError(Exception):
    """The digest nonce count was not higher than one already seen for that nonce."""


def _dump(binding: Binding) -> str:
    return orjson.dumps(binding).decode()  # orjson serialises dataclasses natively (and fast)


def _load(text: str) -> Binding:
    data = orjson.loads(text)
    data["path"] = tuple(data.get("path") or ())
    return Binding(**data)


load_binding = _load  # for the other store modules


class RedisBindingStore:
    def __init__(self, redis: aioredis.Redis, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts
        self._pipeliner = Pipeliner(redis)

    async def apply(self, account_id: str, device_id: str, plan: RegisterPlan, *, now: float,
                    max_contacts: int, nonce: str = "", nonce_count: int = 0,
                    nonce_lifetime: int = 0) -> list[Binding]:
        """Apply a REGISTER; returns the device's current bindings. Raises RegistrarError
        (out of order, too many contacts) or NonceReplayError, changing nothing."""
        args: list = [
            device_id, repr(now), plan.call_id, plan.cseq, "1" if plan.remove_all else "0",
            max_contacts, nonce_count, max(nonce_lifetime, 1),
        ]
        for binding in plan.bindings:
            args += [binding.id, _dump(binding), repr(binding.expires_at)]
        result = await self._pipeliner.run(
            self._scripts.save_bindings,
            [keys.bindings(account_id, device_id), keys.registered_devices(account_id),
             keys.nonce_count(account_id, nonce or "-"), keys.registration_events(account_id)],
            args,
        )
        status = result[0]
        if status == "replay":
            raise NonceReplayError()
        if status in _REJECTIONS:
            raise RegistrarError(_REJECTIONS[status])
        return sorted((_load(text) for text in result[1:]), key=lambda b: b.registered_at)

    async def bindings(self, account_id: str, device_id: str, now: float) -> list[Binding]:
        stored = await self._redis.hvals(keys.bindings(account_id, device_id))
        return sorted((b for b in map(_load, stored) if b.expires_at > now), key=lambda b: b.registered_at)

    async def registered(self, account_id: str, now: float) -> list[str]:
        """Ids of the account's devices with at least one live binding."""
        return await self._redis.zrangebyscore(keys.registered_devices(account_id), f"({now!r}", "+inf")

    async def registered_among(self, account_id: str, device_ids: list[str], now: float) -> set[str]:
        if not device_ids:
            return set()
        scores = await self._redis.zmscore(keys.registered_devices(account_id), device_ids)
        return {i for i, score in zip(device_ids, scores) if score is not None and score > now}

    async def close(self) -> None:
        """Let REGISTERs already sent to Redis get their answers."""
        await self._pipeliner.close()

    async def nonce_secret(self, candidate: bytes) -> bytes:
        """The digest nonce secret every node shares: the first node's candidate wins."""
        await self._redis.set(keys.nonce_secret(), candidate.hex(), nx=True)
        return bytes.fromhex(await self._redis.get(keys.nonce_secret()))
