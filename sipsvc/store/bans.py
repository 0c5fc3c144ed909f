"""Failed digest attempts and the bans they lead to, shared by every node through Redis.

A failure is counted by one script (``record_auth_failure.lua``) against the source address and
against the (account, username, source) triple; past a threshold within the window the script
sets a ban key with the ban's TTL. New bans and lifted ones are also written to one index hash
(for the API) and published, so that every process keeps a replica of the current bans in
memory (``BanCache``): the REGISTER hot path checks a ban with a dict lookup, never a Redis
round trip. The replica is reloaded whole when the subscription (re)starts and every
``RELOAD_SECONDS``, so a missed message is corrected within that time.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import asdict, dataclass

import orjson
import redis.asyncio as aioredis

from . import keys
from .scripts import Scripts
from .subscription import follow

log = logging.getLogger("sipsvc.store")
RELOAD_SECONDS = 60.0  # a backstop only: pub/sub carries every change at once
MAX_ENTRIES = 1_000_000


@dataclass(frozen=True)
class Ban:
    """A ban of a whole source (``username`` empty), or of one account's username from a source."""

    id: str
    source: str  # the IP address
    account_id: str  # the account whose realm the tripping attempt was for
    username: str  # lower-cased; "" for a ban of the whole source
    since: float
    until: float
    failures: int

    @property
    def scope(self) -> str:
        return "user" if self.username else "source"


def ban_id(source: str, account_id: str = "", username: str = "") -> str:
    """The stable id of a ban: the same source (and username) always gets the same id."""
    text = f"{source}|{account_id}|{username.lower()}" if username else source
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _load(text: str | bytes) -> Ban:
    return Ban(**orjson.loads(text))


