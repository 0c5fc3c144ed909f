"""Parsing SIP messages from bytes (RFC 3261 §7, §18.3, §25; RFC 4475).

- ``parse_datagram``: one message from one UDP datagram. Content-Length frames the body; bytes
  after it are ignored (§18.3), a missing Content-Length means the rest of the datagram, and a
  length past the end is an error.
- ``StreamFramer``: messages from a byte stream (TCP). Content-Length is required (absent means
  0); a framing error is fatal for the connection because the next message cannot be found.
- ``check_request``: the rules a request must meet before anything acts on it (§8.1.1, §8.2):
  mandatory headers once each, a well-formed CSeq naming the request's method, parseable Vias,
  From and To.

Errors carry what was parsed so far, so a server can still answer 400 to a usable Via.
"""

from __future__ import annotations

import re
from .errors import FramingError, SipParseError
from .headers import cseq_of, is_token, name_addr_of, top_via, vias
from .message import Headers, Request, Response, canonical_name
from .uri import SipUri, parse_uri

_LINE_END = re.compile(r"\r?\n")
_STATUS_LINE = re.compile(r"^SIP/(\d+\.\d+) (\d{3}) (.*)$", re.S)
_REQUEST_LINE = re.compile(r"^([^ ]+) ([^ ]+) SIP/(\d+\.\d+)$")
_VERSION = re.compile(r"^SIP/\d+\.\d+$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
SINGLE_HEADERS = ("To", "From", "Call-ID", "CSeq", "Max-Forwards")
_HEAD_END = re.compile(rb"\r?\n\r?\n")


def _decode(data: bytes) -> str:
    # UTF-8 where it is UTF-8; any other byte survives as a surrogate and serialises back as it was.
    return data.decode("utf-8", "surrogateescape")


def _parse_head(head: str) -> tuple[str, Headers]:
    lines = _LINE_END.split(head)
    start = lines[0]
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":  # folded continuation (§7.3.1)
            if not headers:
                raise SipParseError("continuation line before any header")
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not _HEADER_NAME.match(name):
            raise SipParseError("malformed header line")
        headers.append((canonical_name(name), value.strip(" \t")))
    return start, tuple(headers)


def _start_line(start: str, headers: Headers) -> tuple[bool, tuple]:
    """(is_request, parts) from the start line; raises with the headers kept for a reply."""
    if start.startswith("SIP/"):
        match = _STATUS_LINE.match(start)
        if not match:
            raise SipParseError("malformed status line", headers=headers, is_request=False)
        version, code, reason = match.groups()
        if version != "2.0" or not 100 <= int(code) <= 699:
            raise SipParseError("unsupported version or status", headers=headers, is_request=False)
        return False, (int(code), reason)
    match = _REQUEST_LINE.match(start)
    if not match or not is_token(match.group(1)):
        raise SipParseError("malformed request line", headers=headers)
    method, uri, version = match.groups()
    if version != "2.0":
        raise SipParseError("SIP version not supported", 505, headers=headers)
    if uri.startswith("<"):
        raise SipParseError("Request-URI must not be enclosed in <>", headers=headers)
    return True, (method, uri)


def content_length(headers: Headers) -> int | None:
    values = {value.strip() for name, value in headers if name == "Content-Length"}
    if not values:
        return None
    if len(values) > 1:
        raise FramingError("conflicting Content-Length headers")
    text = values.pop()
    if not text.isdigit() or len(text) > 10:
        raise FramingError("malformed Content-Length")
    return int(text)


def _build(is_request: bool, parts: tuple, headers: Headers, body: bytes) -> Request | Response:
    if is_request:
        return Request(method=parts[0], uri=parts[1], headers=headers, body=body)
    return Response(status=parts[0], reason=parts[1], headers=headers, body=body)


def _split(data: bytes) -> tuple[bytes, bytes]:
    data = data.lstrip(b"\r\n")  # CRLFs before the start line are ignored (§7.5)
    match = _HEAD_END.search(data)
    if match is None:
        return data.rstrip(b"\r\n"), b""  # a datagram with no empty line: headers only
    return data[: match.start()], data[match.end():]


def parse_datagram(data: bytes) -> Request | Response:
    """Parse one message from a UDP datagram."""
    head, rest = _split(data)
    if not head:
        raise SipParseError("empty message")
    start, headers = _parse_head(_decode(head))
    is_request, parts = _start_line(start, headers)
    try:
        length = content_length(headers)
    except FramingError as exc:
        raise exc.with_headers(headers, is_request) from None
    if length is None:
        body = rest
    elif length > len(rest):
        raise FramingError("body shorter than Content-Length", headers=headers, is_request=is_request)
    else:
        body = rest[:length]
    return _build(is_request, parts, headers, body)


def check_request(request: Request) -> None:
    """Raise ``SipParseError`` (with the headers kept) if ``request`` may not be processed."""
    try:
        for name in SINGLE_HEADERS:
            count = len(request.header_lines(name))
            if count > 1:
                raise SipParseError(f"more than one {name} header")
            if count == 0 and name != "Max-Forwards":  # RFC 2543 peers send none (RFC 4475 §3.4.1)
                raise SipParseError(f"missing {name} header")
        if not request.values("Via"):
            raise SipParseError("missing Via header")
        vias(request)
        cseq = cseq_of(request)
        if cseq.method != request.method:
            raise SipParseError("CSeq method does not match the request method")
        if not request.header("Call-ID"):
            raise SipParseError("empty Call-ID")
        uri = parse_uri(request.uri)
        if isinstance(uri, SipUri) and uri.headers is not None:
            raise SipParseError("Request-URI must not carry headers")
        name_addr_of(request, "From")
        name_addr_of(request, "To")
    except SipParseError as exc:
        raise exc.with_headers(request.headers, True) from None


def check_response(response: Response) -> None:
    """Raise ``SipParseError`` if ``response`` cannot be matched to a transaction (§17.1.3)."""
    try:
        top_via(response)
        cseq_of(response)
    except SipParseError as exc:
        raise exc.with_headers(response.headers, False) from None


class StreamFramer:
    """Splits a byte stream into messages (RFC 3261 §18.3), bounded by ``max_message`` bytes.

    ``feed`` returns the complete messages so far; CRLF keep-alives between messages
    (RFC 5626 §3.5.1) are reported as ``b"\\r\\n\\r\\n"`` pings. A framing error raises
    ``SipParseError``: the stream cannot be resynchronised and must be closed.
    """

    PING = "ping"

    def __init__(self, max_message: int = 65536) -> None:
        self._buffer = bytearray()
        self._max = max_message

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Request | Response | str]:
        self._buffer += data
        out: list[Request | Response | str] = []
        while True:
            item = self._next()
            if item is None:
                return out
            out.append(item)

    def _next(self) -> Request | Response | str | None:
        buffer = self._buffer
        if buffer.startswith(b"\r\n\r\n"):
            del buffer[:4]
            return self.PING
        stripped = len(buffer) - len(buffer.lstrip(b"\r\n"))
        if stripped and stripped == len(buffer):
            return None  # only line ends so far: maybe the start of a ping
        del buffer[:stripped]
        match = _HEAD_END.search(buffer)
        if match is None:
            if len(buffer) > self._max:
                raise FramingError("message headers exceed the size limit", 413)
            return None
        start, headers = _parse_head(_decode(bytes(buffer[: match.start()])))
        is_request, parts = _start_line(start, headers)
        try:
            length = content_length(headers) or 0
        except FramingError as exc:
            raise exc.with_headers(headers, is_request) from None
        end = match.end() + length
        if end > self._max:
            raise FramingError("message exceeds the size limit", 413, headers=headers, is_request=is_request)
        if len(buffer) < end:
            return None
        body = bytes(buffer[match.end():end])
        del buffer[:end]
        return _build(is_request, parts, headers, body)


