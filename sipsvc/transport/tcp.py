"""The TCP adapter: a stream framed by Content-Length (RFC 3261 §18.3), answered on the same
connection (§18.2.2), closed when idle, when a message is too large (413) or when the framing
is lost (400).

Hostile peers are bounded by ``TcpLimits`` (per worker process): connections per source
address and in total (more are closed as soon as they are accepted), bytes buffered per
connection (unframed input plus unsent output: a peer that never reads its answers is cut off)
and the time a message may take to arrive whole, the first one counted from the connection's
opening (a slow or silent sender is cut off). Each refusal is counted in ``endpoint.counters``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from dataclasses import dataclass

from ..registrar.policy import Source
from ..sip.errors import SipParseError
from ..sip.parser import StreamFramer
from .endpoint import SipEndpoint, Target

_ids = itertools.count(1)
log = logging.getLogger("sipsvc.sip")


@dataclass(frozen=True)
class TcpLimits:
    """``message_timeout``: seconds from a message's first byte to its last; ``max_buffered``:
    bytes held for one connection (unframed input plus unsent output); ``max_per_source`` and
    ``max_connections``: open connections from one IP address and in all."""

    message_timeout: float = 10.0
    max_buffered: int = 262144
    max_per_source: int = 128
    max_connections: int = 4096


class ConnectionGate:
    """Counts the open connections of one listener, by source address and in total."""

    def __init__(self, limits: TcpLimits) -> None:
        self.limits = limits
        self.per_source: Counter[str] = Counter()
        self.total = 0

    def admit(self, ip: str) -> str | None:
        """None when a connection from ``ip`` may stay open (and is then counted), else the
        counter naming the limit it hit."""
        if self.total >= self.limits.max_connections:
            return "tcp_refused_total"
        if self.per_source[ip] >= self.limits.max_per_source:
            return "tcp_refused_per_source"
        self.per_source[ip] += 1
        self.total += 1
        return None

    def release(self, ip: str) -> None:
        self.total -= 1
        left = self.per_source[ip] - 1
        if left > 0:
            self.per_source[ip] = left
        else:
            del self.per_source[ip]


class TcpConnection(asyncio.Protocol):
    def __init__(self, endpoint: SipEndpoint, *, max_message: int, idle_timeout: float,
                 limits: TcpLimits | None = None, gate: ConnectionGate | None = None) -> None:
        self._endpoint = endpoint
        self._framer = StreamFramer(max_message, limits=endpoint.limits)
        self._idle_timeout = idle_timeout
        self._limits = limits or (gate.limits if gate is not None else TcpLimits())
        self._gate = gate
        self._admitted = False
        self._transport: asyncio.Transport | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._slow: asyncio.TimerHandle | None = None  # runs while a message is incomplete
        self.id = f"tcp-{endpoint.node}-{next(_ids)}"  # the node: see siblings.py
        self.peer: tuple[str, int] = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1])
        if self._gate is not None:
            refused = self._gate.admit(self.peer[0])
            if refused is not None:
                self._endpoint.counters[refused] += 1
                transport.abort()  # type: ignore[attr-defined]
                return
            self._admitted = True
        self._endpoint.connections[self.id] = self
        self._touch()
        # The first message is due at once too: a connection opened to sit silent (holding one
        # of the places above) is cut off like a slow sender.
        self._slow = asyncio.get_running_loop().call_later(self._limits.message_timeout, self._too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._admitted:
            self._admitted = False
            self._gate.release(self.peer[0])  # type: ignore[union-attr]
        self._endpoint.connections.pop(self.id, None)
        for timer in (self._idle, self._slow):
            if timer is not None:
                timer.cancel()
        self._idle = self._slow = None

    def data_received(self, data: bytes) -> None:
        self._touch()
        try:
            items = self._framer.feed(data)
        except SipParseError as exc:
            # The stream cannot be resynchronised after a message that does not frame or parse.
            self._endpoint.refuse(exc, self._target())
            self.close()
            return
        self._time_message(bool(items))
        if self._over_buffer():
            return
        source = Source(self.peer[0], self.peer[1], "tcp", self.id)
        for item in items:
            if item == StreamFramer.PING:
                self.send(b"\r\n")  # RFC 5626 §3.5.1 pong
            else:
                self._endpoint.message_received(item, source, self._target())

    def _time_message(self, delivered: bool) -> None:
        """Start the whole-message timer at a message's first byte; stop it when none is due."""
        if not self._framer.partial:
            if self._slow is not None:
                self._slow.cancel()
                self._slow = None
        elif self._slow is None or delivered:  # a new message began in these bytes
            if self._slow is not None:
                self._slow.cancel()
            self._slow = asyncio.get_running_loop().call_later(self._limits.message_timeout, self._too_slow)

    def _too_slow(self) -> None:
        self._slow = None
        self._endpoint.counters["tcp_closed_slow"] += 1
        log.info("TCP connection from %s:%s cut off: no whole message within %s s",
                 self.peer[0], self.peer[1], self._limits.message_timeout)
        self.abort()

    def _over_buffer(self) -> bool:
        """Close a connection holding more than its share of memory (a peer that sends faster
        than it reads its answers)."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return True
        held = self._framer.buffered + transport.get_write_buffer_size()
        if held <= self._limits.max_buffered:
            return False
        self._endpoint.counters["tcp_closed_buffer"] += 1
        log.info("TCP connection from %s:%s cut off: %d bytes buffered", self.peer[0], self.peer[1], held)
        self.abort()
        return True

    def _target(self) -> Target:
        return Target("tcp", self.peer, self)

    def send(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)
            self._over_buffer()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _touch(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(self._idle_timeout, self.close)