class RedisBanStore:
    def __init__(self, redis: aioredis.Redis, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts
        self.cache = BanCache(redis, self)

    async def record_failure(self, ip: str, account_id: str, username: str, *, window: int,
                             per_source: int, per_user: int, ban_seconds: int,
                             now: float) -> tuple[Ban | None, int]:
        """Count a failed attempt; returns the ban it caused (or None) and the source's count.
        The username's count from every address (``username_failures``) is kept beside it, in
        the account's hash slot, for the API only: it bans nobody."""
        counted, _ = await asyncio.gather(
            self._scripts.record_auth_failure(
                [keys.source_failures(ip), keys.user_source_failures(ip, account_id, username),
                 keys.source_ban(ip), keys.user_source_ban(ip, account_id, username)],
                [window, per_source, per_user, ban_seconds],
            ),
            self._count_username(account_id, username.lower(), window),
        )
        outcome, source_failures, user_failures = counted
        if outcome == "counted":
            return None, int(source_failures)
        name = username.lower() if outcome == "user" else ""
        ban = Ban(ban_id(ip, account_id, name), ip, account_id, name, now, now + ban_seconds,
                  int(source_failures if outcome == "source" else user_failures))
        self.cache.apply(ban)
        record = orjson.dumps(asdict(ban))
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(keys.ban_index(), ban.id, record)
            pipe.publish(keys.BANS_CHANNEL, orjson.dumps({"op": "ban", "ban": asdict(ban)}))
            await pipe.execute()
        return ban, int(source_failures)

    async def _count_username(self, account_id: str, username: str, window: int) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zincrby(keys.username_failures(account_id), 1, username)
            pipe.expire(keys.username_failures(account_id), window)
            await pipe.execute()

    async def username_failures(self, account_id: str, limit: int) -> list[tuple[str, int]]:
        """The account's usernames with the most failed attempts (any address), most first."""
        rows = await self._redis.zrevrange(keys.username_failures(account_id), 0, limit - 1, withscores=True)
        return [(name, int(score)) for name, score in rows]

    async def bans(self, now: float) -> list[Ban]:
        """Every ban still in force (expired ones are pruned from the index)."""
        stored = await self._redis.hgetall(keys.ban_index())
        current, expired = [], []
        for ident, text in stored.items():
            ban = _load(text)
            (current if ban.until > now else expired).append(ban if ban.until > now else ident)
        if expired:
            await self._redis.hdel(keys.ban_index(), *expired)
        return sorted(current, key=lambda b: (b.since, b.id))

    async def get(self, ident: str, now: float) -> Ban | None:
        text = await self._redis.hget(keys.ban_index(), ident)
        ban = _load(text) if text else None
        return ban if ban is not None and ban.until > now else None

    async def lift(self, ban: Ban) -> None:
        """End a ban now, on every node, and forget the failures that led to it."""
        self.cache.lift(ban)
        if ban.username:
            doomed = [keys.user_source_ban(ban.source, ban.account_id, ban.username),
                      keys.user_source_failures(ban.source, ban.account_id, ban.username)]
        else:
            doomed = [keys.source_ban(ban.source), keys.source_failures(ban.source)]
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(*doomed)
            pipe.hdel(keys.ban_index(), ban.id)
            pipe.publish(keys.BANS_CHANNEL, orjson.dumps({"op": "lift", "ban": asdict(ban)}))
            await pipe.execute()


class BanCache:
    """This process's replica of the bans in force: source -> until, and
    (account, username, source) -> until. Reads are synchronous and O(1)."""

    def __init__(self, redis: aioredis.Redis, store: RedisBanStore) -> None:
        self._redis = redis
        self._store = store
        self.sources: dict[str, float] = {}
        self.users: dict[tuple[str, str, str], float] = {}
        self._stopping = False
        self._next_reload = 0.0
        self._task: asyncio.Task | None = None

    def source_banned(self, ip: str, now: float) -> bool:
        until = self.sources.get(ip)
        if until is None:
            return False
        if until > now:
            return True
        self.sources.pop(ip, None)
        return False

    def user_banned(self, account_id: str, username: str, ip: str, now: float) -> bool:
        if not self.users:
            return False
        key = (account_id, username.lower(), ip)
        until = self.users.get(key)
        if until is None:
            return False
        if until > now:
            return True
        self.users.pop(key, None)
        return False

    def apply(self, ban: Ban) -> None:
        if len(self.sources) + len(self.users) >= MAX_ENTRIES:
            return  # a flood of bans; the source counters and ban keys in Redis still hold
        if ban.username:
            self.users[(ban.account_id, ban.username, ban.source)] = ban.until
        else:
            self.sources[ban.source] = ban.until

    def lift(self, ban: Ban) -> None:
        if ban.username:
            self.users.pop((ban.account_id, ban.username, ban.source), None)
        else:
            self.sources.pop(ban.source, None)

    async def reload(self) -> None:
        bans = await self._store.bans(time.time())
        self.sources, self.users = {}, {}
        for ban in bans:
            self.apply(ban)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._listen())

    async def stop(self) -> None:
        self._stopping = True  # polled by the loop, which closes its connection itself
        if self._task is not None:
            _, pending = await asyncio.wait([self._task], timeout=5)
            for task in pending:
                task.cancel()

    def _message(self, data: str | bytes) -> None:
        try:
            message = orjson.loads(data)
            ban = Ban(**message["ban"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignored a malformed ban message")
            return
        (self.apply if message.get("op") == "ban" else self.lift)(ban)

    async def _listen(self) -> None:
        # While Redis is away the bans known so far stay in force (each carries its end); new
        # ones from other nodes arrive once the subscription is back, with a full reload.
        await follow(self._redis, keys.BANS_CHANNEL, self._handle, stopping=lambda: self._stopping,
                     paused="ban updates paused")

    async def _handle(self, message: dict | None) -> None:
        loop = asyncio.get_running_loop()
        if message is not None and message["type"] == "subscribe":
            self._next_reload = 0.0  # (re)subscribed: what was missed meanwhile comes now
        if loop.time() >= self._next_reload:
            await self.reload()
            self._next_reload = loop.time() + RELOAD_SECONDS
        if message is not None and message["type"] == "message":
            self._message(message["data"])
