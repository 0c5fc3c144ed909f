"""The check-sync NOTIFY, byte for byte, and its Event value."""

from __future__ import annotations

import pytest

from sipsvc.notify.message import aor, check_sync, event_value
from sipsvc.sip.parser import check_request, parse_datagram


@pytest.mark.parametrize("device_event,reboot,expected", [
    (None, None, "check-sync"),
    (None, True, "check-sync;reboot=true"),
    (None, False, "check-sync;reboot=false"),
    ("resync", None, "resync"),
    ("resync", True, "resync;reboot=true"),
    ("", None, "check-sync"),
    ("bad event\r\nX: y", None, "check-sync"),  # never written into a header
    (42, True, "check-sync;reboot=true"),
])
def test_event_value(device_event, reboot, expected):
    assert event_value(device_event, reboot) == expected


def test_the_notify_on_the_wire():
    request = check_sync(
        "sip:alice@192.0.2.1:5062;transport=UDP", address_of_record=aor("alice", "example.com"),
        event="check-sync", call_id="abc@sipsvc", from_tag="f00", branch="z9hG4bK123", transport="udp",
        local=("198.51.100.7", 5060),
    )
    assert request.to_bytes() == (
        b"NOTIFY sip:alice@192.0.2.1:5062;transport=UDP SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 198.51.100.7:5060;rport;branch=z9hG4bK123\r\n"
        b"Max-Forwards: 70\r\n"
        b"From: <sip:alice@example.com>;tag=f00\r\n"
        b"To: <sip:alice@example.com>\r\n"
        b"Call-ID: abc@sipsvc\r\n"
        b"CSeq: 1 NOTIFY\r\n"
        b"Contact: <sip:198.51.100.7:5060>\r\n"
        b"Event: check-sync\r\n"
        b"Subscription-State: terminated\r\n"
        b"X-KAZOO-AOR: sip:alice@example.com\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    check_request(parse_datagram(request.to_bytes()))


def test_over_tcp_with_a_path():
    request = check_sync(
        "sip:bob@10.0.0.9:5070;transport=tcp", address_of_record=aor("bob smith", "example.com"),
        event="resync;reboot=true", call_id="x@y", from_tag="t", branch="z9hG4bKb", transport="tcp",
        local=("::1", 5060), route=("<sip:edge.example.com;lr>",),
    )
    assert request.header("Via") == "SIP/2.0/TCP [::1]:5060;rport;branch=z9hG4bKb"
    assert request.header("Contact") == "<sip:[::1]:5060;transport=tcp>"
    assert request.header("Route") == "<sip:edge.example.com;lr>"
    assert request.header("To") == "<sip:bob%20smith@example.com>"
    assert request.header("Event") == "resync;reboot=true"
