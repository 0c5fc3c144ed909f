"""The UDP adapter: each datagram is one message (RFC 3261 §18.3)."""

from __future__ import annotations

import asyncio
import socket
import sys

from .endpoint import SipEndpoint


RECEIVE_BUFFER = 4 * 1024 * 1024
# Python's socket module does not name it; this is its value in <asm-generic/socket.h>.
_LINUX_SO_RCVBUFFORCE = 33 if sys.platform == "linux" else None


def _enlarge_receive_buffer(sock: socket.socket | None) -> None:
    """Room for bursts: a registration storm (phones rebooting together, SIPp's ladder) fills
    the kernel's default 208 KiB in milliseconds, and every dropped REGISTER comes back as a
    retransmission. SO_RCVBUFFORCE passes net.core.rmem_max when we may (CAP_NET_ADMIN)."""
    if sock is None:
        return
    for option in (getattr(socket, "SO_RCVBUFFORCE", _LINUX_SO_RCVBUFFORCE), socket.SO_RCVBUF):
        if option is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, RECEIVE_BUFFER)
            return
        except OSError:
            continue


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: SipEndpoint, max_message: int) -> None:
        self._endpoint = endpoint
        self._max = max_message

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        _enlarge_receive_buffer(transport.get_extra_info("socket"))
        self._endpoint.attach_udp(transport)  # type: ignore[arg-type]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if len(data) > self._max:
            self._endpoint.counters["dropped_oversize"] += 1
            return
        self._endpoint.datagram_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and friends: the peer is gone; nothing to do for a datagram.
        self._endpoint.counters["udp_errors"] += 1
