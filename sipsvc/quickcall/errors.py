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


class GatewayNotConfiguredError(QuickcallError):
    """A call is to be placed, but ``quickcall.gateway`` names no gateway to dial the number at."""

    def __init__(self) -> None:
        super().__init__("quickcall.gateway is not configured, so calls cannot be placed; set it to the "
                         "SIP URI of the gateway or PBX that dials the number (e.g. sip:192.0.2.10:5060)")


class CallElsewhereError(QuickcallError):
    """The call is live but held by another sipsvc process (worker or node)."""

    def __init__(self, call_id: str, node: str) -> None:
        super().__init__(f"quickcall {call_id} is held by sipsvc process {node}, not this one; only that "
                         "process can hang it up (if it has stopped, nothing controls the call any more)")
        self.call_id = call_id
        self.node = node
