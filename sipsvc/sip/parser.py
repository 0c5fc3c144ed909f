"""Parsing SIP messages from bytes (RFC 3261 §7, §18.3, §25; RFC 4475).

- ``parse_datagram``: one message from one UDP datagram. Content-Length frames the body; bytes
  after it are ignored (§18.3), a missing Content-Length means the rest of the datagram, and a
  length past the end is an error.
- ``StreamFramer``: messages from a byte stream (TCP). Content-Length is required (absent means
  0); a framing error is fatal for the connection because the next message cannot be found.
- ``check_request``: the rules a request must meet before anything acts on it (§8.1.1, §8.2):
  mandatory headers once each, a well-formed CSeq naming the request's method, parseable Vias,
  From and To.

Every one of them takes ``Limits`` (the caller's, from its configuration; the defaults below
otherwise): hostile input is refused before it costs more than a bounded amount of work, and
each check is O(1) per message or made while splitting lines, so the common case pays nothing.

Errors carry what was parsed so far, so a server can still answer 400 to a usable Via.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import FramingError, SipParseError
from .headers import cseq_of, is_token, name_addr_of, request_uri, top_via, vias
from .message import CANONICAL, Headers, Request, Response, canonical_name
from .uri import SipUri

_LINE_END = re.compile(r"\r?\n")
_STATUS_LINE = re.compile(r"^SIP/(\d+\.\d+) (\d{3}) (.*)$", re.S)
_REQUEST_LINE = re.compile(r"^([^ ]+) ([^ ]+) SIP/(\d+\.\d+)$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
SINGLE_HEADERS = ("To", "From", "Call-ID", "CSeq", "Max-Forwards")
_HEAD_END = re.compile(rb"\r?\n\r?\n")  # the end of the head; ``_head_end`` finds it faster
# Header names as phones write them (canonical, lower and upper case, compact forms) and their
# canonical spelling: a name found here needs neither the regular expression nor lower().
# Built once from the tables of message.py and never grown, so hostile input cannot bloat it.
_KNOWN_NAMES = {
    spelling: canonical_name(spelling)
    for name in {*CANONICAL, *CANONICAL.values()}
    for spelling in (name, name.lower(), name.upper())
    if _HEADER_NAME.match(spelling)
}


@dataclass(frozen=True)
class Limits:
    """What one message may hold before it is refused (defaults suit phones and proxies alike;
    RFC 4475's longest message has 43 header lines and 34 Vias).

    - ``max_message``: bytes of a whole message, headers and body (413).
    - ``max_headers``: header lines, folded continuation lines included (400).
    - ``max_line``: characters of one line, the start line included (400).
    - ``max_uri``: characters of the Request-URI (414, RFC 3261 §21.4.12) and of the URIs of
      From and To (400).
    - ``max_vias``: Via values of a request (400); more than Max-Forwards' usual 70 hops is a loop
      or an attack.
    """

    max_message: int = 65536
    max_headers: int = 128
    max_line: int = 8192
    max_uri: int = 2048
    max_vias: int = 70


DEFAULT_LIMITS = Limits()


def _decode(data: bytes) -> str:
    # UTF-8 where it is UTF-8; any other byte survives as a surrogate and serialises back as it was.
    return data.decode("utf-8", "surrogateescape")


def _split_lines(head: str) -> list[str]:
    """``head`` split at CRLF or bare LF; with CRLF only (the usual case) str.split does it."""
    lines = head.split("\r\n")
    if len(lines) - 1 != head.count("\n"):  # a bare LF somewhere
        lines = _LINE_END.split(head)
    return lines


def _parse_head(head: str, limits: Limits) -> tuple[str, Headers]:
    lines = _split_lines(head)
    start = lines[0]
    too_many = len(lines) - 1 > limits.max_headers
    # One line over the limit needs a head over it: only then are the lines measured.
    measure = len(head) > limits.max_line
    if too_many or measure:
        return start, _parse_hostile(start, lines, limits, too_many)
    return start, _parse_lines(lines, 1, len(lines))


def _parse_hostile(start: str, lines: list[str], limits: Limits, too_many: bool) -> Headers:
    """The head of a message over a limit: raise with the headers before the offending line
    (bounded work), so that a request with a usable Via can still be answered."""
    is_request = not start.startswith("SIP/")
    if len(start) > limits.max_line:
        raise SipParseError("start line too long", headers=(), is_request=is_request)
    end = min(len(lines), limits.max_headers + 1)
    for index in range(1, end):
        if len(lines[index]) > limits.max_line:
            headers = _parse_partial(lines, index)
            raise SipParseError("header line too long", headers=headers, is_request=is_request)
    if too_many:
        raise SipParseError("too many header lines", headers=_parse_partial(lines, end),
                            is_request=is_request)
    return _parse_lines(lines, 1, len(lines))


def _parse_partial(lines: list[str], end: int) -> Headers:
    try:
        return _parse_lines(lines, 1, end)
    except SipParseError:
        return ()


def _parse_lines(lines: list[str], begin: int, end: int) -> Headers:
    headers: list[tuple[str, str]] = []
    known = _KNOWN_NAMES
    for index in range(begin, end):
        line = lines[index]
        if not line:
            continue
        if line[0] in " \t":  # folded continuation (§7.3.1)
            if not headers:
                raise SipParseError("continuation line before any header")
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise SipParseError("malformed header line")
        canonical = known.get(name)  # no blanks before the colon, the usual case
        if canonical is None:
            name = name.rstrip(" \t")
            canonical = known.get(name)
            if canonical is None:
                if not _HEADER_NAME.match(name):
                    raise SipParseError("malformed header line")
                canonical = canonical_name(name)
        headers.append((canonical, value.strip(" \t")))
    return tuple(headers)


def _start_line(start: str, headers: Headers, limits: Limits = DEFAULT_LIMITS) -> tuple[bool, tuple]:
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
    if len(uri) > limits.max_uri:
        raise SipParseError("Request-URI too long", 414, headers=headers)
    return True, (method, uri)


def content_length(headers: Headers) -> int | None:
    text = None
    for name, value in headers:
        if name == "Content-Length":
            value = value.strip()
            if text is None:
                text = value
            elif value != text:  # repeating the same length is harmless
                raise FramingError("conflicting Content-Length headers")
    if text is None:
        return None
    if not text.isdigit() or len(text) > 10:
        raise FramingError("malformed Content-Length")
    return int(text)


def _build(is_request: bool, parts: tuple, headers: Headers, body: bytes) -> Request | Response:
    if is_request:
        return Request(method=parts[0], uri=parts[1], headers=headers, body=body)
    return Response(status=parts[0], reason=parts[1], headers=headers, body=body)


def _head_end(data: bytes | bytearray, pos: int = 0) -> tuple[int, int] | None:
    """Where ``_HEAD_END.search(data, pos)`` matches (its start and end), found with find():
    the pattern's optional leading CR keeps the regular expression from skipping ahead to a
    literal, so it tries every position. The earliest LF followed by [CR]LF is the match; a CR
    just before that LF belongs to it."""
    crlf, lf = data.find(b"\n\r\n", pos), data.find(b"\n\n", pos)
    if crlf < 0 and lf < 0:
        return None
    if lf < 0 or 0 <= crlf < lf:
        at, end = crlf, crlf + 3
    else:
        at, end = lf, lf + 2
    if at > pos and data[at - 1] == 13:  # b"\r"
        at -= 1
    return at, end


def _split(data: bytes) -> tuple[bytes, bytes]:
    data = data.lstrip(b"\r\n")  # CRLFs before the start line are ignored (§7.5)
    found = _head_end(data)
    if found is None:
        return data.rstrip(b"\r\n"), b""  # a datagram with no empty line: headers only
    return data[: found[0]], data[found[1]:]


def parse_datagram(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Request | Response:
    """Parse one message from a UDP datagram (the transport drops one over ``max_message``
    before it gets here; here it is refused with 413)."""
    if len(data) > limits.max_message:
        raise FramingError("message exceeds the size limit", 413)
    head, rest = _split(data)
    if not head:
        raise SipParseError("empty message")
    start, headers = _parse_head(_decode(head), limits)
    is_request, parts = _start_line(start, headers, limits)
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


def check_request(request: Request, limits: Limits = DEFAULT_LIMITS) -> None:
    """Raise ``SipParseError`` (with the headers kept) if ``request`` may not be processed."""
    try:
        index = request.header_index()
        for name in SINGLE_HEADERS:
            lines = index.get(name)
            if lines is None:
                if name != "Max-Forwards":  # RFC 2543 peers send none (RFC 4475 §3.4.1)
                    raise SipParseError(f"missing {name} header")
            elif len(lines) > 1:
                raise SipParseError(f"more than one {name} header")
        if "Via" not in index:
            raise SipParseError("missing Via header")
        # Every Via must parse; the top one is then known too (``top_via`` reuses it).
        if len(vias(request)) > limits.max_vias:
            raise SipParseError("too many Via headers")
        cseq = cseq_of(request)
        if cseq.method != request.method:
            raise SipParseError("CSeq method does not match the request method")
        if not index["Call-ID"][0]:
            raise SipParseError("empty Call-ID")
        uri = request_uri(request)
        if isinstance(uri, SipUri) and uri.headers is not None:
            raise SipParseError("Request-URI must not carry headers")
        for name in ("From", "To"):
            address = name_addr_of(request, name)
            # A header's length bounds its URI's: only a long header's URI is measured.
            if len(index[name][0]) > limits.max_uri and len(str(address.uri)) > limits.max_uri:
                raise SipParseError(f"URI in {name} too long")
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
    """Splits a byte stream into messages (RFC 3261 §18.3), bounded by ``limits.max_message``
    bytes (``max_message``, when given, overrides it).

    ``feed`` returns the complete messages so far; CRLF keep-alives between messages
    (RFC 5626 §3.5.1) are reported as ``b"\\r\\n\\r\\n"`` pings. A framing error raises
    ``SipParseError``: the stream cannot be resynchronised and must be closed. Bytes trickled in
    one at a time cost O(1) each: the search for the end of the headers resumes where it stopped.
    """

    PING = "ping"

    def __init__(self, max_message: int | None = None, *, limits: Limits = DEFAULT_LIMITS) -> None:
        self._buffer = bytearray()
        self._limits = limits
        self._max = limits.max_message if max_message is None else max_message
        self._scanned = 0  # bytes of the buffer known to hold no end of headers
        self._head: tuple | None = None  # the parsed head of a message whose body is still due

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def partial(self) -> bool:
        """True while part of a message (anything but line ends) waits for the rest."""
        buffer = self._buffer
        if not buffer:
            return False
        if buffer[0] not in b"\r\n":
            return True
        return bool(buffer.lstrip(b"\r\n"))

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
        if not buffer:
            return None
        if buffer[0] in b"\r\n":
            if buffer.startswith(b"\r\n\r\n"):
                del buffer[:4]
                self._scanned = 0
                return self.PING
            stripped = len(buffer) - len(buffer.lstrip(b"\r\n"))
            if stripped == len(buffer):
                return None  # only line ends so far: maybe the start of a ping
            del buffer[:stripped]
            self._scanned = 0
        if self._head is None:
            self._head = self._parse_next_head(buffer)
            if self._head is None:
                return None
        body_start, end, is_request, parts, headers = self._head
        if len(buffer) < end:
            return None  # the body is still due; its head is kept, not parsed again
        body = bytes(buffer[body_start:end])
        del buffer[:end]
        self._scanned = 0
        self._head = None
        return _build(is_request, parts, headers, body)

    def _parse_next_head(self, buffer: bytearray) -> tuple | None:
        # The end of the headers is at most 4 bytes long: resume the search just before the
        # bytes already scanned (the buffer never grows past the limit without a match).
        found = _head_end(buffer, max(self._scanned - 3, 0))
        if found is None:
            self._scanned = len(buffer)
            if len(buffer) > self._max:
                raise FramingError("message headers exceed the size limit", 413)
            return None
        head_end, body_start = found
        start, headers = _parse_head(_decode(bytes(buffer[:head_end])), self._limits)
        is_request, parts = _start_line(start, headers, self._limits)
        try:
            length = content_length(headers) or 0
        except FramingError as exc:
            raise exc.with_headers(headers, is_request) from None
        end = body_start + length
        if end > self._max:
            raise FramingError("message exceeds the size limit", 413, headers=headers, is_request=is_request)
        return body_start, end, is_request, parts, headers
