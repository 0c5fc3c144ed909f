"""Binding the SIP listeners: UDP and TCP on the same address and port."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .endpoint import SipEndpoint
from .spread import spread_by_payload
from .tcp import ConnectionGate, TcpConnection, TcpLimits
from .udp import UdpProtocol


@dataclass
class Listeners:
    udp: asyncio.DatagramTransport
    tcp: asyncio.base_events.Server
    address: tuple[str, int]
    gate: ConnectionGate | None = None  # the TCP connections open, by source address

    async def close(self) -> None:
        self.tcp.close()
        self.udp.close()
        await self.tcp.wait_closed()


async def listen(endpoint: SipEndpoint, host: str, port: int, *, max_message: int,
                 idle_timeout: float, group: int = 0, tcp_limits: TcpLimits | None = None) -> Listeners:
    """Bind UDP, then TCP on the port UDP got (so port 0 picks one free for both). With
    ``group`` > 0 the sockets are shared (SO_REUSEPORT) by that many worker processes.
    ``tcp_limits`` bound the TCP connections (see tcp.py), in this process."""
    gate = ConnectionGate(tcp_limits or TcpLimits())
    reuse_port = group > 0
    loop = asyncio.get_running_loop()
    attempts = 10 if port == 0 else 1
    for attempt in range(attempts):
        udp, _ = await loop.create_datagram_endpoint(
            lambda: UdpProtocol(endpoint, max_message), local_addr=(host, port),
            reuse_port=reuse_port or None)
        bound = udp.get_extra_info("sockname")
        if group > 1:
            spread_by_payload(udp.get_extra_info("socket"), group)
        try:
            tcp = await loop.create_server(
                lambda: TcpConnection(endpoint, max_message=max_message, idle_timeout=idle_timeout, gate=gate),
                host, bound[1], reuse_address=True, reuse_port=reuse_port or None)
        except OSError:
            udp.close()
            if attempt == attempts - 1:
                raise
            continue
        return Listeners(udp, tcp, (bound[0], bound[1]), gate)
    raise AssertionError("unreachable")
