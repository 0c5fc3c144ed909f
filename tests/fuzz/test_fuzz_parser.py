"""Fuzzing the parser, the stream framer, the request checks and the transaction layer behind
them with hypothesis (issue 6 item 1): random bytes, mutated RFC 4475 and everyday messages,
and messages assembled from SIP's own delimiters, with tight and default limits. Only the
documented ``SipParseError`` may come out, every example must finish quickly (the deadline),
and the run is bounded (a few seconds in all)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipsvc.sip.parser import DEFAULT_LIMITS, Limits
from tests.fuzz.corpus import seeds
from tests.fuzz.target import exercise, exercise_stream

SEEDS = seeds()
FUZZ = settings(max_examples=400, deadline=timedelta(milliseconds=500),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# SIP's delimiters and the bytes parsers trip on.
SPECIAL = list(b" \t\r\n:;,=<>\"\\@%?&/[]().*") + [0, 0x7F, 0x80, 0xC3, 0xFF]
NAMES = [b"Via", b"v", b"From", b"f", b"To", b"t", b"Call-ID", b"i", b"CSeq", b"Contact", b"m",
         b"Content-Length", b"l", b"Max-Forwards", b"Expires", b"Authorization", b"Require",
         b"Route", b"Record-Route", b"X-Fuzz", b"", b"Via ", b" Via"]
STARTS = [b"REGISTER sip:example.com SIP/2.0", b"INVITE sip:b@example.com SIP/2.0",
          b"ACK sip:b@example.com SIP/2.0", b"CANCEL sip:b@example.com SIP/2.0",
          b"OPTIONS sips:[::1]:5061;transport=tls SIP/2.0", b"SIP/2.0 200 OK", b"SIP/2.0 180 Ringing",
          b"SIP/3.0 200 OK", b"BYE tel:+1 SIP/2.0", b""]
TIGHT = Limits(max_message=2048, max_headers=12, max_line=120, max_uri=60, max_vias=3)

chunk = st.one_of(st.binary(max_size=24), st.sampled_from(SPECIAL).map(lambda b: bytes([b]) * 3),
                  st.sampled_from(NAMES), st.sampled_from([b"SIP/2.0/UDP ", b"z9hG4bK", b"sip:", b"tag="]))


@st.composite
def mutated(draw) -> bytes:
    """A seed message with a few bytes replaced, inserted, deleted or lines repeated."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["replace", "insert", "delete", "repeat"]))
        if kind == "replace" and at < len(data):
            data[at] = draw(st.sampled_from(SPECIAL + list(b"a0Z")))
        elif kind == "insert":
            data[at:at] = draw(chunk)
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        else:
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at)
            line = bytes(data[start:end + 1]) if end != -1 else b""
            data[start:start] = line * draw(st.integers(1, 20))
    return bytes(data)


@st.composite
def assembled(draw) -> bytes:
    """A start line and headers built from SIP names and delimiter-heavy values."""
    lines = [draw(st.sampled_from(STARTS))]
    for _ in range(draw(st.integers(0, 14))):
        value = b"".join(draw(st.lists(chunk, max_size=6)))
        lines.append(draw(st.sampled_from(NAMES)) + draw(st.sampled_from([b": ", b":", b" : ", b""])) + value)
    end = draw(st.sampled_from([b"\r\n\r\n", b"\n\n", b"\r\n", b""]))
    return b"\r\n".join(lines) + end + draw(st.binary(max_size=16))


messages = st.one_of(st.binary(max_size=600), mutated(), assembled())


@FUZZ
@given(messages, st.sampled_from([DEFAULT_LIMITS, TIGHT]))
def test_any_datagram_is_parsed_or_refused(data, limits):
    exercise(data, limits)


@FUZZ
@given(st.lists(st.one_of(mutated(), assembled(), st.just(b"\r\n\r\n")), min_size=1, max_size=4),
       st.lists(st.integers(1, 400), min_size=1, max_size=12), st.sampled_from([DEFAULT_LIMITS, TIGHT]))
def test_any_stream_in_any_chunks_is_framed_or_closed(parts, sizes, limits):
    stream = b"".join(parts)
    chunks, at, index = [], 0, 0
    while at < len(stream):
        size = sizes[index % len(sizes)]
        chunks.append(stream[at:at + size])
        at, index = at + size, index + 1
    exercise_stream(chunks, limits)


def test_the_seeds_pass_through_unharmed():
    for data in SEEDS:
        exercise(data)
        exercise_stream([data[i:i + 7] for i in range(0, len(data), 7)])


def _hostile() -> list[tuple[str, bytes]]:
    """Messages as large as the default limits allow, built to make a parser work hard."""
    start = b"OPTIONS sip:example.com SIP/2.0\r\n"
    tail = (b"Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n"
            b"Call-ID: h\r\nCSeq: 1 OPTIONS\r\n")
    via = b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKh\r\n"
    line = DEFAULT_LIMITS.max_line - 20
    out = [
        ("folded lines", start + via + b"Subject: x\r\n" + b" y\r\n" * 20000 + tail + b"\r\n"),
        ("many headers", start + via + b"X: y\r\n" * 20000 + tail + b"\r\n"),
        ("packed Vias", start + b"Via: " + b"SIP/2.0/UDP a;branch=z9hG4bK1," * 270 + b"SIP/2.0/UDP a\r\n" + tail),
        ("empty list values", start + via + b"Route: " + b"," * line + b"\r\n" + tail + b"\r\n"),
    ]
    for name, value in [("Via", b";" * line), ("To", b"<" * line), ("From", b'"' * line),
                        ("Contact", b"\\" * line), ("CSeq", b"1" * line), ("Call-ID", b"%" * line),
                        ("Via", b"SIP/2.0/UDP " + b"a" * line), ("To", b"sip:" + b"a@" * (line // 2))]:
        out.append((f"{name} of {value[:4]!r}...", start + via + tail + (name.encode() + b": " + value + b"\r\n") * 7 + b"\r\n"))
    out.append(("long URI", b"OPTIONS sip:" + b"a" * line + b" SIP/2.0\r\n" + via + tail + b"\r\n"))
    out.append(("no end of headers", start + b"X: " + b"a" * 60000))
    return [(name, data[:DEFAULT_LIMITS.max_message]) for name, data in out]


@pytest.mark.parametrize("data", [data for _, data in _hostile()], ids=[name for name, _ in _hostile()])
def test_a_hostile_message_at_the_size_limit_is_handled_quickly(data):
    started = time.perf_counter()
    exercise(data)
    exercise_stream([data])
    exercise_stream([data[i:i + 1024] for i in range(0, len(data), 1024)])
    assert time.perf_counter() - started < 0.5
