"""Quickcall's errors (part of the services' family in ``sipsvc.errors``; the HTTP answer for
each is chosen in ``sipsvc.api.errors``)."""

from __future__ import annotations

from ..errors import ServiceError


class QuickcallError(ServiceError):
    """Base of the errors only quickcall raises."""


class DeviceUnavailableError(QuickcallError):
    """The device cannot be rung: it is disabled, or in do-not-disturb.

    Kazoo builds no endpoint for such a device and answers 500 ``unspecified_fault``; here the
    answer says which device and why.
    """

    def __init__(self, device_id: str, reason: str) -> None:
        super().__init__(f"device {device_id} is {reason}; a quickcall cannot ring it")
        self.device_id = device_id
        self.reason = reason
