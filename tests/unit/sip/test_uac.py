"""The UAC helpers: out-of-dialog requests and the digest retry (RFC 3261 §8.1.1, §22.2)."""

from __future__ import annotations

import pytest

from sipsvc.sip import digest
from sipsvc.sip.headers import cseq_of, top_via
from sipsvc.sip.message import Response
from sipsvc.sip.parser import check_request, parse_datagram
from sipsvc.sip.uac import authorize, escape_user, make_request, via_value


def _request():
    return make_request(
        "NOTIFY", "sip:alice@192.0.2.1:5062", from_uri="sip:alice@example.com", from_tag="t1",
        to_uri="sip:alice@example.com", call_id="c1@here", cseq=1,
        via=via_value("udp", "198.51.100.7", 5060, "z9hG4bKone"), headers=(("Event", "check-sync"),),
    )


def _challenge(status=401, *values):
    name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    return Response(status=status, reason="", headers=tuple((name, v) for v in values))


def test_a_request_has_the_mandatory_headers_and_parses_back():
    request = _request()
    assert request.to_bytes() == (
        b"NOTIFY sip:alice@192.0.2.1:5062 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 198.51.100.7:5060;rport;branch=z9hG4bKone\r\n"
        b"Max-Forwards: 70\r\n"
        b"From: <sip:alice@example.com>;tag=t1\r\n"
        b"To: <sip:alice@example.com>\r\n"
        b"Call-ID: c1@here\r\n"
        b"CSeq: 1 NOTIFY\r\n"
        b"Event: check-sync\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    check_request(parse_datagram(request.to_bytes()))


def test_via_brackets_ipv6_and_wants_the_cookie():
    assert via_value("tcp", "2001:db8::1", 5060, "z9hG4bKx") == "SIP/2.0/TCP [2001:db8::1]:5060;rport;branch=z9hG4bKx"
    with pytest.raises(ValueError):
        via_value("udp", "h", 5060, "no-cookie")


@pytest.mark.parametrize("status,header", [(401, "Authorization"), (407, "Proxy-Authorization")])
def test_a_challenge_is_answered_with_a_new_branch_and_the_next_cseq(status, header):
    request = _request()
    challenge = _challenge(status, digest.Challenge("phone", "n0nce", "MD5").header_value())
    retry = authorize(request, challenge, username="alice", password="secret", cnonce="cn", branch="z9hG4bKtwo")
    assert retry is not None
    assert top_via(retry).branch == "z9hG4bKtwo" and top_via(retry).param("rport") == ""
    assert cseq_of(retry).number == 2 and cseq_of(retry).method == "NOTIFY"
    for name in ("Call-ID", "From", "To", "Event"):
        assert retry.header(name) == request.header(name)
    credentials = digest.parse_credentials(retry.header(header))
    assert (credentials.username, credentials.realm, credentials.uri) == ("alice", "phone", request.uri)
    assert digest.verify(credentials, "NOTIFY", "secret")
    assert not digest.verify(credentials, "NOTIFY", "other")
    check_request(parse_datagram(retry.to_bytes()))


def test_the_first_usable_challenge_is_taken():
    challenge = _challenge(401, 'Basic realm="x"', 'Digest realm="r", nonce="n", algorithm=SHA-512-256',
                           digest.Challenge("r", "n", "SHA-256").header_value())
    retry = authorize(_request(), challenge, username="alice", password="pw", cnonce="c", branch="z9hG4bKb")
    assert digest.parse_credentials(retry.header("Authorization")).algorithm == "SHA-256"


@pytest.mark.parametrize("response", [
    _challenge(401),  # no challenge at all
    _challenge(401, 'Digest realm="r"'),  # no nonce
    _challenge(401, 'Digest realm="r", nonce="n", qop="auth-int"'),
    Response(status=403, reason="", headers=()),
])
def test_nothing_to_answer_gives_none(response):
    assert authorize(_request(), response, username="a", password="b", cnonce="c", branch="z9hG4bKb") is None


def test_user_parts_are_escaped():
    assert escape_user("alice.b-1+x") == "alice.b-1+x"
    assert escape_user("a b@c\r\n") == "a%20b%40c%0D%0A"
    assert escape_user("zoë") == "zo%C3%AB"
