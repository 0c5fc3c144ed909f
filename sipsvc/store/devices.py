"""Device documents and their indexes.

Per account (one hash tag, one script per write): the document with its revision, the id list
used for paging, the listing rows, the MAC index and the per-user index (owner and hotdesk).
Across accounts: SIP credential and authn-by-IP claims (see ``claims.py``), taken before the
account script runs and released after it, so two writers can never both hold one value.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import AsyncIterator

import orjson
import redis.asyncio as aioredis

from . import keys
from .claims import Claims
from .errors import (
    DocumentExistsError, DocumentMissingError, RevisionConflictError, ValueTakenError,
)
from .auth_cache import SipAuthCache
from .bindings import load_binding
from .scripts import Scripts
from ..devices.document import DeviceIndexes
from ..registrar.policy import Binding


NO_INDEXES = DeviceIndexes()


def _claims(indexes: DeviceIndexes) -> dict[str, tuple[str, str]]:
    """Claim key -> (index kind, value) for the cross-account unique values."""
    out: dict[str, tuple[str, str]] = {}
    if indexes.sip_credentials is not None:
        realm, username = indexes.sip_credentials
        out[keys.sip_credentials_claim(realm, username)] = ("sip_username", username)
    if indexes.sip_ip is not None:
        out[keys.sip_ip_claim(indexes.sip_ip)] = ("sip_ip", indexes.sip_ip)
    return out


@dataclass(frozen=True)
class StoredDevice:
    id: str
    revision: str
    doc: dict = field(repr=False)


def _json(value: dict) -> str:
    return json.dumps(value, separators=(",", ":"))


def _holder_ref(account_id: str, device_id: str) -> str:
    return f"{account_id}/{device_id}"


class RedisDeviceStore:
    def __init__(self, redis: aioredis.Redis, scripts: Scripts, claims: Claims) -> None:
        self._redis = redis
        self._scripts = scripts
        self._claims = claims
        self.auth_cache = SipAuthCache(redis, self._load_sip_auth, self._load_sip_auths, self._sip_claim_batches)

    async def get(self, account_id: str, device_id: str) -> StoredDevice | None:
        revision, doc = await self._redis.hmget(keys.device(account_id, device_id), "rev", "doc")
        if revision is None or doc is None:
            return None
        return StoredDevice(device_id, revision, orjson.loads(doc))

    async def holders(self, account_id: str, device_id: str, indexes: DeviceIndexes) -> list[ValueTakenError]:
        """The unique values of ``indexes`` currently held by another device (a read, for
        reporting every conflict at once; ``save`` enforces uniqueness atomically)."""
        me = _holder_ref(account_id, device_id)
        checks: list[tuple[str, str]] = []
        async with self._redis.pipeline(transaction=False) as pipe:
            if indexes.mac:
                pipe.hget(keys.device_macs(account_id), indexes.mac)
                checks.append(("mac", indexes.mac))
            for key, check in _claims(indexes).items():
                pipe.get(key)
                checks.append(check)
            results = await pipe.execute()
        taken = []
        for (kind, value), holder in zip(checks, results):
            if holder is None:
                continue
            holder = holder.partition("|")[0]
            if holder not in (device_id, me):
                taken.append(ValueTakenError(kind, value, holder))
        return taken

    async def _holder_uses(self, holder: str, claim_key: str) -> bool:
        account_id, _, device_id = holder.partition("/")
        held = await self._redis.hget(keys.device(account_id, device_id), "claims")
        return held is not None and claim_key in json.loads(held)

    async def save(
        self, account_id: str, device_id: str, *, doc: dict, summary: dict, auth: dict, revision: str,
        expected_revision: str | None, old: DeviceIndexes, new: DeviceIndexes, now: float,
        flush_bindings: bool = False,
    ) -> list[Binding]:
        """Create (``expected_revision`` None) or replace a device; returns the live bindings
        ``flush_bindings`` dropped.

        Raises DocumentExistsError, DocumentMissingError, RevisionConflictError or
        ValueTakenError; on any of them nothing is changed.
        """
        me = _holder_ref(account_id, device_id)
        old_claims, new_claims = _claims(old), _claims(new)
        taken: list[str] = []
        try:
            for key, (kind, value) in new_claims.items():
                holder_uses = lambda holder, key=key: self._holder_uses(holder, key)  # noqa: E731
                await self._claims.take(kind, value, key, me, now, holder_uses)
                if key not in old_claims:
                    taken.append(key)
            removed_users = sorted(old.users - new.users)
            added_users = sorted(new.users - old.users)
            result = await self._scripts.save_device(
                keys=[
                    keys.device(account_id, device_id), keys.device_ids(account_id),
                    keys.device_summaries(account_id), keys.device_macs(account_id),
                    keys.bindings(account_id, device_id), keys.registered_devices(account_id),
                    *(keys.user_devices(account_id, u) for u in removed_users + added_users),
                ],
                args=[
                    device_id, expected_revision or "", revision, _json(doc), _json(summary),
                    old.mac, new.mac, len(removed_users), json.dumps(sorted(new_claims)),
                    _json(auth), "1" if flush_bindings else "0",
                    keys.AUTH_CHANNEL, json.dumps(sorted(old_claims.keys() | new_claims.keys())),
                    keys.registration_events(account_id), repr(now),
                ],
            )
            _raise_for(result, new)
        except BaseException:
            for key in taken:
                await self._claims.release(key, me)
            raise
        # This process's own replica forgets at once; the others hear it through pub/sub.
        for key in old_claims.keys() | new_claims.keys():
            self.auth_cache.invalidate(key)
        for key in old_claims.keys() - new_claims.keys():
            await self._claims.release(key, me)
        dropped = (load_binding(text) for text in result[1:])
        return sorted((b for b in dropped if b.expires_at > now), key=lambda b: b.registered_at)

    async def delete(
        self, account_id: str, device_id: str, *, expected_revision: str, indexes: DeviceIndexes,
    ) -> None:
        users = sorted(indexes.users)
        result = await self._scripts.delete_device(
            keys=[
                keys.device(account_id, device_id), keys.device_ids(account_id),
                keys.device_summaries(account_id), keys.device_macs(account_id),
                keys.bindings(account_id, device_id), keys.registered_devices(account_id),
                *(keys.user_devices(account_id, u) for u in users),
            ],
            args=[device_id, expected_revision, indexes.mac, keys.AUTH_CHANNEL,
                  json.dumps(sorted(_claims(indexes))), keys.registration_events(account_id),
                  repr(time.time())],
        )
        _raise_for(result, indexes)
        me = _holder_ref(account_id, device_id)
        for key in _claims(indexes):
            self.auth_cache.invalidate(key)
            await self._claims.release(key, me)

    async def list_page(
        self, account_id: str, start: str | None, count: int, *, inclusive: bool = True,
    ) -> list[tuple[str, dict | None]]:
        """Up to ``count`` (id, listing row) pairs in id order, from ``start`` on."""
        if start is None:
            lex_start = "-"
        else:
            lex_start = f"{'[' if inclusive else '('}{start}"
        flat = await self._scripts.list_devices(
            keys=[keys.device_ids(account_id), keys.device_summaries(account_id)],
            args=[lex_start, count],
        )
        return [
            (flat[i], json.loads(flat[i + 1]) if flat[i + 1] else None)
            for i in range(0, len(flat), 2)
        ]

    async def sip_auth(self, claim_key: str) -> dict | None:
        """The registrar's view of the device holding a SIP claim (credentials or IP), or None."""
        return await self.auth_cache.get(claim_key)

    async def _sip_claim_batches(self) -> AsyncIterator[list[str]]:
        batch: list[str] = []
        async for key in self._redis.scan_iter(match=keys.SIP_CLAIMS_PATTERN, count=1000):
            batch.append(key)
            if len(batch) == 500:
                yield batch
                batch = []
        if batch:
            yield batch

    async def _load_sip_auths(self, claim_keys: list[str]) -> dict[str, dict | None]:
        """``_load_sip_auth`` for many claims in two pipelined round trips."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in claim_keys:
                pipe.get(key)
            holders = [value.partition("|")[0] if value else None for value in await pipe.execute()]
        async with self._redis.pipeline(transaction=False) as pipe:
            for holder in holders:
                account_id, _, device_id = (holder or "/").partition("/")
                pipe.hmget(keys.device(account_id, device_id), "claims", "auth")
            records = await pipe.execute()
        out: dict[str, dict | None] = {}
        for key, holder, (claims, auth) in zip(claim_keys, holders, records):
            valid = holder and claims is not None and auth is not None and key in json.loads(claims)
            out[key] = json.loads(auth) if valid else None
        return out

    async def _load_sip_auth(self, claim_key: str) -> dict | None:
        holder = await self._claims.holder(claim_key)
        if holder is None:
            return None
        account_id, _, device_id = holder.partition("/")
        claims, auth = await self._redis.hmget(keys.device(account_id, device_id), "claims", "auth")
        # An abandoned claim (its writer died) leads to a device that no longer holds it.
        if claims is None or auth is None or claim_key not in json.loads(claims):
            return None
        return json.loads(auth)

    async def auth_by_credentials(self, realm: str, username: str) -> dict | None:
        claim = keys.sip_credentials_claim(realm, username)
        known, record = self.auth_cache.known(claim)  # the usual case: no await chain
        return record if known else await self.sip_auth(claim)

    async def auth_by_ip(self, ip: str) -> dict | None:
        claim = keys.sip_ip_claim(ip)
        known, record = self.auth_cache.known(claim)
        return record if known else await self.sip_auth(claim)

    def known_auth_by_ip(self, ip: str) -> tuple[bool, dict | None]:
        """``auth_by_ip`` from memory: (True, record) when the replica knows, else (False, None)."""
        return self.auth_cache.known(keys.sip_ip_claim(ip))

    async def user_rows(self, account_id: str, user_id: str) -> list[tuple[str, dict]]:
        """(id, listing row) of every device owned by or hotdesked to ``user_id``, in id order."""
        ids = sorted(await self._redis.smembers(keys.user_devices(account_id, user_id)))
        if not ids:
            return []
        rows = await self._redis.hmget(keys.device_summaries(account_id), ids)
        return [(i, json.loads(row)) for i, row in zip(ids, rows) if row]


def _raise_for(result: list, indexes: DeviceIndexes) -> None:
    status = result[0]
    if status == "ok":
        return
    if status == "exists":
        raise DocumentExistsError()
    if status == "missing":
        raise DocumentMissingError()
    if status == "conflict":
        raise RevisionConflictError(result[1])
    if status == "mac_taken":
        raise ValueTakenError("mac", indexes.mac, result[1])
    raise AssertionError(f"unexpected script result {result!r}")
