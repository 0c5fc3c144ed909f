"""The UDP adapter: each datagram is one message (RFC 3261 §18.3)."""

from __future__ import annotations

import asyncio

from .endpoint import SipEndpoint


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: SipEndpoint, max_message: int) -> None:
        self._endpoint = endpoint
        self._max = max_message

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._endpoint.attach_udp(transport)  # type: ignore[arg-type]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if len(data) > self._max:
            self._endpoint.counters["dropped_oversize"] += 1
            return
        self._endpoint.datagram_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and friends: the peer is gone; nothing to do for a datagram.
        self._endpoint.counters["udp_errors"] += 1
