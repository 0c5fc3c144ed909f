"""What a UAS does with a request before any application logic (RFC 3261 §8.2, §18.2), pure:

- ``make_response``: a response copying Via, From, To (with a tag), Call-ID and CSeq (§8.2.6);
- ``stamp_via``: the ``received`` and ``rport`` parameters a server adds to the top Via
  (§18.2.1, RFC 3581 §4), so the response says where the request really came from;
- ``response_address``: where a response goes over an unreliable transport (§18.2.2, RFC 3581);
- ``preflight``: the answer for a method, URI scheme or extension the service does not handle
  (§8.2.1–§8.2.2: 405 with Allow, 501, 416, 420 with Unsupported), in the RFC's order.
"""

from __future__ import annotations

import email.utils
import ipaddress
import re

from .errors import SipParseError
from .headers import Via, request_uri, top_via
from .message import Request, Response, split_values
from .uri import SipUri

REASONS = {
    100: "Trying", 200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout", 413: "Request Entity Too Large",
    416: "Unsupported URI Scheme", 420: "Bad Extension", 423: "Interval Too Brief",
    481: "Call/Transaction Does Not Exist", 500: "Server Internal Error", 501: "Not Implemented",
    503: "Service Unavailable", 505: "Version Not Supported",
}
# Every method a SIP element may know (RFC 3261 and its extensions); the others get 501.
KNOWN_METHODS = frozenset({
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY",
    "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
})


_COPIED = frozenset({"Via", "From", "Call-ID", "CSeq"})  # as they are; To gets a tag (§8.2.6.2)


def make_response(request: Request, status: int, reason: str | None = None, *,
                  headers: tuple[tuple[str, str], ...] = (), to_tag: str | None = None,
                  body: bytes = b"") -> Response:
    """A response to ``request`` (§8.2.6.2). ``to_tag`` is added to To when it has none and the
    status is above 100; ``headers`` are appended after the copied ones."""
    copied = []
    for pair in request.headers:
        name, value = pair
        if name in _COPIED:
            copied.append(pair)
        elif name == "To":
            if to_tag and status > 100 and ";tag=" not in value.replace(" ", "").lower():
                value = f"{value};tag={to_tag}"
            copied.append((name, value))
    return Response(status=status, reason=reason or REASONS.get(status, ""),
                    headers=(*copied, *headers), body=body)


def http_date(now: float) -> str:
    """An RFC 1123 date in GMT, as SIP's Date header wants it (§20.17): the second ``now`` falls
    in. Each second's text is made once (every 200 to a REGISTER carries one)."""
    second = int(now)
    if _LAST_DATE[0] != second:
        _LAST_DATE[:] = [second, email.utils.formatdate(second, usegmt=True)]
    return _LAST_DATE[1]


_LAST_DATE: list = [None, ""]  # [second, its text]


def _same_host(host: str, ip: str) -> bool:
    if host == ip:  # the usual case, without parsing two addresses
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")) == ipaddress.ip_address(ip)
    except ValueError:
        return False


_SERVER_PARAMS = ("received", "rport")
_SPACE = re.compile(r"\s")  # what str.strip() and split_values would take away


def stamp_via(request: Request, source_ip: str, source_port: int) -> Request:
    """Add ``received`` (when the sent-by host is not the source address) and fill ``rport``
    (when the client asked for it) on the top Via. A Via that does not parse is left alone.

    The top Via is written back as ``str(Via)`` writes it: its other parameters, then
    ``received`` and ``rport``."""
    for index, (name, value) in enumerate(request.headers):
        if name == "Via":
            break
    else:
        return request
    try:
        via = top_via(request)
    except SipParseError:
        return request
    params = [(k, v) for k, v in via.params if k.lower() not in _SERVER_PARAMS]
    kept = len(params)
    rport = via.param("rport") is not None
    if rport or not _same_host(via.host, source_ip):
        params.append(("received", source_ip))
    if rport:
        params.append(("rport", str(source_port)))
    stamped = Via(via.protocol, via.transport, via.host, via.port, tuple(params))
    text = _stamped_text(value, via, kept, params) if kept == len(via.params) - 1 else None
    if text is None:
        values = split_values(value)
        values[0] = str(stamped)
        text = ", ".join(values)
    headers = list(request.headers)
    headers[index] = ("Via", text)
    # The other parsed views stay true; the top Via and the header index show the stamped one.
    memo = dict(request.memo)
    memo.pop("vias", None)
    memo["top_via"] = stamped
    index = memo.get("_index")
    if index is not None:
        memo["_index"] = index = dict(index)
        index["Via"] = [text, *index["Via"][1:]]
    return Request(method=request.method, uri=request.uri, headers=tuple(headers), body=request.body,
                   memo=memo)


def _stamped_text(value: str, via: Via, kept: int, params: list[tuple[str, str | None]]) -> str | None:
    """The stamped Via line as text edits, for the usual case: ``value`` is one Via written
    exactly as ``str(via)`` writes it, and its one server parameter is a bare ``;rport``. Then
    dropping that and appending the new parameters gives what re-serialising would; anything
    else gives None (the caller serialises). ``params[kept:]`` are the parameters to append."""
    if "," in value:
        return None  # several Vias on the line: split_values rewrites the separators
    head = f"{via.protocol}/{via.transport} {via.host}"
    if via.port is not None:
        head = f"{head}:{via.port}"
    if not value.startswith(head):
        return None  # blanks, letter case or a port written otherwise: str(via) rewrites them
    tail = value[len(head):]
    if tail[:1] != ";" or _SPACE.search(tail):
        return None  # parse_params would strip the blanks
    if tail.endswith(";rport"):
        tail = tail[:-6]
    elif ";rport;" in tail:
        tail = tail.replace(";rport;", ";", 1)
    else:
        return None  # the server parameter is spelled otherwise, or has a value
    added = "".join([f";{name}={param}" for name, param in params[kept:]])
    return f"{head}{tail}{added}"


def response_address(request: Request, source: tuple[str, int]) -> tuple[str, int]:
    """Where a response to ``request`` goes over UDP (§18.2.2 with RFC 3581 §4): the source
    address, and the source port when rport was asked for, else the sent-by port (5060)."""
    try:
        via = top_via(request)
    except SipParseError:
        return source
    if via.param("rport") is not None:
        return source
    return source[0], via.port or 5060


def preflight(request: Request, allowed: frozenset[str], supported: frozenset[str], *,
              to_tag: str | None = None) -> Response | None:
    """The response for a request the service will not process, or None to go on."""
    method = request.method
    if method not in allowed:
        if method in KNOWN_METHODS:
            return make_response(request, 405, headers=(("Allow", ", ".join(sorted(allowed))),), to_tag=to_tag)
        return make_response(request, 501, to_tag=to_tag)
    try:
        uri = request_uri(request)
    except SipParseError:
        return make_response(request, 400, "Bad Request-URI", to_tag=to_tag)
    if not isinstance(uri, SipUri):
        return make_response(request, 416, to_tag=to_tag)
    required = [tag for line in request.header_lines("Require") for tag in split_values(line) if tag]
    unsupported = [tag for tag in required if tag.lower() not in supported]
    if unsupported:
        return make_response(request, 420, headers=(("Unsupported", ", ".join(unsupported)),), to_tag=to_tag)
    return None
