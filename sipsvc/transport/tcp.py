"""The TCP adapter: a stream framed by Content-Length (RFC 3261 §18.3), answered on the same
connection (§18.2.2), closed when idle, when a message is too large (413) or when the framing
is lost (400)."""

from __future__ import annotations

import asyncio
import itertools

from ..registrar.policy import Source
from ..sip.errors import SipParseError
from ..sip.parser import StreamFramer
from .endpoint import SipEndpoint, Target

_ids = itertools.count(1)


class TcpConnection(asyncio.Protocol):
    def __init__(self, endpoint: SipEndpoint, *, max_message: int, idle_timeout: float) -> None:
        self._endpoint = endpoint
        self._framer = StreamFramer(max_message)
        self._idle_timeout = idle_timeout
        self._transport: asyncio.Transport | None = None
        self._idle: asyncio.TimerHandle | None = None
        self.id = f"tcp-{endpoint.node}-{next(_ids)}"  # the node: see siblings.py
        self.peer: tuple[str, int] = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1])
        self._endpoint.connections[self.id] = self
        self._touch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._endpoint.connections.pop(self.id, None)
        if self._idle is not None:
            self._idle.cancel()

    def data_received(self, data: bytes) -> None:
        self._touch()
        try:
            items = self._framer.feed(data)
        except SipParseError as exc:
            # The stream cannot be resynchronised after a message that does not frame or parse.
            self._endpoint.refuse(exc, self._target())
            self.close()
            return
        source = Source(self.peer[0], self.peer[1], "tcp", self.id)
        for item in items:
            if item == StreamFramer.PING:
                self.send(b"\r\n")  # RFC 5626 §3.5.1 pong
            else:
                self._endpoint.message_received(item, source, self._target())

    def _target(self) -> Target:
        return Target("tcp", self.peer, self)

    def send(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _touch(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(self._idle_timeout, self.close)
