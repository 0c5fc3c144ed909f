"""The parser's limits on hostile input (issue 6 item 1): each limit refuses a message one unit
over it, accepts one at it, and keeps the headers parsed before the offending line so that a
request with a usable Via can still be answered."""

from __future__ import annotations

import time

import pytest

from sipsvc.sip.errors import FramingError, SipParseError
from sipsvc.sip.message import Request
from sipsvc.sip.parser import DEFAULT_LIMITS, Limits, StreamFramer, check_request, parse_datagram

VIA = ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKlimits")


def request(*, uri: str = "sip:example.com", before: list = (), extra: list = (),
            to: str = "<sip:alice@example.com>", vias: list | None = None) -> bytes:
    headers = [*before, *(vias if vias is not None else [VIA]), ("Max-Forwards", "70"), ("To", to),
               ("From", "<sip:alice@example.com>;tag=1"), ("Call-ID", "limits@test"),
               ("CSeq", "1 OPTIONS"), *extra]
    return Request(method="OPTIONS", uri=uri, headers=tuple(headers)).to_bytes()


def refused(data: bytes, limits: Limits, *, check: bool = False) -> SipParseError:
    with pytest.raises(SipParseError) as caught:
        message = parse_datagram(data, limits)
        if check:
            check_request(message, limits)
    return caught.value


def has_via(error: SipParseError) -> bool:
    return error.is_request and any(name == "Via" for name, _ in error.headers or ())


# -- header count ----------------------------------------------------------------------------

def test_header_count_at_the_limit_passes_and_one_more_is_refused_with_the_via_kept():
    base = len(parse_datagram(request()).headers)  # the request's own headers, Content-Length too
    limits = Limits(max_headers=base + 5)
    assert len(parse_datagram(request(extra=[("X-N", "1")] * 5), limits).headers) == base + 5
    error = refused(request(extra=[("X-N", "1")] * 6), limits)
    assert (error.status, error.reason) == (400, "too many header lines")
    assert has_via(error)


def test_folded_continuation_lines_count_as_header_lines():
    # Thousands of continuation lines would otherwise build one value quadratically.
    data = request().replace(b"Call-ID: limits@test\r\n", b"Call-ID: limits@test\r\n" + b" x\r\n" * 200)
    assert "too many" in refused(data, Limits(max_headers=100)).reason
    assert parse_datagram(data, Limits(max_headers=300)).header("Call-ID").startswith("limits@test x")


def test_too_many_headers_before_any_via_is_not_answerable():
    error = refused(request(before=[("X-N", "1")] * 20), Limits(max_headers=10))
    assert not has_via(error)


# -- line length -----------------------------------------------------------------------------

def test_a_header_line_over_the_limit_is_refused_with_the_headers_before_it():
    limits = Limits(max_line=200)
    line = ("X-Long", "a" * (200 - len("X-Long: ")))
    parse_datagram(request(extra=[line]), limits)  # exactly at the limit
    error = refused(request(extra=[("X-Long", "a" * 200)]), limits)
    assert (error.status, error.reason) == (400, "header line too long")
    assert has_via(error)
    assert all(name != "X-Long" for name, _ in error.headers)


def test_a_long_line_before_the_via_leaves_nothing_to_answer():
    error = refused(request(before=[("X-Long", "a" * 500)]), Limits(max_line=200))
    assert error.reason == "header line too long" and not has_via(error)


def test_a_long_start_line_is_refused():
    error = refused(request(uri="sip:" + "a" * 300 + "@example.com"), Limits(max_line=200, max_uri=5000))
    assert error.reason == "start line too long" and not has_via(error)


def test_a_long_line_in_a_response_is_marked_as_a_response():
    data = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nX: " + b"a" * 300 + b"\r\n\r\n"
    assert refused(data, Limits(max_line=200)).is_request is False


# -- URIs ------------------------------------------------------------------------------------

def test_a_long_request_uri_gets_414():
    limits = Limits(max_uri=100)
    at_limit = "sip:" + "a" * (100 - len("sip:@example.com")) + "@example.com"
    check_request(parse_datagram(request(uri=at_limit), limits), limits)
    error = refused(request(uri=at_limit.replace("sip:", "sip:a")), limits)
    assert (error.status, error.reason) == (414, "Request-URI too long")
    assert has_via(error)


