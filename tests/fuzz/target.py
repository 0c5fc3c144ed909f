"""What the fuzzers drive: the way the SIP endpoint takes a datagram, minus the sockets.

``exercise`` parses the bytes with the caller's limits, checks the message, stamps and routes a
request as the endpoint does (a REGISTER's contacts, intervals and credentials read as the
registrar reads them), runs it through a transaction layer, answers it (preflight, else 200)
and serialises everything the layer sends. The only exception it lets out of the core is
``SipParseError`` where the core documents it; anything else (or a reply that would break the
wire) raises ``AssertionError`` or propagates, which is what a fuzzer reports.
"""

from __future__ import annotations

from sipsvc.registrar.errors import RegistrarError
from sipsvc.registrar.policy import RegistrarPolicy, Source, plan_register
from sipsvc.sip.digest import DigestError, parse_credentials
from sipsvc.sip.errors import SipParseError
from sipsvc.sip.message import Request, Response
from sipsvc.sip.parser import DEFAULT_LIMITS, Limits, StreamFramer, check_request, check_response, parse_datagram
from sipsvc.sip.transaction import RequestReceived, TimerConfig, TransactionLayer
from sipsvc.sip.uas import make_response, preflight, response_address, stamp_via

ALLOWED = frozenset({"REGISTER", "OPTIONS", "BYE"})
SUPPORTED = frozenset({"path", "outbound", "gruu"})
SOURCE = ("192.0.2.77", 40000)
REFUSAL_STATUSES = {400, 413, 414, 505}


def refusal(error: SipParseError) -> bytes | None:
    """The endpoint's answer to a message that does not parse (``SipEndpoint.refuse``), as bytes;
    None when it would be dropped."""
    assert isinstance(error, SipParseError)
    assert error.status in REFUSAL_STATUSES, error.status
    assert "\r" not in error.reason and "\n" not in error.reason, "reason phrase would break the status line"
    headers = error.headers or ()
    if not error.is_request or not any(name == "Via" for name, _ in headers):
        return None
    response = make_response(Request(method="", uri="", headers=headers), error.status, error.reason)
    return response.to_bytes()


def deliver(layer: TransactionLayer, message: Request | Response, limits: Limits = DEFAULT_LIMITS,
            *, now: float = 0.0, reliable: bool = False) -> None:
    """A parsed message into ``layer`` as the endpoint passes it; answers what it is asked."""
    if isinstance(message, Request):
        try:
            check_request(message, limits)
        except SipParseError as exc:
            refusal(exc)
            return
        message = stamp_via(message, *SOURCE)
        response_address(message, SOURCE)
        if message.method == "REGISTER":
            registrar_reads(message)
    else:
        try:
            check_response(message)
        except SipParseError:
            return
    layer.receive(message, SOURCE, reliable=reliable, now=now)
    for event in layer.events():
        if isinstance(event, RequestReceived):
            answer = preflight(event.request, ALLOWED, SUPPORTED, to_tag="fuzz")
            layer.respond(event.tx, answer or make_response(event.request, 200, to_tag="fuzz"), now)
    for outgoing in layer.outgoing():
        parse_datagram(outgoing.message.to_bytes())  # what we send parses back


def registrar_reads(request: Request) -> None:
    """What the registrar reads from a checked REGISTER before it touches the store: its
    contacts and intervals (only ``RegistrarError``) and its credentials (only ``DigestError``)."""
    try:
        plan_register(request, Source(*SOURCE, "udp"), 0.0, RegistrarPolicy())
    except RegistrarError:
        pass
    for value in request.header_lines("Authorization"):
        try:
            parse_credentials(value)
        except DigestError:
            pass


def exercise(data: bytes, limits: Limits = DEFAULT_LIMITS, layer: TransactionLayer | None = None) -> None:
    try:
        message = parse_datagram(data, limits)
    except SipParseError as exc:
        refusal(exc)
        return
    deliver(layer or TransactionLayer(TimerConfig()), message, limits)


def exercise_stream(chunks: list[bytes], limits: Limits = DEFAULT_LIMITS) -> None:
    """Chunks of one TCP stream through the framer and a layer; stops where the stream would be
    closed. The framer never holds more than the limit plus the chunk just fed."""
    framer = StreamFramer(limits=limits)
    layer = TransactionLayer(TimerConfig())
    for chunk in chunks:
        try:
            items = framer.feed(chunk)
        except SipParseError as exc:
            refusal(exc)
            return
        assert framer.buffered <= limits.max_message + len(chunk)
        for item in items:
            if item != StreamFramer.PING:
                assert isinstance(item, (Request, Response))
                deliver(layer, item, limits, reliable=True)
