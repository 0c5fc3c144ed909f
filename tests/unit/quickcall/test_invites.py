"""The two INVITEs of a placed quickcall, byte for byte, and the gateway URI."""

from __future__ import annotations

import pytest

from sipsvc.quickcall.invites import gateway_invite, gateway_uri, phone_invite
from sipsvc.sip.parser import check_request, parse_datagram


@pytest.mark.parametrize("template,number,expected", [
    ("sip:127.0.0.1:5080", "+14158867900", "sip:+14158867900@127.0.0.1:5080"),
    ("sip:{number}@pbx.example.com;user=phone", "2001", "sip:2001@pbx.example.com;user=phone"),
    ("sip:pbx.example.com", "a b", "sip:a%20b@pbx.example.com"),  # escaped (number_filter=false)
])
def test_gateway_uri(template, number, expected):
    assert gateway_uri(template, number) == expected


def test_the_invite_to_the_phone():
    request = phone_invite(
        "sip:alice@192.0.2.1:5062;transport=UDP", address_of_record="sip:alice@example.com",
        realm="example.com", caller_name="Device QuickCall", caller_number="+14158867900",
        call_id="c1-quickcall", from_tag="f00", branch="z9hG4bK-1", transport="udp",
        local=("198.51.100.7", 5060), route=("<sip:edge.example.com;lr>",), auto_answer=True,
    )
    assert request.to_bytes() == (
        b"INVITE sip:alice@192.0.2.1:5062;transport=UDP SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 198.51.100.7:5060;rport;branch=z9hG4bK-1\r\n"
        b"Max-Forwards: 70\r\n"
        b'From: "Device QuickCall" <sip:+14158867900@example.com>;tag=f00\r\n'
        b"To: <sip:alice@example.com>\r\n"
        b"Call-ID: c1-quickcall\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Route: <sip:edge.example.com;lr>\r\n"
        b"Contact: <sip:198.51.100.7:5060>\r\n"
        b"Allow: ACK, BYE, CANCEL, OPTIONS\r\n"
        b"Call-Info: <sip:example.com>;answer-after=0\r\n"
        b"Alert-Info: <http://127.0.0.1>;info=alert-autoanswer;delay=0\r\n"
        b"X-KAZOO-AOR: sip:alice@example.com\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    check_request(parse_datagram(request.to_bytes()))


def test_without_auto_answer_and_over_tcp():
    request = phone_invite(
        "sip:alice@192.0.2.1:5062;transport=tcp", address_of_record="sip:alice@example.com",
        realm="example.com", caller_name="Device QuickCall", caller_number="2001", call_id="c2",
        from_tag="f01", branch="z9hG4bK-2", transport="tcp", local=("198.51.100.7", 5060), auto_answer=False,
    )
    assert request.header("Call-Info") is None and request.header("Alert-Info") is None
    assert request.header("Via").startswith("SIP/2.0/TCP ")
    assert request.header("Contact") == "<sip:198.51.100.7:5060;transport=tcp>"


def test_the_invite_to_the_number_carries_the_offer():
    offer = b"v=0\r\no=phone 1 1 IN IP4 192.0.2.1\r\n"
    request = gateway_invite(
        "sip:2001@203.0.113.5:5080", caller_name='Acme "Sales"\r\nX-Evil: 1', caller_uri="sip:100@example.com",
        call_id="c1-number", from_tag="f02", branch="z9hG4bK-3", local=("198.51.100.7", 5060),
        offer=offer, content_type="application/sdp",
    )
    assert request.uri == "sip:2001@203.0.113.5:5080" and request.header("To") == "<sip:2001@203.0.113.5:5080>"
    # A stored caller id cannot break the header: quotes escaped, control characters dropped.
    assert request.header("From") == '"Acme \\"Sales\\"X-Evil: 1" <sip:100@example.com>;tag=f02'
    assert request.header("Content-Type") == "application/sdp" and request.body == offer
    parsed = parse_datagram(request.to_bytes())
    check_request(parsed)
    assert parsed.header("X-Evil") is None and parsed.body == offer
