"""RFC 4475 torture messages: every valid one parses, every invalid one is refused as the RFC
(and the corpus manifest) says. Semantic checks a registrar makes later (416, 405, 420, Contact
syntax) are tested with the registrar; here: parse_datagram, check_request, check_response."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from sipsvc.sip.errors import FramingError, SipParseError
from sipsvc.sip.message import Request, Response
from sipsvc.sip.parser import StreamFramer, check_request, check_response, parse_datagram

CORPUS = Path(__file__).resolve().parents[2] / "data" / "rfc4475"

# file -> what the core must do: "request" / "response" (parsed and checked), or the status of
# the refusal ("drop" for responses, which are never answered).
EXPECTED = {
    "valid/dblreq.dat": "request", "valid/esc01.dat": "request", "valid/esc02.dat": "request",
    "valid/escnull.dat": "request", "valid/intmeth.dat": "request", "valid/longreq.dat": "request",
    "valid/lwsdisp.dat": "request", "valid/mpart01.dat": "request", "valid/noreason.dat": "response",
    "valid/semiuri.dat": "request", "valid/transports.dat": "request", "valid/unreason.dat": "response",
    "valid/wsinv.dat": "request",
    "invalid/badinv01.dat": 400, "invalid/clerr.dat": 400, "invalid/ncl.dat": 400,
    "invalid/scalar02.dat": 400, "invalid/scalarlg.dat": "drop", "invalid/quotbal.dat": 400,
    "invalid/ltgtruri.dat": 400, "invalid/lwsruri.dat": 400, "invalid/lwsstart.dat": 400,
    "invalid/trws.dat": 400, "invalid/escruri.dat": 400, "invalid/baddate.dat": "request",
    "invalid/regbadct.dat": "request", "invalid/badaspec.dat": 400, "invalid/baddn.dat": 400,
    "invalid/badvers.dat": 505, "invalid/mismatch01.dat": 400, "invalid/mismatch02.dat": 400,
    "invalid/bigcode.dat": "drop", "invalid/badbranch.dat": "request", "invalid/insuf.dat": 400,
    "invalid/unkscm.dat": "request", "invalid/novelsc.dat": "request", "invalid/unksm2.dat": "request",
    "invalid/bext01.dat": "request", "invalid/invut.dat": "request", "invalid/regaut01.dat": "request",
    "invalid/multi01.dat": 400, "invalid/mcl01.dat": 400, "invalid/bcast.dat": "response",
    "invalid/zeromf.dat": "request", "invalid/cparam01.dat": "request", "invalid/cparam02.dat": "request",
    "invalid/regescrt.dat": "request", "invalid/sdp01.dat": "request", "invalid/inv2543.dat": "request",
}


def _read(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def test_the_corpus_is_complete_and_unaltered():
    manifest = (CORPUS / "MANIFEST.md").read_text()
    sums = dict((path, digest) for digest, _, path in re.findall(r"^([0-9a-f]{64})\s+(\d+)\s+(\S+)$", manifest, re.M))
    assert set(sums) == set(EXPECTED) and len(sums) == 49
    for path, digest in sums.items():
        assert hashlib.sha256(_read(path)).hexdigest() == digest, path


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_torture_message(name):
    expected, data = EXPECTED[name], _read(name)
    if expected in ("request", "response"):
        message = parse_datagram(data)
        if expected == "request":
            assert isinstance(message, Request)
            check_request(message)
        else:
            assert isinstance(message, Response)
            check_response(message)
        return
    with pytest.raises(SipParseError) as error:
        message = parse_datagram(data)
        if isinstance(message, Request):
            check_request(message)
        else:
            check_response(message)
    if expected == "drop":
        assert error.value.is_request is False
    else:
        assert error.value.is_request is True
        assert error.value.status == expected
        # Whatever was parsed is kept, so the server can answer a usable Via.
        assert error.value.headers is None or isinstance(error.value.headers, tuple)


def test_valid_messages_keep_their_details():
    wsinv = parse_datagram(_read("valid/wsinv.dat"))
    assert wsinv.method == "INVITE" and len(wsinv.values("Via")) == 3
    assert wsinv.header("Max-Forwards") == "0068" and wsinv.header("Subject") == ""
    intmeth = parse_datagram(_read("valid/intmeth.dat"))
    assert intmeth.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert "\x00" in intmeth.header("To") and "\x07" in intmeth.header("To")
    longreq = parse_datagram(_read("valid/longreq.dat"))
    assert len(longreq.values("Via")) == 34
    dblreq = parse_datagram(_read("valid/dblreq.dat"))
    assert dblreq.method == "REGISTER" and dblreq.body == b"" and dblreq.header("Call-ID").startswith("dblreq")
    mpart = parse_datagram(_read("valid/mpart01.dat"))
    assert len(mpart.body) == 553 and b"\x00" in mpart.body
    assert parse_datagram(_read("valid/noreason.dat")).reason == ""
    esc02 = parse_datagram(_read("valid/esc02.dat"))
    assert esc02.method == "RE%47IST%45R" and len(esc02.values("Contact")) == 2
    inv2543 = parse_datagram(_read("invalid/inv2543.dat"))
    assert inv2543.body.startswith(b"v=0")


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e in ("request", "response")))
def test_parsed_messages_serialise_back_to_what_parses_the_same(name):
    message = parse_datagram(_read(name))
    again = parse_datagram(message.to_bytes())
    assert again == message or (
        [h for h in again.headers if h[0] != "Content-Length"] == [h for h in message.headers if h[0] != "Content-Length"]
        and again.body == message.body
    )


def test_framing_errors_close_a_stream():
    for name in ("invalid/ncl.dat", "invalid/mcl01.dat"):
        with pytest.raises(FramingError):
            StreamFramer().feed(_read(name))
    # A Content-Length longer than what came is waited for, never over-read.
    framer = StreamFramer()
    assert framer.feed(_read("invalid/clerr.dat")) == []
    assert framer.buffered > 0


def test_a_stream_yields_messages_split_anywhere_and_pings():
    data = _read("valid/dblreq.dat")[:300] + b"\r\n\r\n" + _read("valid/mpart01.dat")
    for chunk in (1, 7, 64, len(data)):
        framer, out = StreamFramer(), []
        for start in range(0, len(data), chunk):
            out += framer.feed(data[start:start + chunk])
        assert [getattr(m, "method", m) for m in out] == ["REGISTER", StreamFramer.PING, "MESSAGE"]


def test_a_stream_refuses_a_message_over_the_limit():
    framer = StreamFramer(max_message=1024)
    with pytest.raises(FramingError) as error:
        framer.feed(_read("valid/longreq.dat"))
    assert error.value.status == 413
