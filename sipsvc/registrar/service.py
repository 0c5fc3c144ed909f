"""The registrar (RFC 3261 §10.3): turns a REGISTER into a response.

1. The AOR is the To URI; its host selects the account by realm, whatever the Request-URI
   says. A domain that is no account's realm gets 404.
2. The device is known by its source address (``sip.method: ip``, no challenge) or by digest
   credentials (RFC 7616/8760, the account's realm, stateless nonces with a replay guard on the
   nonce count). An unknown user and a wrong password are answered alike (403), after the same
   amount of hashing. The authenticated device must be the AOR's own.
3. The policy plans the binding changes; the store applies them atomically; the 200 lists every
   current binding with its remaining time and carries a Date.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from ..store.errors import REDIS_ERRORS

from ..sip import digest
from ..sip.errors import SipParseError
from ..sip.headers import name_addr_of
from ..sip.message import Request, Response
from ..sip.uas import http_date, make_response
from ..sip.uri import SipUri, parse_uri
from ..store.accounts import RedisAccountStore
from ..store.bindings import NonceReplayError, RedisBindingStore
from ..store.devices import RedisDeviceStore
from .errors import RegistrarError, RegistrarErrorCode as Code
from .guard import DROP, AuthGuard
from .policy import Binding, RegistrarPolicy, Source, contact_values, plan_register

REALM_CACHE_SECONDS = 60.0
RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class Caller:
    """The device a REGISTER was authenticated as, and the digest nonce use to record."""

    device_id: str
    nonce: str = ""
    nonce_count: int = 0  # 0: authenticated by address, no nonce used

    # Written out for speed (see "Written-out __init__" at the top of sip/message.py).
    def __init__(self, device_id: str, nonce: str = "", nonce_count: int = 0) -> None:
        fields = self.__dict__
        fields["device_id"] = device_id
        fields["nonce"] = nonce
        fields["nonce_count"] = nonce_count


class RegistrarService:
    def __init__(self, *, accounts: RedisAccountStore, devices: RedisDeviceStore,
                 bindings: RedisBindingStore, policy: RegistrarPolicy, nonces: digest.NonceSigner,
                 nonce_lifetime: int, random_bytes: Callable[[int], bytes],
                 algorithms: tuple[str, ...] = digest.SERVER_ALGORITHMS,
                 clock: Callable[[], float] = time.time, guard: AuthGuard | None = None) -> None:
        self._accounts = accounts
        self._guard = guard
        self._devices = devices
        self._bindings = bindings
        self._policy = policy
        self._nonces = nonces
        self._nonce_lifetime = nonce_lifetime
        self._random = random_bytes
        self._clock = clock
        self._algorithms = algorithms
        self._realms: dict[str, tuple[str, float]] = {}
        self._realm_lookups: dict[str, asyncio.Future] = {}
        # Read by the metrics at scrape time; counted on the failure paths only.
        self.counters: Counter[str] = Counter()
        # Whether a binding's phone can be reached now (a TCP binding: its connection is open, on
        # a live node); the app sets it once the SIP endpoint exists.
        self.reachable: Callable[[Binding], bool] = lambda binding: True

    async def register(self, request: Request, source: Source) -> Response | None:
        """The final response to a REGISTER (never raises for the caller's input); None when
        it is to go unanswered (a banned source and ``ban_action = "drop"``)."""
        now = self._clock()
        to_tag = self._random(8).hex()
        try:
            return await self._register(request, source, now, to_tag)
        except _Banned:
            if self._guard.ban_status == DROP:
                return None
            return make_response(request, 403, to_tag=to_tag)
        except RegistrarError as exc:
            if exc.code is Code.FORBIDDEN:
                self.counters["auth_failures"] += 1
            headers = (("Min-Expires", str(exc.min_expires)),) if exc.min_expires else ()
            return make_response(request, exc.status, exc.reason, headers=headers, to_tag=to_tag)
        except REDIS_ERRORS:
            self.counters["store_errors"] += 1
            return make_response(request, 503, "Service Unavailable", to_tag=to_tag,
                                 headers=(("Retry-After", str(RETRY_AFTER_SECONDS)),))

    def answer_now(self, request: Request, source: Source) -> Response | None:
        """The challenge to a REGISTER that brings no credentials, when all it depends on is
        already in memory: the realm's account and what the source address's IP claim says.
        None otherwise: ``register`` decides. Half of all REGISTERs are such first attempts, and
        answering them here saves each a task and its chain of awaits. It follows ``_register``
        step by step (a test holds the two to the same answers)."""
        if request.header("Authorization") is not None:
            return None
        try:
            aor = name_addr_of(request, "To").uri
        except SipParseError:
            return None
        if not isinstance(aor, SipUri):
            return None
        now = self._clock()
        realm = aor.host_key
        cached = self._realms.get(realm)
        if cached is None or cached[1] <= now:
            return None
        known, by_ip = self._devices.known_auth_by_ip(source.ip)
        if not known or (by_ip and by_ip["account_id"] == cached[0] and by_ip["method"] == "ip"):
            return None
        return self._challenge(request, realm, now, self._random(8).hex(), stale=False)

    async def registered_devices(self, account_id: str) -> list[str]:
        """Ids of the account's devices that have a live binding, sorted."""
        return sorted(await self._bindings.registered(account_id, self._clock()))

    async def registered_among(self, account_id: str, device_ids: list[str]) -> set[str]:
        return await self._bindings.registered_among(account_id, device_ids, self._clock())

    async def registrations(self, account_id: str, device_id: str) -> list[dict]:
        """The device's live bindings, as the API shows them."""
        now = self._clock()
        return [
            {"contact": b.contact, "source": b.source, "transport": b.transport,
             "user_agent": b.user_agent, "expires_in": max(int(b.expires_at - now), 0),
             "registered_at": int(b.registered_at), "instance": b.instance, "reg_id": b.reg_id,
             "path": list(b.path), "reachable": self.reachable(b)}
            for b in await self._bindings.bindings(account_id, device_id, now)
        ]

    async def _register(self, request: Request, source: Source, now: float, to_tag: str) -> Response:
        try:
            aor = name_addr_of(request, "To").uri
        except SipParseError as exc:
            raise RegistrarError(Code.BAD_REQUEST, exc.reason) from None
        if not isinstance(aor, SipUri):
            raise RegistrarError(Code.BAD_REQUEST, "AOR must be a SIP or SIPS URI")
        realm = aor.host_key
        cached = self._realms.get(realm)  # the usual case, without a coroutine
        account_id = cached[0] if cached and cached[1] > now else await self._account_for_realm(realm, now)
        if account_id is None:
            raise RegistrarError(Code.NOT_FOUND, "unknown domain")
        caller = await self._authenticated_device(request, source, account_id, realm, aor, now, to_tag)
        if isinstance(caller, Response):
            return caller
        plan = plan_register(request, source, now, self._policy)
        try:
            current = await self._bindings.apply(
                account_id, caller.device_id, plan, now=now, max_contacts=self._policy.max_contacts,
                nonce=caller.nonce, nonce_count=caller.nonce_count, nonce_lifetime=self._nonce_lifetime,
            )
        except NonceReplayError:
            return self._challenge(request, realm, now, to_tag, stale=False)
        headers = [("Contact", value) for value in contact_values(current, now)]
        headers.append(("Date", http_date(now)))
        supported = {tag.strip().lower() for tag in request.values("Supported")}
        if "path" in supported:
            headers += [("Path", value) for value in request.values("Path")]
        return make_response(request, 200, headers=tuple(headers), to_tag=to_tag)

    async def _account_for_realm(self, realm: str, now: float) -> str | None:
        cached = self._realms.get(realm)
        if cached and cached[1] > now:
            return cached[0]
        # One lookup per realm at a time: a burst of REGISTERs (a site rebooting) would
        # otherwise send the same read once per phone.
        pending = self._realm_lookups.get(realm)
        if pending is None:
            pending = asyncio.ensure_future(self._accounts.account_for_realm(realm))
            self._realm_lookups[realm] = pending
            pending.add_done_callback(lambda _: self._realm_lookups.pop(realm, None))
        account_id = await asyncio.shield(pending)
        if account_id is not None:
            self._realms[realm] = (account_id, now + REALM_CACHE_SECONDS)
        return account_id

    def _challenge(self, request: Request, realm: str, now: float, to_tag: str, *, stale: bool) -> Response:
        nonce = self._nonces.issue(realm, now, self._random(16))
        headers = tuple(("WWW-Authenticate", value)
                        for value in digest.challenge_values(realm, nonce, stale, self._algorithms))
        return make_response(request, 401, headers=headers, to_tag=to_tag)

    async def _authenticated_device(self, request: Request, source: Source, account_id: str, realm: str,
                                    aor: SipUri, now: float, to_tag: str) -> "Caller | Response":
        """Who is registering, or the response that refuses or challenges the request."""
        by_ip = await self._devices.auth_by_ip(source.ip)
        if by_ip and by_ip["account_id"] == account_id and by_ip["method"] == "ip":
            if not by_ip["enabled"]:
                raise RegistrarError(Code.FORBIDDEN)
            return Caller(by_ip["device_id"])
        credentials = self._credentials(request, realm)
        if credentials is None:
            return self._challenge(request, realm, now, to_tag, stale=False)
        if self._guard is not None and self._guard.user_banned(account_id, credentials.username, source, now):
            raise _Banned()
        status = self._nonces.check(credentials.nonce, realm, now)
        if status is not digest.NonceStatus.VALID or not _is_sip_uri(credentials.uri):
            return self._challenge(request, realm, now, to_tag, stale=status is digest.NonceStatus.STALE)
        device = await self._devices.auth_by_credentials(realm, credentials.username)
        password = device["password"] if device and device["account_id"] == account_id else None
        # The same hashing for unknown users, so timing tells nothing either.
        valid = digest.verify(credentials, request.method, password or "\x00unknown")
        if not valid or password is None or not device["enabled"] or device["method"] != "password":
            await self._failed(account_id, credentials.username, source, now)
            raise RegistrarError(Code.FORBIDDEN)
        if (aor.plain_user or "").lower() != device["username"].lower():
            await self._failed(account_id, credentials.username, source, now)
            raise RegistrarError(Code.FORBIDDEN, "not this device's address of record")
        return Caller(device["device_id"], credentials.nonce, credentials.nc)

    async def _failed(self, account_id: str, username: str, source: Source, now: float) -> None:
        if self._guard is not None:
            await self._guard.failed(account_id, username, source, now)

    @staticmethod
    def _credentials(request: Request, realm: str) -> digest.Credentials | None:
        """The Digest credentials for our realm, if the request has usable ones."""
        for value in request.header_lines("Authorization"):
            try:
                credentials = digest.parse_credentials(value)
            except digest.DigestError:
                continue
            if credentials.realm.lower() == realm:
                return credentials
        return None


class _Banned(Exception):
    """The source may not try this username (too many failures from it)."""


def _is_sip_uri(text: str) -> bool:
    """The digest-uri must be a SIP URI, but need not equal the Request-URI (RFC 3261 §22.4
    wants it to; SIPp and some phones put the server's address there while the Request-URI
    names the domain). The response hash covers it, and nonce counts stop replays."""
    try:
        return isinstance(parse_uri(text), SipUri)
    except SipParseError:
        return False
