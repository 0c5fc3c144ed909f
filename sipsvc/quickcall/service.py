"""The quickcall service: reads the device and builds its originate payload.

Access follows Kazoo (``cb_quickcall``): the request needs no token when the device has
``allow_anonymous_quickcalls: true`` or the configuration allows anonymous quickcalls (Kazoo's
``default_allow_anonymous_quickcalls``, true by default); otherwise an unauthenticated request
gets 401. A disabled or do-not-disturb device cannot be rung (Kazoo: 500, here a 409 that says
so). ``place`` also places the call over SIP (``originator``, RFC 3725), which needs a
configured gateway and a registered device; the call's record is read and the call hung up with
the same access rule.
"""

from __future__ import annotations

import secrets
from typing import Callable, Iterable

from ..errors import AuthenticationError, NotFoundError, NotRegisteredError
from ..sip.uac import escape_user
from ..store.devices import RedisDeviceStore
from .errors import DeviceUnavailableError, GatewayNotConfiguredError
from .options import dial_number, parse_options
from .originator import Originator, Placement
from .payload import build_payload

# A legitimate pattern matches a number of at most 64 characters in microseconds; this bounds
# what a hostile one costs (it runs on the event loop).
NUMBER_FILTER_TIMEOUT = 0.05


def new_call_id() -> str:
    """36 random hex characters, as Kazoo's quickcall call ids."""
    return secrets.token_hex(18)


class QuickcallService:
    def __init__(self, devices: RedisDeviceStore, *, allow_anonymous: bool,
                 call_ids: Callable[[], str] = new_call_id,
                 filter_timeout: float = NUMBER_FILTER_TIMEOUT) -> None:
        self._devices = devices
        self._allow_anonymous = allow_anonymous
        self._call_ids = call_ids
        self._filter_timeout = filter_timeout
        self.originator: Originator | None = None  # set once the SIP endpoint runs

    async def payload(self, *, account_id: str, account_realm: str, device_id: str, number: str,
                      query: Iterable[tuple[str, str]], authenticated: bool) -> dict:
        """The originate payload for ``GET .../devices/{device_id}/quickcall/{number}``.

        Args:
            query: the query string's (name, value) pairs.
            authenticated: whether the caller presented a token valid for the account.

        Raises:
            NotFoundError: no such device.
            AuthenticationError: no token, and the device is not open to anonymous quickcalls.
            DeviceUnavailableError: the device is disabled or in do-not-disturb.
            ValidationFailedError: an option, the number or the number filter is unusable.
        """
        doc = await self._device(account_id, device_id, authenticated)
        return self._payload(doc, account_id, account_realm, device_id, number, query, self._call_ids())

    async def place(self, *, account_id: str, account_realm: str, device_id: str, number: str,
                    query: Iterable[tuple[str, str]], authenticated: bool, wait: bool) -> dict:
        """Place the call (``POST .../quickcall/{number}``): the payload, with ``call`` the
        call's record, as soon as the phones ring or, with ``wait``, once the outcome is known.

        Raises what ``payload`` raises, and GatewayNotConfiguredError (no gateway configured) or
        NotRegisteredError (no registration of the device can be rung).
        """
        doc = await self._device(account_id, device_id, authenticated)
        call_id = self._call_ids()
        payload = self._payload(doc, account_id, account_realm, device_id, number, query, call_id)
        originator = self.originator
        if originator is None or not originator.gateway:
            raise GatewayNotConfiguredError()
        target = await originator.bindings(account_id, device_id)
        if target is None:
            raise NotFoundError("device", device_id)
        if not target.bindings:
            raise NotRegisteredError(device_id, "the device has no current registration; no call was placed")
        call = originator.place(call_id, _placement(doc, payload, account_id, account_realm, device_id),
                                target.bindings)
        if call is None:
            raise NotRegisteredError(
                device_id, "the device is registered only over TCP connections that are closed; "
                           "no call was placed")
        record = await originator.settled(call) if wait else dict(call.record)
        return {**payload, "call": record}

    async def call(self, *, account_id: str, call_id: str, authenticated: bool, hang_up: bool) -> dict:
        """A placed call's record (``GET .../quickcalls/{call_id}``), after hanging it up with
        ``hang_up`` (``DELETE``). Without a token, allowed when quickcalls to its device are.

        Raises NotFoundError, AuthenticationError, or CallElsewhereError (a live call that
        another process holds cannot be hung up here)."""
        originator = self.originator
        if originator is None:
            raise NotFoundError("quickcall", call_id)
        record = await originator.status(account_id, call_id)
        if not authenticated:
            stored = await self._devices.get(account_id, str(record.get("device_id")))
            if stored is None or not self.allows_anonymous(stored.doc):
                raise AuthenticationError("this quickcall needs an auth token")
        if hang_up:
            record = await originator.hang_up(account_id, call_id)
        return record

    async def _device(self, account_id: str, device_id: str, authenticated: bool) -> dict:
        stored = await self._devices.get(account_id, device_id)
        if stored is None:
            raise NotFoundError("device", device_id)
        doc = stored.doc
        if not authenticated and not self.allows_anonymous(doc):
            raise AuthenticationError("quickcalls to this device need an auth token")
        _check_available(doc, device_id)
        return doc

    def _payload(self, doc: dict, account_id: str, account_realm: str, device_id: str, number: str,
                 query: Iterable[tuple[str, str]], call_id: str) -> dict:
        options = parse_options(query)
        dialled = dial_number(number, options, filter_timeout=self._filter_timeout)
        return build_payload(
            {**doc, "id": device_id}, account_id=account_id, account_realm=account_realm,
            route=number, number=dialled, options=options, call_id=call_id,
        )

    def allows_anonymous(self, doc: dict) -> bool:
        # Kazoo: the device's flag, or the system default; a device cannot opt out of the default.
        return doc.get("allow_anonymous_quickcalls") is True or self._allow_anonymous


def _check_available(doc: dict, device_id: str) -> None:
    if doc.get("enabled") is False:
        raise DeviceUnavailableError(device_id, "disabled")
    dnd = doc.get("do_not_disturb")
    if isinstance(dnd, dict) and dnd.get("enabled") is True:
        raise DeviceUnavailableError(device_id, "in do-not-disturb")


def _placement(doc: dict, payload: dict, account_id: str, account_realm: str, device_id: str) -> Placement:
    """What the originator needs, read from the payload (so the call shows what it says)."""
    endpoint = payload["endpoints"][0]
    realm = endpoint["to_realm"]
    username = endpoint.get("to_username")
    aor = f"sip:{escape_user(username)}@{realm}" if username else f"sip:{realm}"
    callee_number = payload.get("outbound_callee_id_number")
    return Placement(
        account_id=account_id, device_id=device_id, number=payload["outbound_caller_id_number"],
        realm=realm, address_of_record=aor, caller_name=payload["outbound_caller_id_name"],
        callee_name=payload.get("outbound_callee_id_name"),
        callee_uri=f"sip:{escape_user(callee_number)}@{realm}" if callee_number else aor,
        auto_answer=endpoint["custom_channel_vars"]["auto_answer"], timeout=payload["timeout"],
    )
