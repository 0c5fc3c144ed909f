"""Seeds for the fuzzers: RFC 4475's torture messages and a few everyday ones."""

from __future__ import annotations

from pathlib import Path

RFC4475 = Path(__file__).resolve().parents[1] / "data" / "rfc4475"

EVERYDAY = [
    b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bKa1\r\n"
    b"Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\n"
    b"Call-ID: c1@example\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@192.0.2.1:5060>;expires=300\r\n"
    b"Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"n\", uri=\"sip:example.com\", "
    b"response=\"0123\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c\"\r\nContent-Length: 0\r\n\r\n",
    b"OPTIONS sip:example.com SIP/2.0\r\nv: SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bKo1\r\n"
    b"f: \"A\" <sip:a@example.com>;tag=2\r\nt: sip:b@example.com\r\ni: c2\r\nCSeq: 2 OPTIONS\r\nl: 0\r\n\r\n",
    b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h:5060;branch=z9hG4bKi1\r\nMax-Forwards: 70\r\n"
    b"From: <sip:a@example.com>;tag=3\r\nTo: <sip:bob@example.com>\r\nCall-ID: c3\r\nCSeq: 3 INVITE\r\n"
    b"Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n",
    b"CANCEL sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h:5060;branch=z9hG4bKi1\r\nMax-Forwards: 70\r\n"
    b"From: <sip:a@example.com>;tag=3\r\nTo: <sip:bob@example.com>\r\nCall-ID: c3\r\nCSeq: 3 CANCEL\r\n\r\n",
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h:5060;branch=z9hG4bK-1-ab\r\nFrom: <sip:a@example.com>;tag=3\r\n"
    b"To: <sip:bob@example.com>;tag=9\r\nCall-ID: c3\r\nCSeq: 3 NOTIFY\r\nContent-Length: 0\r\n\r\n",
]


def seeds() -> list[bytes]:
    return EVERYDAY + [path.read_bytes() for path in sorted(RFC4475.glob("*/*.dat"))]