def test_a_long_uri_in_to_is_refused_but_a_long_display_name_is_not():
    limits = Limits(max_uri=100)
    long_uri = "<sip:" + "b" * 120 + "@example.com>"
    error = refused(request(to=long_uri), limits, check=True)
    assert (error.status, error.reason) == (400, "URI in To too long")
    assert has_via(error)
    check_request(parse_datagram(request(to='"' + "B" * 150 + '" <sip:bob@example.com>'), limits), limits)


# -- Vias ------------------------------------------------------------------------------------

def test_via_count_counts_values_not_lines():
    limits = Limits(max_vias=4)
    one = "SIP/2.0/UDP 192.0.2.{0}:5060;branch=z9hG4bK{0}"
    check_request(parse_datagram(request(vias=[("Via", one.format(i)) for i in range(4)]), limits), limits)
    error = refused(request(vias=[("Via", one.format(i)) for i in range(5)]), limits, check=True)
    assert (error.status, error.reason) == (400, "too many Via headers")
    assert has_via(error)
    packed = ", ".join(one.format(i) for i in range(5))
    assert refused(request(vias=[("Via", packed)]), limits, check=True).reason == "too many Via headers"


def test_the_defaults_take_rfc_4475_longest_message():
    # longreq.dat: 43 header lines, 34 Vias, a 593-character line (tests/unit/sip/test_torture.py).
    assert DEFAULT_LIMITS.max_headers >= 43 and DEFAULT_LIMITS.max_vias >= 34
    assert DEFAULT_LIMITS.max_line >= 593


# -- message size ----------------------------------------------------------------------------

def test_parse_datagram_refuses_a_datagram_over_the_size_limit():
    data = request(extra=[("X-Pad", "a" * 500)])
    parse_datagram(data, Limits(max_message=len(data)))
    with pytest.raises(FramingError) as caught:
        parse_datagram(data, Limits(max_message=len(data) - 1))
    assert caught.value.status == 413


# -- the stream framer -----------------------------------------------------------------------

def test_the_framer_applies_the_limits():
    framer = StreamFramer(limits=Limits(max_headers=5))
    with pytest.raises(SipParseError) as caught:
        framer.feed(request())
    assert caught.value.reason == "too many header lines" and has_via(caught.value)


def test_the_framer_takes_its_size_limit_from_limits_unless_given():
    data = request(extra=[("X-Pad", "a" * 500)])
    assert len(StreamFramer(limits=Limits(max_message=len(data))).feed(data)) == 1
    with pytest.raises(FramingError):
        StreamFramer(limits=Limits(max_message=len(data) - 1)).feed(data)
    assert len(StreamFramer(len(data), limits=Limits(max_message=10)).feed(data)) == 1


def test_a_trickled_message_costs_linear_time():
    """Bytes arriving one at a time: the search for the end of the headers resumes where it
    stopped and a head waiting for its body is parsed once (the earlier framer rescanned the
    whole buffer on every byte: 13 s for this message)."""
    head = (b"REGISTER sip:a SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
            + (b"X-A: " + b"a" * 8000 + b"\r\n") * 3 + b"Content-Length: 30000\r\n\r\n")
    data = head + b"b" * 30000
    framer, out = StreamFramer(), []
    started = time.perf_counter()
    for index in range(len(data)):
        out += framer.feed(data[index:index + 1])
    assert time.perf_counter() - started < 1.0
    assert len(out) == 1 and out[0].body == b"b" * 30000


def test_partial_reports_an_incomplete_message_but_not_line_ends():
    framer = StreamFramer()
    assert not framer.partial
    framer.feed(b"\r\n")
    assert not framer.partial  # maybe half a keep-alive
    framer.feed(b"OPT")
    assert framer.partial
    framer.feed(request()[3:])
    assert not framer.partial


def test_a_trickled_head_split_inside_its_empty_line_is_found():
    data = request()
    for cut in range(len(data) - 6, len(data)):
        framer = StreamFramer()
        assert framer.feed(data[:cut]) == []
        (message,) = framer.feed(data[cut:])
        assert message.header("Call-ID") == "limits@test"
