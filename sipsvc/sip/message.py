"""SIP messages (RFC 3261 §7): small immutable requests and responses.

Headers are a tuple of (name, value) pairs in the order received. Names are normalised when a
message is parsed or built: compact forms are expanded (§7.3.3) and known names take their
canonical spelling, so ``v``, ``VIA`` and ``Via`` are all ``Via``. Values are unfolded but
otherwise as received; one header line holding several comma-separated values stays one entry
(``values`` splits them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Headers = tuple[tuple[str, str], ...]
# Written-out __init__: the frozen types made for every request (messages, URIs, Vias, name-addrs,
# CSeqs, transaction events and keys) have a written-out __init__ that fills the instance dict:
# a frozen dataclass's generated one sets each field through object.__setattr__, about 1 µs per
# object more. tests/unit/sip/test_fast_paths.py checks each one against the dataclass fields.
_NO_LINES: list[str] = []

# RFC 3261 §7.3.3 and later RFCs' compact forms.
COMPACT_FORMS = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type", "d": "Request-Disposition",
    "e": "Content-Encoding", "f": "From", "i": "Call-ID", "j": "Reject-Contact", "k": "Supported",
    "l": "Content-Length", "m": "Contact", "n": "Identity-Info", "o": "Event", "r": "Refer-To",
    "s": "Subject", "t": "To", "u": "Allow-Events", "v": "Via", "x": "Session-Expires",
    "y": "Identity",
}
_CANONICAL_NAMES = [
    "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Allow-Events",
    "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact", "Content-Disposition",
    "Content-Encoding", "Content-Language", "Content-Length", "Content-Type", "CSeq", "Date",
    "Error-Info", "Event", "Expires", "From", "In-Reply-To", "Max-Forwards", "Min-Expires",
    "MIME-Version", "Organization", "Path", "Priority", "Proxy-Authenticate", "Proxy-Authorization",
    "Proxy-Require", "Record-Route", "Refer-To", "Referred-By", "Reply-To", "Require",
    "Retry-After", "Route", "RSeq", "RAck", "Server", "Subject", "Subscription-State", "Supported",
    "Timestamp", "To", "Unsupported", "User-Agent", "Via", "Warning", "WWW-Authenticate",
]
CANONICAL = {name.lower(): name for name in _CANONICAL_NAMES}
CANONICAL.update(COMPACT_FORMS)
# Names already in their canonical spelling (``canonical_name`` returns them unchanged): a
# lookup by one of them that misses the index needs no second try.
_CANONICAL_SPELLINGS = frozenset(CANONICAL.values())

# Headers whose value may be a comma-separated list (RFC 3261 §7.3.1); for all others a comma
# is part of the value (dates, display names, Authorization parameters).
LIST_HEADERS = frozenset({
    "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Allow-Events",
    "Call-Info", "Contact", "Content-Encoding", "Content-Language", "Error-Info", "In-Reply-To",
    "Path", "Proxy-Require", "Record-Route", "Require", "Route", "Supported", "Unsupported",
    "Via", "Warning",
})


def canonical_name(name: str) -> str:
    return CANONICAL.get(name.lower(), name)


def split_values(value: str) -> list[str]:
    """Split a list header on commas outside quoted strings and angle brackets."""
    if "," not in value:  # one value, whatever its quotes and brackets (most Contacts)
        return [value.strip()]
    if '"' not in value and "<" not in value:
        return [part.strip() for part in value.split(",")]  # no quotes or brackets: in C
    return split_values_scanning(value)


def split_values_scanning(value: str) -> list[str]:
    """split_values by reading every character (the fast paths' model, in the tests)."""
    parts, start, depth, quoted, escaped = [], 0, 0, False, False
    for index, char in enumerate(value):
        if escaped:
            escaped = False
        elif quoted:
            if char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == "<":
            depth += 1
        elif char == ">":
            depth = max(depth - 1, 0)
        elif char == "," and depth == 0:
            parts.append(value[start:index].strip())
            start = index + 1
    parts.append(value[start:].strip())
    return parts


@dataclass(frozen=True, kw_only=True)
class Message:
    headers: Headers
    body: bytes = b""
    # Parsed header views, computed once per message (see ``headers.py``); not part of its value.
    memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def header_index(self) -> dict[str, list[str]]:
        """Header name (as stored) -> its lines, built once per message: the registrar path
        looks headers up a dozen times per request. Shared, not a copy: never modify it."""
        index = self.memo.get("_index")
        if index is None:
            index = self.memo["_index"] = {}
            for key, value in self.headers:
                lines = index.get(key)
                if lines is None:
                    index[key] = [value]
                else:
                    lines.append(value)
        return index

    def _lines(self, name: str) -> list[str]:
        index = self.header_index()
        lines = index.get(name)
        if lines is None:
            if name in _CANONICAL_SPELLINGS:
                return _NO_LINES
            lines = index.get(canonical_name(name), _NO_LINES)
        return lines

    def header(self, name: str) -> str | None:
        """The first value of the header ``name`` (any spelling), or None."""
        lines = self._lines(name)
        return lines[0] if lines else None

    def header_lines(self, name: str) -> list[str]:
        return list(self._lines(name))

    def values(self, name: str) -> list[str]:
        """Every value of a header, list headers split on their commas."""
        lines = self._lines(name)
        if not lines:
            return []
        # Every list header's name is canonical: one spelled so needs no canonical_name().
        if name not in LIST_HEADERS and canonical_name(name) not in LIST_HEADERS:
            return list(lines)
        return [part for line in lines for part in split_values(line)]

    def _header_bytes(self) -> bytes:
        lines = [f"{name}: {value}\r\n" for name, value in self.headers if name != "Content-Length"]
        lines.append(f"Content-Length: {len(self.body)}\r\n\r\n")
        return "".join(lines).encode("utf-8", "surrogateescape")


@dataclass(frozen=True, kw_only=True)
class Request(Message):
    method: str
    uri: str

    # Written out for speed (see "Written-out __init__" at the top of sip/message.py).
    def __init__(self, *, method: str, uri: str, headers: Headers, body: bytes = b"",
                 memo: dict[str, Any] | None = None) -> None:
        fields = self.__dict__
        fields["headers"] = headers
        fields["body"] = body
        fields["memo"] = {} if memo is None else memo
        fields["method"] = method
        fields["uri"] = uri

    def to_bytes(self) -> bytes:
        start = f"{self.method} {self.uri} SIP/2.0\r\n".encode("utf-8", "surrogateescape")
        return start + self._header_bytes() + self.body


@dataclass(frozen=True, kw_only=True)
class Response(Message):
    status: int
    reason: str

    # Written out for speed (see "Written-out __init__" at the top of sip/message.py).
    def __init__(self, *, status: int, reason: str, headers: Headers, body: bytes = b"",
                 memo: dict[str, Any] | None = None) -> None:
        fields = self.__dict__
        fields["headers"] = headers
        fields["body"] = body
        fields["memo"] = {} if memo is None else memo
        fields["status"] = status
        fields["reason"] = reason

    def to_bytes(self) -> bytes:
        start = f"SIP/2.0 {self.status} {self.reason}\r\n".encode("utf-8", "surrogateescape")
        return start + self._header_bytes() + self.body

