"""Messages between the worker processes of one ``sipsvc serve --workers N``.

The workers share the SIP port, so a message does not always reach the worker that needs it:
- the answer to a request we sent (a check-sync NOTIFY, a quickcall INVITE) reaches whichever
  worker the kernel picks, not necessarily the one whose client transaction waits for it;
- a request within a dialog of ours (the BYE ending a quickcall) must reach the worker holding
  the call;
- a phone registered over TCP is reachable only through the worker that accepted its
  connection, while the API call that wants to reach it may land on another.

So every worker names itself (its pid) in the branches of its own requests, in its dialog tags
and in the ids of its TCP connections, and listens on a Unix datagram socket in the abstract
namespace (no file, no cleanup) named after the data directory and its pid. A response carrying
a sibling's branch, or a request carrying a sibling's tag, is passed to that sibling with the
address it came from (and the connection, which the sibling answers through us); bytes for a
sibling's connection are passed to it to write. A sibling that is gone (restarted) refuses the datagram: the message is
dropped and counted, as the network would drop it, and Timer F reports the request.

The same messages reach the other nodes sharing the Redis (another host, or another ``sipsvc
serve`` here): a worker's name is its pid and a random suffix (unique across hosts), and a message
for a name that no sibling socket answers to goes to ``remote`` (the store's node relay, Redis
pub/sub), which hands it to that node's ``received``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
from typing import Callable

log = logging.getLogger("sipsvc.sip")

# Forwarded response: b"R <transport> <ip> <port>\n" + message; forwarded request:
# b"Q <transport> <ip> <port> <sender> <connection id or ->\n" + message; bytes to write on a
# sibling's connection: b"S <connection id>\n" + bytes.
_RESPONSE, _REQUEST, _SEND = b"R", b"Q", b"S"


def _address(group: str, node: str) -> bytes:
    return f"\0sipsvc/{group}/{node}".encode()


class Siblings:
    def __init__(self, data_dir: str, *, me: str, on_response: Callable[[bytes, str, tuple[str, int]], None],
                 on_request: Callable[[bytes, str, tuple[str, int], str, str | None], None],
                 on_send: Callable[[str, bytes], None], counters,
                 remote: Callable[[str, bytes], None] | None = None) -> None:
        self.me = me
        self._remote = remote
        self._group = hashlib.sha1(os.path.abspath(data_dir).encode()).hexdigest()[:16]
        self._on_response = on_response
        self._on_request = on_request
        self._on_send = on_send
        self._counters = counters
        self._sock: socket.socket | None = None

    async def start(self) -> None:
        # A plain non-blocking socket watched by the loop: uvloop's datagram transport does not
        # take abstract Unix addresses.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(_address(self._group, self.me))
        sock.setblocking(False)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)
        self._sock = sock

    def close(self) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    # -- outbound ---------------------------------------------------------------------------

    def forward_response(self, node: str, data: bytes, transport: str, source: tuple[str, int]) -> None:
        self._post(node, b"%s %s %s %d\n" % (_RESPONSE, transport.encode(), source[0].encode(), source[1]) + data)

    def forward_request(self, node: str, data: bytes, transport: str, source: tuple[str, int],
                        connection_id: str | None) -> None:
        head = b"%s %s %s %d %s %s\n" % (_REQUEST, transport.encode(), source[0].encode(), source[1],
                                          self.me.encode(), (connection_id or "-").encode())
        self._post(node, head + data)

    def send_on_connection(self, node: str, connection_id: str, data: bytes) -> None:
        self._post(node, b"%s %s\n" % (_SEND, connection_id.encode()) + data)

    def is_local(self, node: str) -> bool:
        """Whether ``node`` is a live sibling worker here (its socket takes datagrams)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect(_address(self._group, node))
                return True
            except OSError:
                return False

    def _post(self, node: str, datagram: bytes) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendto(datagram, _address(self._group, node))
            self._counters["forwarded_to_sibling"] += 1
        except OSError:  # not a sibling (another node), gone, or too busy to take it now
            if self._remote is not None:
                self._counters["forwarded_to_node"] += 1
                self._remote(node, datagram)
            else:
                self._counters["sibling_unreachable"] += 1

    # -- inbound ----------------------------------------------------------------------------

    def _readable(self) -> None:
        for _ in range(64):  # what is queued, a bounded amount at a time
            try:
                data = self._sock.recv(1 << 17) if self._sock is not None else b""
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                return
            self._received(data)

    def received(self, data: bytes) -> None:
        """A message from a sibling or, through the relay, from another node."""
        self._received(data)

    def _received(self, data: bytes) -> None:
        head, _, payload = data.partition(b"\n")
        fields = head.split(b" ")
        try:
            if fields[0] == _RESPONSE and len(fields) == 4:
                source = (fields[2].decode(), int(fields[3]))
                self._on_response(payload, fields[1].decode(), source)
            elif fields[0] == _REQUEST and len(fields) == 6:
                source = (fields[2].decode(), int(fields[3]))
                connection_id = None if fields[5] == b"-" else fields[5].decode()
                self._on_request(payload, fields[1].decode(), source, fields[4].decode(), connection_id)
            elif fields[0] == _SEND and len(fields) == 2:
                self._on_send(fields[1].decode(), payload)
        except (ValueError, UnicodeDecodeError):
            log.warning("dropped a malformed message from a sibling worker")


class SiblingConnection:
    """A TCP connection held by a sibling worker: what is sent goes there to be written."""

    def __init__(self, siblings: Siblings, node: str, connection_id: str) -> None:
        self._siblings = siblings
        self.node = node
        self.id = connection_id

    def send(self, data: bytes) -> None:
        self._siblings.send_on_connection(self.node, self.id, data)
