"""A small SIP user agent for the tests: sends real REGISTERs over loopback UDP or TCP and
answers digest challenges with the core's client-side digest. It is a real network peer (the
service under test sees ordinary packets); SIPp and pjsua2 tests cover other implementations."""

from __future__ import annotations

import asyncio
import itertools
import os

from sipsvc.sip import digest
from sipsvc.sip.message import Request, Response
from sipsvc.sip.parser import StreamFramer, parse_datagram

_counter = itertools.count(1)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr) -> None:
        self.queue.put_nowait(data)


class SipClient:
    def __init__(self, server: tuple[str, int], transport: str = "udp", *, bind: str = "127.0.0.1") -> None:
        self.server = server
        self.transport = transport
        self.local: tuple[str, int] = (bind, 0)  # another loopback address is another source
        self._udp = None
        self._reader = self._writer = None
        self._framer = StreamFramer()
        self.call_id = f"{os.urandom(6).hex()}@test"
        self.cseq = 0
        self.tag = os.urandom(4).hex()

    async def __aenter__(self) -> "SipClient":
        loop = asyncio.get_running_loop()
        if self.transport == "udp":
            transport, self._udp = await loop.create_datagram_endpoint(_Udp, local_addr=self.local)
            self._udp_transport = transport
            self.local = transport.get_extra_info("sockname")[:2]
        else:
            self._reader, self._writer = await asyncio.open_connection(*self.server, local_addr=self.local)
            self.local = self._writer.get_extra_info("sockname")[:2]
        return self

    async def __aexit__(self, *exc) -> None:
        if self._udp is not None:
            self._udp_transport.close()
        if self._writer is not None:
            self._writer.close()

    def send_bytes(self, data: bytes) -> None:
        if self.transport == "udp":
            self._udp_transport.sendto(data, self.server)
        else:
            self._writer.write(data)

    async def receive(self, timeout: float = 3.0) -> Response:
        if self.transport == "udp":
            return parse_datagram(await asyncio.wait_for(self._udp.queue.get(), timeout))
        while True:
            data = await asyncio.wait_for(self._reader.read(65536), timeout)
            if not data:
                raise ConnectionError("server closed the connection")
            for item in self._framer.feed(data):
                if item != StreamFramer.PING:
                    return item

    def register_request(self, user: str, realm: str, *, contacts: list[str] | None = None,
                         expires: int | None = 300, authorization: str | None = None,
                         cseq: int | None = None, call_id: str | None = None,
                         extra: list[tuple[str, str]] = (), uri: str | None = None) -> Request:
        self.cseq = cseq if cseq is not None else self.cseq + 1
        transport = self.transport.upper()
        host, port = self.local
        headers = [
            ("Via", f"SIP/2.0/{transport} {host}:{port};rport;branch=z9hG4bK{os.urandom(8).hex()}"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{user}@{realm}>;tag={self.tag}"),
            ("To", f"<sip:{user}@{realm}>"),
            ("Call-ID", call_id or self.call_id),
            ("CSeq", f"{self.cseq} REGISTER"),
        ]
        for contact in (contacts if contacts is not None else [f"<sip:{user}@{host}:{port};transport={self.transport}>"]):
            headers.append(("Contact", contact))
        if expires is not None:
            headers.append(("Expires", str(expires)))
        if authorization:
            headers.append(("Authorization", authorization))
        headers.append(("User-Agent", "sipsvc-tests"))
        headers.extend(extra)
        return Request(method="REGISTER", uri=uri or f"sip:{realm}", headers=tuple(headers))

    async def send(self, request: Request, timeout: float = 3.0) -> Response:
        """Send and wait for the final response (provisional ones are skipped)."""
        self.send_bytes(request.to_bytes())
        while True:
            response = await self.receive(timeout)
            if response.status >= 200:
                return response

    async def register(self, user: str, password: str, realm: str, **kwargs) -> Response:
        """REGISTER, answer the challenge, return the final response."""
        first = await self.send(self.register_request(user, realm, **kwargs))
        if first.status != 401:
            return first
        return await self.send(self.register_request(
            user, realm, authorization=self.answer(first, user, password, kwargs.get("uri") or f"sip:{realm}"),
            **{k: v for k, v in kwargs.items() if k != "cseq"},
        ))

    @staticmethod
    def answer(challenge: Response, user: str, password: str, uri: str, *, algorithm: str = "SHA-256",
               nc: int = 1, cnonce: str | None = None) -> str:
        offers = [digest.parse_auth_params(v)[1] for v in challenge.header_lines("WWW-Authenticate")]
        chosen = next(o for o in offers if o.get("algorithm", "MD5").upper() == algorithm)
        return digest.authorization_header(chosen, "REGISTER", uri, user, password,
                                           cnonce or os.urandom(8).hex(), nc)
