"""The quickcall service: reads the device and builds its originate payload.

Access follows Kazoo (``cb_quickcall``): the request needs no token when the device has
``allow_anonymous_quickcalls: true`` or the configuration allows anonymous quickcalls (Kazoo's
``default_allow_anonymous_quickcalls``, true by default); otherwise an unauthenticated request
gets 401. A disabled or do-not-disturb device cannot be rung (Kazoo: 500, here a 409 that says
so). Placing the call over SIP is not part of this yet.
"""

from __future__ import annotations

import secrets
from typing import Callable, Iterable

from ..errors import AuthenticationError, NotFoundError
from ..store.devices import RedisDeviceStore
from .errors import DeviceUnavailableError
from .options import dial_number, parse_options
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
        stored = await self._devices.get(account_id, device_id)
        if stored is None:
            raise NotFoundError("device", device_id)
        doc = stored.doc
        if not authenticated and not self.allows_anonymous(doc):
            raise AuthenticationError("quickcalls to this device need an auth token")
        _check_available(doc, device_id)
        options = parse_options(query)
        dialled = dial_number(number, options, filter_timeout=self._filter_timeout)
        return build_payload(
            {**doc, "id": device_id}, account_id=account_id, account_realm=account_realm,
            route=number, number=dialled, options=options, call_id=self._call_ids(),
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
