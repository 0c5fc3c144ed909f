"""UAC dialogs (RFC 3261 §12, §13.2.2.4, §15.1.1) and the CANCEL of §9.1, byte for byte."""

from __future__ import annotations

import pytest

from sipsvc.sip.dialog import accept_remote_seq, ack_for_2xx, next_request, request_dialog_id, uac_dialog
from sipsvc.sip.errors import SipParseError
from sipsvc.sip.message import Request, Response
from sipsvc.sip.parser import check_request, parse_datagram
from sipsvc.sip.uac import make_cancel

INVITE = Request(method="INVITE", uri="sip:alice@192.0.2.1:5062", headers=(
    ("Via", "SIP/2.0/UDP 198.51.100.7:5060;rport;branch=z9hG4bK-1"),
    ("Route", "<sip:edge.example.com;lr>"),
    ("Max-Forwards", "70"),
    ("From", '"Device QuickCall" <sip:100@example.com>;tag=ours'),
    ("To", "<sip:alice@example.com>"),
    ("Call-ID", "c1-quickcall"),
    ("CSeq", "7 INVITE"),
    ("Contact", "<sip:198.51.100.7:5060>"),
))


def answer(*extra: tuple[str, str], to_tag: str | None = "theirs") -> Response:
    to = "<sip:alice@example.com>" + (f";tag={to_tag}" if to_tag else "")
    return Response(status=200, reason="OK", headers=(
        ("Via", "SIP/2.0/UDP 198.51.100.7:5060;rport=5060;branch=z9hG4bK-1"),
        ("From", '"Device QuickCall" <sip:100@example.com>;tag=ours'),
        ("To", to), ("Call-ID", "c1-quickcall"), ("CSeq", "7 INVITE"), *extra,
    ))


def test_a_2xx_makes_the_dialog():
    dialog = uac_dialog(INVITE, answer(("Contact", "<sip:alice@192.0.2.1:5062;transport=udp>"),
                                       ("Record-Route", "<sip:p2.example.com;lr>, <sip:p1.example.com;lr>")))
    assert dialog.id == ("c1-quickcall", "ours", "theirs")
    assert dialog.local_seq == 7 and dialog.remote_seq is None
    assert dialog.remote_target == "sip:alice@192.0.2.1:5062;transport=udp"
    assert dialog.route_set == ("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>")  # reversed
    assert dialog.remote == "<sip:alice@example.com>;tag=theirs"


@pytest.mark.parametrize("response", [answer(("Contact", "<sip:a@192.0.2.1>"), to_tag=None), answer()])
def test_a_2xx_without_to_tag_or_contact_makes_no_dialog(response):
    with pytest.raises(SipParseError):
        uac_dialog(INVITE, response)


def test_ack_for_2xx_carries_the_answer_and_the_invite_cseq():
    dialog = uac_dialog(INVITE, answer(("Contact", "<sip:alice@192.0.2.1:5062>")))
    ack = ack_for_2xx(dialog, INVITE, via="SIP/2.0/UDP 198.51.100.7:5060;rport;branch=z9hG4bK-2",
                      body=b"v=0\r\n", content_type="application/sdp")
    assert ack.to_bytes() == (
        b"ACK sip:alice@192.0.2.1:5062 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 198.51.100.7:5060;rport;branch=z9hG4bK-2\r\n"
        b"Max-Forwards: 70\r\n"
        b'From: "Device QuickCall" <sip:100@example.com>;tag=ours\r\n'
        b"To: <sip:alice@example.com>;tag=theirs\r\n"
        b"Call-ID: c1-quickcall\r\n"
        b"CSeq: 7 ACK\r\n"
        b"Content-Type: application/sdp\r\n"
        b"Content-Length: 5\r\n\r\nv=0\r\n"
    )
    check_request(parse_datagram(ack.to_bytes()))
    empty = ack_for_2xx(dialog, INVITE, via="SIP/2.0/UDP h:1;branch=z9hG4bK-3")
    assert empty.body == b"" and empty.header("Content-Type") is None


def test_bye_advances_the_local_cseq_and_follows_a_loose_route_set():
    dialog = uac_dialog(INVITE, answer(("Contact", "<sip:alice@192.0.2.1:5062>"),
                                       ("Record-Route", "<sip:p1.example.com;lr>")))
    dialog, bye = next_request(dialog, "BYE", via="SIP/2.0/UDP h:1;branch=z9hG4bK-4")
    assert dialog.local_seq == 8
    assert bye.uri == "sip:alice@192.0.2.1:5062"
    assert bye.header_lines("Route") == ["<sip:p1.example.com;lr>"]
    assert bye.header("CSeq") == "8 BYE"
    _, second = next_request(dialog, "BYE", via="SIP/2.0/UDP h:1;branch=z9hG4bK-5")
    assert second.header("CSeq") == "9 BYE"


def test_a_strict_router_becomes_the_request_uri():
    dialog = uac_dialog(INVITE, answer(("Contact", "<sip:alice@192.0.2.1:5062>"),
                                       ("Record-Route", "<sip:p2.example.com;lr>, <sip:p1.example.com>")))
    _, bye = next_request(dialog, "BYE", via="SIP/2.0/UDP h:1;branch=z9hG4bK-6")
    assert bye.uri == "sip:p1.example.com"  # no lr: a strict router (§12.2.1.1)
    assert bye.header_lines("Route") == ["<sip:p2.example.com;lr>", "<sip:alice@192.0.2.1:5062>"]


def test_ack_and_cancel_are_not_new_requests():
    dialog = uac_dialog(INVITE, answer(("Contact", "<sip:alice@192.0.2.1:5062>")))
    for method in ("ACK", "CANCEL"):
        with pytest.raises(ValueError):
            next_request(dialog, method, via="SIP/2.0/UDP h:1;branch=z9hG4bK-7")


def test_an_incoming_request_names_its_dialog_and_its_order_is_checked():
    dialog = uac_dialog(INVITE, answer(("Contact", "<sip:alice@192.0.2.1:5062>")))
    bye = Request(method="BYE", uri="sip:198.51.100.7:5060", headers=(
        ("Via", "SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK-p"),
        ("From", "<sip:alice@example.com>;tag=theirs"),
        ("To", '"Device QuickCall" <sip:100@example.com>;tag=ours'),
        ("Call-ID", "c1-quickcall"), ("CSeq", "3 BYE"),
    ))
    assert request_dialog_id(bye) == dialog.id
    later = accept_remote_seq(dialog, bye)
    assert later is not None and later.remote_seq == 3
    older = Request(method="BYE", uri=bye.uri, headers=tuple(
        (n, "2 BYE" if n == "CSeq" else v) for n, v in bye.headers))
    assert accept_remote_seq(later, older) is None
    outside = Request(method="BYE", uri=bye.uri, headers=tuple(
        (n, "<sip:100@example.com>" if n == "To" else v) for n, v in bye.headers))
    assert request_dialog_id(outside) is None


def test_cancel_copies_the_invite():
    cancel = make_cancel(INVITE)
    assert cancel.to_bytes() == (
        b"CANCEL sip:alice@192.0.2.1:5062 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 198.51.100.7:5060;rport;branch=z9hG4bK-1\r\n"
        b"Route: <sip:edge.example.com;lr>\r\n"
        b"Max-Forwards: 70\r\n"
        b'From: "Device QuickCall" <sip:100@example.com>;tag=ours\r\n'
        b"To: <sip:alice@example.com>\r\n"
        b"Call-ID: c1-quickcall\r\n"
        b"CSeq: 7 CANCEL\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
