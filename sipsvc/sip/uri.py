"""SIP and SIPS URIs (RFC 3261 §19.1, §25.1), and other absolute URIs kept opaque.

A ``SipUri`` keeps every part as it was written (escaped user, parameter spelling, the raw
``?headers`` part), so serialising it gives back the same text (RFC 4475 §3.3.14: a stored
Contact is returned verbatim); comparisons use the normalised forms from ``unescape`` and
lower-cased hosts (§19.1.4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from .errors import SipParseError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._\-]+)(?::(\d{1,5}))?$")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
# Characters that never appear raw in a URI (RFC 3986 and RFC 3261 §25.1).
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f<>\"]")

Params = tuple[tuple[str, str | None], ...]


def unescape(text: str) -> str:
    """Decode %HH escapes once (RFC 4475 §3.1.1.3: never twice); bytes map one to one, so a
    %00 stays a NUL character instead of ending the string."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def parse_params(text: str, what: str) -> Params:
    """``;name[=value]`` pairs (``text`` starts after the first ``;``). Empty names are errors."""
    params = []
    for item in text.split(";"):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not name:
            raise SipParseError(f"empty parameter in {what}")
        params.append((name, value.strip() if sep else None))
    return tuple(params)


def format_params(params: Params) -> str:
    return "".join(f";{name}" if value is None else f";{name}={value}" for name, value in params)


def find_param(params: Params, name: str) -> str | None:
    """The value of the first parameter called ``name`` (case-insensitive); "" for a bare flag."""
    lowered = name.lower()
    for key, value in params:
        if key.lower() == lowered:
            return "" if value is None else value
    return None


@dataclass(frozen=True)
class SipUri:
    scheme: str  # "sip" or "sips", lower case
    user: str | None  # as written, still escaped
    password: str | None
    host: str  # as written; IPv6 references keep their brackets
    port: int | None
    params: Params = ()
    headers: str | None = None  # the raw part after "?"

    # Written out for speed (see "Written-out __init__" at the top of sip/message.py).
    def __init__(self, scheme: str, user: str | None, password: str | None, host: str, port: int | None,
                 params: Params = (), headers: str | None = None) -> None:
        fields = self.__dict__
        fields["scheme"] = scheme
        fields["user"] = user
        fields["password"] = password
        fields["host"] = host
        fields["port"] = port
        fields["params"] = params
        fields["headers"] = headers

    def __str__(self) -> str:
        userinfo = ""
        if self.user is not None:
            userinfo = self.user + (f":{self.password}" if self.password is not None else "") + "@"
        port = f":{self.port}" if self.port is not None else ""
        headers = f"?{self.headers}" if self.headers is not None else ""
        return f"{self.scheme}:{userinfo}{self.host}{port}{format_params(self.params)}{headers}"

    def param(self, name: str) -> str | None:
        return find_param(self.params, name)

    @property
    def host_key(self) -> str:
        """The host for comparisons: lower case, IPv6 brackets removed."""
        return self.host.lower().strip("[]")

    @property
    def plain_user(self) -> str | None:
        return None if self.user is None else unescape(self.user)


@dataclass(frozen=True)
class OtherUri:
    """A URI of a scheme we do not interpret (tel:, urn:, http:, ...), kept as written."""

    scheme: str
    rest: str = field(default="")

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


# Parsed URIs and name-addrs are immutable, and the same texts come back again and again: a
# phone's To, Contact and the Request-URI are the same in both REGISTERs of a registration and
# in every refresh, so the parsers remember their latest answers (a dictionary lookup instead of
# a parse; bounded, a few MiB at most). Texts that do not parse are not remembered.
PARSED_CACHE = 8192


@lru_cache(maxsize=PARSED_CACHE)
def parse_uri(text: str) -> SipUri | OtherUri:
    """Parse an absolute URI; sip and sips in full, any other scheme opaquely."""
    if text.startswith("sip:"):  # what _SCHEME matches in the usual case, without it
        if _FORBIDDEN.search(text):
            raise SipParseError("URI contains whitespace, a control character or a bracket")
        return _parse_sip("sip", text[4:])
    return _parse_any(text)


def _parse_any(text: str) -> SipUri | OtherUri:
    match = _SCHEME.match(text)
    if not match:
        raise SipParseError(f"not a URI: {text[:80]!r}")
    if _FORBIDDEN.search(text):
        raise SipParseError("URI contains whitespace, a control character or a bracket")
    scheme = match.group(1).lower()
    rest = text[match.end():]
    if scheme not in ("sip", "sips"):
        return OtherUri(match.group(1), rest)
    return _parse_sip(scheme, rest)


def _parse_sip(scheme: str, rest: str) -> SipUri:
    user = password = None
    # '@' is legal in neither the host, the parameters nor the headers, so the first one ends
    # the userinfo; the user part itself may hold ';' and '?' (RFC 4475 §3.1.1.9).
    userinfo, at, hostpart = rest.partition("@")
    if at:
        user, colon, pw = userinfo.partition(":")
        password = pw if colon else None
        if not user:
            raise SipParseError("empty user part in SIP URI")
    else:
        hostpart = userinfo
    hostpart, question, headers = hostpart.partition("?")
    hostport, semicolon, params_text = hostpart.partition(";")
    match = _HOST.match(hostport)
    if not match:
        raise SipParseError(f"bad host in SIP URI: {hostport[:80]!r}")
    port = int(match.group(2)) if match.group(2) else None
    if port is not None and port > 65535:
        raise SipParseError("port out of range in SIP URI")
    params = parse_params(params_text, "SIP URI") if semicolon else ()
    return SipUri(scheme, user, password, match.group(1), port, params, headers if question else None)
