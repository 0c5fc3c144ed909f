"""Log formats and the SIP trace's redaction (pure: no loop, no network)."""

from __future__ import annotations

import json
import logging
import os

from sipsvc.logs import REQUEST_ID, JsonFormatter, TextFormatter, call_id_of, redact

REGISTER = (
    b"REGISTER sip:acme.test SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776\r\n"
    b"Call-ID: 843817637684230@998sdasdh09\r\n"
    b"CSeq: 2 REGISTER\r\n"
    b'Authorization: Digest username="alice", realm="acme.test", nonce="4f1a9c", uri="sip:acme.test",\r\n'
    b' response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", qop=auth, nc=00000001\r\n'
    b'proxy-authorization: Digest username="alice", response="feedfacecafebeef0123456789abcdef"\r\n'
    b"Content-Length: 4\r\n\r\nbody"
)


def test_redaction_removes_every_secret_of_both_headers_even_folded():
    text = redact(REGISTER)
    for secret in ("6629fae49393a05397450978507c4ef1", "feedfacecafebeef", "4f1a9c", "0a4f113b"):
        assert secret not in text
    assert ('Authorization: Digest username="alice", realm="acme.test", algorithm=MD5, <redacted>'
            in text.splitlines())
    assert 'proxy-authorization: Digest username="alice", <redacted>' in text.splitlines()
    assert text.splitlines()[:4] == [line.decode() for line in REGISTER.split(b"\r\n")[:4]]
    assert text.endswith("Content-Length: 4\n\nbody")


def test_a_message_without_credentials_is_unchanged_but_for_line_ends():
    message = b"SIP/2.0 200 OK\r\nCall-ID: x@y\r\nContent-Length: 0\r\n\r\n"
    assert redact(message) == "SIP/2.0 200 OK\nCall-ID: x@y\nContent-Length: 0"
    assert call_id_of(message) == "x@y" and call_id_of(b"OPTIONS sip:a SIP/2.0\r\ni: compact\r\n") == "compact"


def _record(**extra) -> logging.LogRecord:
    record = logging.LogRecord("sipsvc.api", logging.WARNING, __file__, 1, "store unavailable: %s", ("boom",), None)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_the_request_id_and_the_call_id():
    token = REQUEST_ID.set("req-42")
    try:
        line = JsonFormatter().format(_record(call_id="abc@host"))
    finally:
        REQUEST_ID.reset(token)
    entry = json.loads(line)
    assert entry["message"] == "store unavailable: boom" and entry["level"] == "warning"
    assert entry["logger"] == "sipsvc.api" and entry["request_id"] == "req-42" and entry["call_id"] == "abc@host"
    assert entry["time"].endswith("Z") and isinstance(entry["pid"], int)
    assert "request_id" not in json.loads(JsonFormatter().format(_record()))


def test_text_lines_name_the_context_after_the_first_line():
    token = REQUEST_ID.set("req-7")
    try:
        text = TextFormatter().format(_record(call_id="c@h"))
    finally:
        REQUEST_ID.reset(token)
    assert text.endswith("WARNING sipsvc.api[%d]: store unavailable: boom [call_id=c@h request_id=req-7]"
                         % os.getpid())
