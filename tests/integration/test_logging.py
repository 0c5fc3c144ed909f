"""Structured logs and the SIP trace, with real phones and a real ``sipsvc serve`` process."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from sipsvc.api.keys import SIP_ENDPOINT
from sipsvc.logs import TRACE_LOGGER
from sipsvc.transport.endpoint import SipEndpoint
from tests.conftest import ADMIN_TOKEN, free_port
from tests.sipclient import SipClient

PASSWORD = "tr4ce-secret-pw"


async def test_sip_trace_logs_whole_messages_and_never_a_credential(make_api, caplog):
    caplog.set_level(logging.INFO, logger=TRACE_LOGGER)
    api = await make_api(sip_trace=True)
    account = await api.new_account()
    await api.new_device(account, {"name": "p", "sip": {"username": "tracy", "password": PASSWORD}})
    async with SipClient(api.sip_address) as phone:
        first = await phone.send(phone.register_request("tracy", account["realm"]))
        authorization = phone.answer(first, "tracy", PASSWORD, f"sip:{account['realm']}")
        second = phone.register_request("tracy", account["realm"], authorization=authorization)
        assert (await phone.send(second)).status == 200
    response_hash = re.search(r'response="([0-9a-f]+)"', authorization).group(1)
    nonce = re.search(r'nonce="([^"]+)"', authorization).group(1)
    trace = [r for r in caplog.records if r.name == TRACE_LOGGER]
    assert [(r.direction, r.getMessage().splitlines()[1].split(" ")[0]) for r in trace] == [
        ("in", "REGISTER"), ("out", "SIP/2.0"), ("in", "REGISTER"), ("out", "SIP/2.0")]
    assert all(r.call_id == phone.call_id and r.transport == "udp" for r in trace)
    assert trace[3].getMessage().splitlines()[1] == "SIP/2.0 200 OK"
    assert "Contact: " in trace[3].getMessage() and "WWW-Authenticate: Digest" in trace[1].getMessage()
    assert 'Authorization: Digest username="tracy"' in trace[2].getMessage()
    everything = "\n".join(r.getMessage() + repr(vars(r)) for r in caplog.records)
    assert response_hash not in everything and PASSWORD not in everything
    assert f'nonce="{nonce}"' not in trace[2].getMessage()


async def test_without_the_trace_the_endpoint_is_the_plain_one(api, caplog):
    """Off, the trace costs nothing per packet: the tracing subclass is not even there."""
    caplog.set_level(logging.INFO, logger=TRACE_LOGGER)
    assert type(api.client.server.app[SIP_ENDPOINT]) is SipEndpoint
    async with SipClient(api.sip_address) as phone:
        await phone.send(phone.register_request("nobody", "unknown.test"))
    assert not [r for r in caplog.records if r.name == TRACE_LOGGER]


def test_serve_logs_json_with_request_ids_and_call_ids(tmp_path, redis_url):
    http, sip = free_port(), free_port()
    service = subprocess.Popen(
        [sys.executable, "-m", "sipsvc", "serve", "--redis-url", redis_url, "--data-dir", str(tmp_path),
         "--http", f"127.0.0.1:{http}", "--sip", f"127.0.0.1:{sip}", "--log-format", "json",
         "--log-level", "debug", "--sip-trace"],
        env={**os.environ, "SIPSVC_ADMIN_TOKEN": ADMIN_TOKEN}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=2).close()
                break
            except urllib.error.URLError:
                assert service.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.05)
        request = urllib.request.Request(f"http://127.0.0.1:{http}/v2/accounts/nope",
                                         headers={"X-Request-ID": "req-json-1"})
        try:
            urllib.request.urlopen(request, timeout=5)
        except urllib.error.HTTPError as error:
            assert error.code == 401 and error.headers["X-Request-ID"] == "req-json-1"
            error.close()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as phone:
            phone.bind(("127.0.0.1", 0))
            port = phone.getsockname()[1]
            phone.sendto((f"OPTIONS sip:127.0.0.1:{sip} SIP/2.0\r\n"
                          f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-json\r\nMax-Forwards: 70\r\n"
                          f"From: <sip:probe@x.test>;tag=1\r\nTo: <sip:x.test>\r\nCall-ID: json-call-1@probe\r\n"
                          f"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode(), ("127.0.0.1", sip))
            phone.settimeout(5)
            assert phone.recv(65536).startswith(b"SIP/2.0 200 OK")
    finally:
        service.terminate()
        _, stderr = service.communicate(timeout=20)
    assert service.returncode == 0, stderr
    entries = [json.loads(line) for line in stderr.splitlines()]  # every line is one JSON object
    assert any(e["message"].startswith("store: redis at ") and e["level"] == "info" for e in entries)
    access = [e for e in entries if e["logger"] == "sipsvc.access" and e.get("request_id") == "req-json-1"]
    assert len(access) == 1 and access[0]["route"] == "/v2/accounts/{account_id}" and access[0]["status"] == 401
    trace = [e for e in entries if e["logger"] == TRACE_LOGGER and e.get("call_id") == "json-call-1@probe"]
    assert [e["direction"] for e in trace] == ["in", "out"]
    assert "OPTIONS sip:" in trace[0]["message"] and "SIP/2.0 200 OK" in trace[1]["message"]
