"""Password guessing and scanners: what the registrar does about failed digest attempts.

- A failed attempt (403: wrong response hash, unknown user, disabled device, another AOR's
  credentials) is counted in Redis per source address and per (account, username, source); a
  401 challenge is no failure. Past ``max_failures_per_source`` within ``failure_window`` the
  whole source is banned; past ``max_failures_per_user`` the source may no longer try that
  username, while the same username from any other address is unaffected (a phone is never
  locked out by someone else's guessing).
- A banned source is answered 403, or nothing at all (``ban_action = "drop"``), for
  ``ban_seconds``. Requests whose User-Agent contains one of ``scanner_user_agents`` are
  dropped silently. Both are counted.
- The checks on each request are dict lookups in this process's replica of the bans
  (``store/bans.py``); Redis is touched only on failures.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from ..errors import ForbiddenError, NotFoundError
from ..sip.message import Request
from ..store.bans import Ban, RedisBanStore
from ..store.errors import REDIS_ERRORS
from .policy import Source

log = logging.getLogger("sipsvc.security")

DROP = 0  # the status of a verdict that answers nothing


@dataclass(frozen=True)
class GuardPolicy:
    max_failures_per_source: int = 20
    max_failures_per_user: int = 5
    failure_window: int = 300
    ban_seconds: int = 900
    ban_action: str = "forbid"  # or "drop"
    scanner_user_agents: tuple[str, ...] = ()  # lower-cased substrings; empty: none dropped


class AuthGuard:
    def __init__(self, store: RedisBanStore, policy: GuardPolicy,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._cache = store.cache
        self._policy = policy
        self._scanners = tuple(agent.lower() for agent in policy.scanner_user_agents)
        self._clock = clock
        self.counters: Counter[str] = Counter()

    @property
    def ban_status(self) -> int:
        return DROP if self._policy.ban_action == "drop" else 403

    def screen(self, request: Request, source: Source) -> tuple[int, str] | None:
        """For every new request, before it is handled: None to let it through, else
        ``(status, reason)``; status ``DROP`` means no answer at all."""
        if self._scanners:
            agent = request.header("User-Agent")
            if agent:
                agent = agent.lower()
                if any(scanner in agent for scanner in self._scanners):
                    self.counters["scanner_dropped"] += 1
                    return DROP, "scanner"
        if self._cache.sources and self._cache.source_banned(source.ip, self._clock()):
            self.counters["banned_source"] += 1
            return self.ban_status, "banned"
        return None

    def user_banned(self, account_id: str, username: str, source: Source, now: float) -> bool:
        if self._cache.user_banned(account_id, username, source.ip, now):
            self.counters["banned_user"] += 1
            return True
        return False

    async def failed(self, account_id: str, username: str, source: Source, now: float) -> None:
        """Count a failed attempt (the caller answers it 403 as before)."""
        policy = self._policy
        try:
            ban, _ = await self._store.record_failure(
                source.ip, account_id, username, window=policy.failure_window,
                per_source=policy.max_failures_per_source, per_user=policy.max_failures_per_user,
                ban_seconds=policy.ban_seconds, now=now,
            )
        except REDIS_ERRORS as exc:
            # The attempt still fails; only its counting is lost.
            log.warning("could not count a failed digest attempt from %s: %s", source.ip, exc)
            return
        if ban is not None:
            self.counters[f"bans_{ban.scope}"] += 1
            what = f"username {ban.username!r} of account {ban.account_id}" if ban.username else "every account"
            log.warning("banned %s from %s for %d s after %d failed digest attempts (ban %s)",
                        ban.source, what, policy.ban_seconds, ban.failures, ban.id)

    async def bans(self, account_id: str | None = None) -> list[Ban]:
        """Bans in force: all of them, or those tripped by attempts on one account."""
        bans = await self._store.bans(self._clock())
        return [ban for ban in bans if account_id is None or ban.account_id == account_id]

    async def username_failures(self, account_id: str, limit: int = 100) -> list[dict]:
        """The account's most guessed usernames, from every address, within the window."""
        rows = await self._store.username_failures(account_id, limit)
        return [{"username": name, "failures": count} for name, count in rows]

    async def lift(self, ban_id: str, account_id: str | None = None) -> Ban:
        """Lift a ban; with ``account_id`` (an account's token) only a ban of one of its
        usernames, since a source ban keeps the source away from every account."""
        ban = await self._store.get(ban_id, self._clock())
        if ban is None or (account_id is not None and ban.account_id != account_id):
            raise NotFoundError("ban", ban_id)
        if account_id is not None and not ban.username:
            raise ForbiddenError("only the admin token may lift the ban of a whole source")
        await self._store.lift(ban)
        log.warning("lifted ban %s of %s%s", ban.id, ban.source,
                    f" for username {ban.username!r}" if ban.username else "")
        return ban


def ban_view(ban: Ban, now: float) -> dict:
    """A ban as the API shows it."""
    return {"id": ban.id, "scope": ban.scope, "source": ban.source, "account_id": ban.account_id,
            "username": ban.username or None, "since": int(ban.since), "until": int(ban.until),
            "expires_in": max(int(ban.until - now), 0), "failures": ban.failures}
