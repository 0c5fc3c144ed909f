"""Typed views of the headers the core needs (RFC 3261 §20, grammar in §25.1): Via, the
name-addr headers (From, To, Contact), CSeq, and display names with quoted strings.

Each parser raises ``SipParseError`` on input outside the grammar; RFC 4475 decides where a
liberal reading is allowed (a token display name running into ``<``, §3.1.1.6) and where it is
not (unquoted commas in display names, unbalanced quotes, spaces inside ``<>``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from .errors import SipParseError
from .uri import PARSED_CACHE, OtherUri, Params, SipUri, find_param, format_params, parse_params, parse_uri

if TYPE_CHECKING:
    from .message import Message, Request

_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_SENT_PROTOCOL = re.compile(r"^\s*([^\s/]+)\s*/\s*([^\s/]+)\s*/\s*([^\s/;]+)\s+(.*)$", re.S)
_SENT_BY = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._\-]+)(?:\s*:\s*(\d{1,5}))?$")
_CSEQ = re.compile(r"^\s*(\d{1,10})\s+([A-Za-z0-9\-.!%*_+`'~]+)\s*$")
MAX_CSEQ = 2**31 - 1  # RFC 3261 §8.1.1.5: the sequence number MUST be less than 2**31


def is_token(text: str) -> bool:
    return bool(_TOKEN.match(text))


@dataclass(frozen=True)
class Via:
    protocol: str  # "SIP/2.0"
    transport: str  # upper case: UDP, TCP, TLS, SCTP, WS, ...
    host: str
    port: int | None
    params: Params

    # Written out for speed (see "Written-out __init__" at the top of sip/message.py).
    def __init__(self, protocol: str, transport: str, host: str, port: int | None, params: Params) -> None:
        fields = self.__dict__
        fields["protocol"] = protocol
        fields["transport"] = transport
        fields["host"] = host
        fields["port"] = port
        fields["params"] = params

    @property
    def branch(self) -> str | None:
        return find_param(self.params, "branch")

    def param(self, name: str) -> str | None:
        return find_param(self.params, name)

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"


def parse_via(value: str) -> Via:
    """One Via value (a header line may hold several; split them first)."""
    match = _SENT_PROTOCOL.match(value)
    if not match:
        raise SipParseError("malformed Via")
    name, version, transport, rest = match.groups()
    if name.upper() != "SIP" or version != "2.0":
        raise SipParseError(f"unsupported protocol in Via: {name}/{version}", status=505)
    sent_by, semicolon, params_text = rest.partition(";")
    by = _SENT_BY.match(sent_by.strip())
    if not by:
        raise SipParseError("malformed sent-by in Via")
    port = int(by.group(2)) if by.group(2) else None
    if port is not None and not 0 < port <= 65535:
        raise SipParseError("port out of range in Via")
    params = parse_params(params_text, "Via") if semicolon else ()
    return Via(f"SIP/{version}", transport.upper(), by.group(1), port, params)


@dataclass(frozen=True)
class NameAddr:
    """``"Display" <uri>;params`` or ``uri;params`` (From, To, Contact, Route...)."""

    display: str | None  # unquoted
    uri: SipUri | OtherUri
    params: Params
    bracketed: bool = True

    # Written out for speed (see "Written-out __init__" at the top of sip/message.py).
    def __init__(self, display: str | None, uri: SipUri | OtherUri, params: Params,
                 bracketed: bool = True) -> None:
        fields = self.__dict__
        fields["display"] = display
        fields["uri"] = uri
        fields["params"] = params
        fields["bracketed"] = bracketed

    def param(self, name: str) -> str | None:
        return find_param(self.params, name)

    @property
    def tag(self) -> str | None:
        return self.param("tag")

    def __str__(self) -> str:
        display = f"{quote(self.display)} " if self.display else ""
        return f"{display}<{self.uri}>{format_params(self.params)}"


def quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _read_quoted(value: str, start: int) -> tuple[str, int]:
    """The unquoted content of the quoted string at ``value[start]``, and the index after it."""
    out, index = [], start + 1
    while index < len(value):
        char = value[index]
        if char == "\\":
            if index + 1 >= len(value):
                break
            out.append(value[index + 1])
            index += 2
        elif char == '"':
            return "".join(out), index + 1
        else:
            out.append(char)
            index += 1
    raise SipParseError("unterminated quoted string")


@lru_cache(maxsize=PARSED_CACHE)  # see PARSED_CACHE in uri.py
def parse_name_addr(value: str) -> NameAddr:
    text = value.strip()
    display = None
    if text.startswith('"'):
        display, end = _read_quoted(text, 0)
        text = text[end:].lstrip()
        if not text.startswith("<"):
            raise SipParseError("a quoted display name must be followed by <URI>")
    if "<" in text:
        before, _, after = text.partition("<")
        if before.strip():
            # A token display name, possibly running straight into '<' (RFC 4475 §3.1.1.6).
            words = before.split()
            if not all(is_token(word) for word in words):
                raise SipParseError("display name must be tokens or a quoted string")
            display = " ".join(words)
        uri_text, closed, rest = after.partition(">")
        if not closed:
            raise SipParseError("missing > after URI")
        uri = parse_uri(uri_text)
        rest = rest.strip()
        bracketed = True
    else:
        # addr-spec form: the first ';' starts header parameters (RFC 4475 §3.3.12), and a URI
        # with a comma, '?' or ';' of its own must be in <> (RFC 3261 §20).
        uri_text, semicolon, rest = text.partition(";")
        rest = f";{rest}" if semicolon else ""
        if "?" in uri_text or "," in uri_text:
            raise SipParseError("a URI with headers or commas must be enclosed in <>")
        uri = parse_uri(uri_text.strip())
        bracketed = False
    if rest and not rest.startswith(";"):
        raise SipParseError("unexpected text after URI")
    params = parse_params(rest[1:], "header parameters") if rest else ()
    return NameAddr(display, uri, params, bracketed)


@dataclass(frozen=True)
class CSeq:
    number: int
    method: str

    # Written out for speed (see "Written-out __init__" at the top of sip/message.py).
    def __init__(self, number: int, method: str) -> None:
        fields = self.__dict__
        fields["number"] = number
        fields["method"] = method

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_cseq(value: str) -> CSeq:
    match = _CSEQ.match(value)
    if not match or int(match.group(1)) > MAX_CSEQ:
        raise SipParseError("malformed CSeq")
    return CSeq(int(match.group(1)), match.group(2))


# -- parsed views of a message's headers, each computed once per message ----------------------
# Each is kept in the message's memo under its own key: the registrar path asks for the same
# views several times per request, and neither a hit nor a miss should cost more than a dict
# lookup beyond the parsing. A parse error is raised and nothing is kept.

def vias(message: "Message") -> list[Via]:
    """Every Via value, parsed (raises SipParseError on the first bad one)."""
    memo = message.memo
    parsed = memo.get("vias")
    if parsed is None:
        parsed = memo["vias"] = [parse_via(value) for value in message.values("Via")]
    return parsed


def top_via(message: "Message") -> Via:
    """The first Via; raises SipParseError when there is none or it does not parse."""
    memo = message.memo
    via = memo.get("top_via")
    if via is None:
        parsed = memo.get("vias")
        if parsed:  # every Via parsed already (``check_request``): the first is the same value
            via = parsed[0]
        else:
            values = message.values("Via")
            if not values:
                raise SipParseError("missing Via header")
            via = parse_via(values[0])
        memo["top_via"] = via
    return via


def cseq_of(message: "Message") -> CSeq:
    memo = message.memo
    cseq = memo.get("cseq")
    if cseq is None:
        cseq = memo["cseq"] = parse_cseq(message.header("CSeq") or "")
    return cseq


def name_addr_of(message: "Message", name: str) -> NameAddr:
    """From, To, ... parsed; raises SipParseError when missing or malformed."""
    memo = message.memo
    address = memo.get(name)
    if address is None:
        value = message.header(name)
        if value is None:
            raise SipParseError(f"missing {name} header")
        address = memo[name] = parse_name_addr(value)
    return address


def request_uri(request: "Request") -> SipUri | OtherUri:
    """The Request-URI, parsed (``check_request`` and ``preflight`` both need it)."""
    memo = request.memo
    uri = memo.get("request_uri")
    if uri is None:
        uri = memo["request_uri"] = parse_uri(request.uri)
    return uri
