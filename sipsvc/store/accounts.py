"""Accounts, their API keys and the auth tokens issued for them.

API keys and tokens are looked up by their SHA-256 digest; a token itself is never stored.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from . import keys
from .claims import Claims


class RedisAccountStore:
    def __init__(self, redis: aioredis.Redis, claims: Claims) -> None:
        self._redis = redis
        self._claims = claims

    async def create(self, account: dict[str, str], api_key_digest: str, now: float) -> None:
        """Store a new account; raises ``ValueTakenError('realm', ...)`` for a taken realm."""
        account_id, realm = account["id"], account["realm"]

        async def holder_uses_realm(holder: str) -> bool:
            stored = await self._redis.hget(keys.account(holder), "realm")
            return stored is not None and stored.lower() == realm.lower()

        await self._claims.take(
            "realm", realm, keys.realm_claim(realm), account_id, now, holder_uses_realm
        )
        async with self._redis.pipeline(transaction=False) as pipe:
            # The id is new and random and the key digest unique, so no check is needed here:
            # a crash between the two leaves at worst a key that leads to no account.
            pipe.hset(keys.account(account_id), mapping=account)
            pipe.set(keys.api_key(api_key_digest), account_id)
            pipe.sadd(keys.account_ids(), account_id)
            await pipe.execute()

    async def get(self, account_id: str) -> dict[str, str] | None:
        account = await self._redis.hgetall(keys.account(account_id))
        return account or None

    async def account_for_api_key(self, api_key_digest: str) -> str | None:
        return await self._redis.get(keys.api_key(api_key_digest))

    async def account_for_realm(self, realm: str) -> str | None:
        return await self._claims.holder(keys.realm_claim(realm))

    async def save_token(self, token_digest: str, account_id: str, ttl: int) -> None:
        await self._redis.set(keys.auth_token(token_digest), account_id, ex=ttl)

    async def account_for_token(self, token_digest: str) -> tuple[str, float] | None:
        """The account a token is for, and the seconds it has left; None if unknown or expired."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(keys.auth_token(token_digest))
            pipe.pttl(keys.auth_token(token_digest))
            account_id, ttl_ms = await pipe.execute()
        if account_id is None or ttl_ms <= 0:
            return None
        return account_id, ttl_ms / 1000
