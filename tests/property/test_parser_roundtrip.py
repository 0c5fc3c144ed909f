"""Hypothesis properties of the SIP parser: what the core serialises parses back to the same
message, whole or split anywhere on a stream, and URIs and name-addrs round-trip as text."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from sipsvc.sip.headers import NameAddr, parse_name_addr
from sipsvc.sip.message import Request, Response, canonical_name
from sipsvc.sip.parser import StreamFramer, parse_datagram
from sipsvc.sip.uri import SipUri, parse_uri

TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~",
                min_size=1, max_size=12)
HOST = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,10}){0,3}", fullmatch=True)
USER = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()&=+$,;?/", min_size=1, max_size=16)
PARAM_VALUE = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=8)
# Header values: printable, no line breaks, no surrounding blanks (the parser trims those).
VALUE = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=30).map(
    lambda v: v) | st.text(alphabet="abc xyz<>;=,\"", min_size=1, max_size=30).map(str.strip).filter(bool)


@st.composite
def sip_uris(draw) -> SipUri:
    params = tuple(draw(st.lists(st.tuples(TOKEN.filter(lambda t: "=" not in t), st.none() | PARAM_VALUE),
                                 max_size=3)))
    return SipUri(
        draw(st.sampled_from(["sip", "sips"])), draw(st.none() | USER.filter(lambda u: "@" not in u and ":" not in u)),
        None, draw(HOST), draw(st.none() | st.integers(1, 65535)), params, None,
    )


@st.composite
def requests(draw) -> Request:
    names = draw(st.lists(TOKEN.filter(lambda n: canonical_name(n) != "Content-Length"), min_size=1, max_size=8))
    headers = tuple((canonical_name(name), draw(VALUE)) for name in names)
    return Request(method=draw(TOKEN), uri=str(draw(sip_uris())), headers=headers, body=draw(st.binary(max_size=64)))


@st.composite
def responses(draw) -> Response:
    names = draw(st.lists(TOKEN.filter(lambda n: canonical_name(n) != "Content-Length"), min_size=1, max_size=8))
    headers = tuple((canonical_name(name), draw(VALUE)) for name in names)
    reason = draw(st.text(alphabet="abcdefghij XYZ", max_size=20)).strip()
    return Response(status=draw(st.integers(100, 699)), reason=reason, headers=headers,
                    body=draw(st.binary(max_size=64)))


def _with_length(message):
    return (*message.headers, ("Content-Length", str(len(message.body))))


@settings(max_examples=300)
@given(st.one_of(requests(), responses()))
def test_a_serialised_message_parses_back_to_itself(message):
    parsed = parse_datagram(message.to_bytes())
    assert type(parsed) is type(message)
    assert parsed.headers == _with_length(message)
    assert parsed.body == message.body
    if isinstance(message, Request):
        assert (parsed.method, parsed.uri) == (message.method, message.uri)
    else:
        assert (parsed.status, parsed.reason) == (message.status, message.reason)
    assert parse_datagram(parsed.to_bytes()) == parsed


@settings(max_examples=100)
@given(st.lists(requests(), min_size=1, max_size=4), st.data())
def test_a_stream_split_anywhere_gives_the_same_messages(messages, data):
    stream = b"".join(m.to_bytes() for m in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    framer, out, start = StreamFramer(), [], 0
    for cut in [*cuts, len(stream)]:
        out += framer.feed(stream[start:cut])
        start = cut
    assert [(m.method, m.body) for m in out] == [(m.method, m.body) for m in messages]
    assert framer.buffered == 0


@settings(max_examples=300)
@given(sip_uris())
def test_a_sip_uri_round_trips(uri):
    assert parse_uri(str(uri)) == uri


@settings(max_examples=200)
@given(sip_uris(), st.none() | st.text(alphabet="abc DEF\"\\", max_size=12).map(str.strip).filter(bool),
       st.lists(st.tuples(TOKEN.filter(lambda t: "=" not in t), st.none() | PARAM_VALUE), max_size=3))
def test_a_name_addr_round_trips(uri, display, params):
    value = NameAddr(display, uri, tuple(params))
    parsed = parse_name_addr(str(value))
    assert parsed.uri == uri and parsed.params == tuple(params) and parsed.display == display
