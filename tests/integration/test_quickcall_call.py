"""Placing a quickcall over SIP end to end (RFC 3725 flow I): SIPp phones register to the running
service and answer its INVITEs with an out-of-call scenario; a SIPp gateway (a plain UAS on its
own port, ``quickcall.gateway``) answers the INVITE for the number. What reached each of them
(SIPp's message traces, the gateway's exit status) and what the API reports are both checked.

T1 is 50 ms here, so Timer B / F (64*T1) is 3.2 s.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from sipsvc.sip.headers import parse_name_addr
from sipsvc.store import keys
from tests.conftest import free_port
from tests.integration.sipp_phones import SippPhones, wait_for, wait_registered
from tests.integration.test_sipp import SCENARIOS, sipp_binary
from tests.sipclient import SipClient

PASSWORD = "secret123"
T1 = 0.05
NUMBER = "+14158867900"
DEVICE = {"name": "alice", "sip": {"username": "alice", "password": PASSWORD},
          "caller_id": {"external": {"name": "Acme Sales", "number": "+14155550100"}}}


@pytest.fixture(autouse=True)
def no_error_is_logged(caplog):
    """A failure inside the call's task is logged, not raised: fail the test on one."""
    yield
    errors = [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.ERROR and r.name.startswith("sipsvc")]
    assert not errors, errors


@dataclass
class SippGateway:
    """SIPp as the gateway: a UAS on its own port, one call (``-m 1``); exit status 0 means its
    scenario ran to the end."""

    tmp_path: Path
    scenario: str
    port: int = field(default_factory=free_port)
    _process: asyncio.subprocess.Process | None = None

    received = SippPhones.received  # reads ``self.trace``

    @property
    def trace(self) -> Path:
        return self.tmp_path / f"gateway-{self.port}-messages.log"

    @property
    def uri(self) -> str:
        return f"sip:127.0.0.1:{self.port}"

    async def __aenter__(self) -> "SippGateway":
        self._process = await asyncio.create_subprocess_exec(
            sipp_binary(), "-sf", str(SCENARIOS / self.scenario), "-i", "127.0.0.1", "-p", str(self.port),
            "-t", "u1", "-m", "1", "-timeout", "40s", "-timeout_error", "-nostdin", "-trace_msg",
            "-message_file", str(self.trace), "-trace_err", "-error_file", str(self.tmp_path / "gateway-errors.log"),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        return self

    async def __aexit__(self, *exc) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await asyncio.wait_for(self._process.wait(), 10)

    async def finish(self, timeout: float = 15) -> tuple[int, str]:
        """Wait for SIPp to end its one call; its exit status and what it complained about."""
        _, stderr = await asyncio.wait_for(self._process.communicate(), timeout)
        errors = self.tmp_path / "gateway-errors.log"
        return self._process.returncode, stderr.decode(errors="replace") + (
            errors.read_text(errors="replace") if errors.exists() else "")


async def service(make_api, gateway: str | None):
    """SIPp 3.6 answers only the first challenge and only knows MD5: offer MD5 first."""
    return await make_api(digest_algorithms=("MD5", "SHA-256"), t1=T1, quickcall_gateway=gateway)


def quickcall_path(account, device, number=NUMBER):
    return f"/v2/accounts/{account['id']}/devices/{device['id']}/quickcall/{number}"


def call_path(account, call_id):
    return f"/v2/accounts/{account['id']}/quickcalls/{call_id}"


async def setup(api, **extra):
    account = await api.new_account()
    return account, await api.new_device(account, {**DEVICE, **extra})


async def test_a_click_to_dial_call_is_set_up_then_hung_up_through_the_api(make_api, tmp_path):
    async with SippGateway(tmp_path, "uas-quickcall-gateway-answer.xml") as gateway:
        api = await service(make_api, gateway.uri)
        account, device = await setup(api)
        async with SippPhones(tmp_path, api.sip_address, account["realm"], [("alice", PASSWORD)],
                              uas="uas-quickcall-phone-answer.xml") as phone:
            await wait_registered(api, account, [device["id"]])
            response, body = await api.call("POST", quickcall_path(account, device), token=account["token"],
                                            params={"wait": "true"})
            assert response.status == 200, body
            assert body["data"]["application_name"] == "transfer"  # the payload, with the call
            call = body["data"]["call"]
            assert (call["outcome"], call["state"], call["leg"], call["status"]) == ("answered", "connected",
                                                                                   "gateway", 200)
            assert call["device_id"] == device["id"] and call["number"] == NUMBER
            assert call["contact"] == f"sip:alice@127.0.0.1:{phone.port};transport=UDP"
            assert body["data"]["endpoints"][0]["outbound_call_id"] == f"{call['id']}-quickcall"
            response, body = await api.call("GET", call_path(account, call["id"]), token=account["token"])
            assert response.status == 200 and body["data"]["state"] == "connected", body
            await wait_for(lambda: phone.received("ACK"), what="the phone's ACK")

            [invite] = phone.received("INVITE")
            assert invite.uri == call["contact"] and invite.body == b""  # the offer comes from the phone
            assert invite.header("Call-ID") == f"{call['id']}-quickcall"
            caller = parse_name_addr(invite.header("From"))
            assert (caller.display, str(caller.uri)) == ("Device QuickCall", f"sip:{NUMBER}@{account['realm']}")
            assert invite.header("To") == f"<sip:alice@{account['realm']}>"
            assert invite.header("Call-Info") == f"<sip:{account['realm']}>;answer-after=0"
            assert "info=alert-autoanswer" in invite.header("Alert-Info")
            [ack] = phone.received("ACK")
            assert b"o=gateway-answer" in ack.body and ack.header("Content-Type") == "application/sdp"
            assert ack.header("CSeq") == "1 ACK"

            [to_number] = gateway.received("INVITE")
            assert to_number.uri == f"sip:{NUMBER}@127.0.0.1:{gateway.port}"
            assert b"o=phone-offer" in to_number.body  # the phone's offer, relayed
            far_end = parse_name_addr(to_number.header("From"))
            assert (far_end.display, str(far_end.uri)) == ("Acme Sales", f"sip:+14155550100@{account['realm']}")

            response, body = await api.call("DELETE", call_path(account, call["id"]), token=account["token"])
            assert response.status == 200, body
            assert (body["data"]["state"], body["data"]["ended_by"]) == ("ended", "api")
            code, log = await gateway.finish()
            assert code == 0, log  # its BYE came, and was the last thing it expected
            await wait_for(lambda: phone.received("BYE"), what="the phone's BYE")
            [bye] = phone.received("BYE")
            assert bye.header("CSeq") == "2 BYE" and bye.header("Call-ID") == invite.header("Call-ID")
        response, body = await api.call("DELETE", call_path(account, call["id"]), token=account["token"])
        assert response.status == 200 and body["data"]["ended_by"] == "api", body  # ended stays ended


async def test_a_busy_phone(make_api, tmp_path):
    api = await service(make_api, f"sip:127.0.0.1:{free_port()}")  # never reached
    account, device = await setup(api)
    async with SippPhones(tmp_path, api.sip_address, account["realm"], [("alice", PASSWORD)],
                          uas="uas-quickcall-phone-busy.xml") as phone:
        await wait_registered(api, account, [device["id"]])
        response, body = await api.call("POST", quickcall_path(account, device), token=account["token"],
                                        params={"wait": "true", "auto_answer": "false"})
        assert response.status == 200, body
        call = body["data"]["call"]
        assert (call["outcome"], call["leg"], call["status"], call["state"]) == ("busy", "phone", 486, "ended")
        await wait_for(lambda: phone.received("ACK"), what="the ACK of the 486")
        [invite] = phone.received("INVITE")
        assert invite.header("Call-Info") is None and invite.header("Alert-Info") is None


async def test_a_phone_that_never_answers_is_cancelled_at_the_timeout(make_api, tmp_path):
    api = await service(make_api, f"sip:127.0.0.1:{free_port()}")
    account, device = await setup(api)
    async with SippPhones(tmp_path, api.sip_address, account["realm"], [("alice", PASSWORD)],
                          uas="uas-quickcall-phone-never-answer.xml") as phone:
        await wait_registered(api, account, [device["id"]])
        loop = asyncio.get_running_loop()
        started = loop.time()
        response, body = await api.call("POST", quickcall_path(account, device), token=account["token"],
                                        params={"wait": "true", "timeout": "3"})
        took = loop.time() - started
        assert response.status == 200, body
        call = body["data"]["call"]
        assert (call["outcome"], call["leg"], call["state"]) == ("no_answer", "phone", "ended")
        assert 3 <= took < 5
        await wait_for(lambda: phone.received("ACK"), what="the ACK of the 487")
        [invite] = phone.received("INVITE")
        [cancel] = phone.received("CANCEL")
        assert cancel.uri == invite.uri and cancel.header("CSeq") == "1 CANCEL"
        assert cancel.header("Via") == invite.header("Via")  # same branch (§9.1)


async def test_the_gateway_refuses_and_the_phone_leg_is_hung_up(make_api, tmp_path):
    async with SippGateway(tmp_path, "uas-quickcall-gateway-reject.xml") as gateway:
        api = await service(make_api, gateway.uri)
        account, device = await setup(api)
        async with SippPhones(tmp_path, api.sip_address, account["realm"], [("alice", PASSWORD)],
                              uas="uas-quickcall-phone-answer.xml") as phone:
            await wait_registered(api, account, [device["id"]])
            response, body = await api.call("POST", quickcall_path(account, device), token=account["token"],
                                            params={"wait": "true"})
            assert response.status == 200, body
            call = body["data"]["call"]
            assert (call["outcome"], call["leg"], call["status"], call["state"]) == ("failed", "gateway", 503, "ended")
            code, log = await gateway.finish()
            assert code == 0, log
            await wait_for(lambda: phone.received("BYE"), what="the phone's BYE")
            [ack] = phone.received("ACK")
            assert ack.header("CSeq") == "1 ACK" and ack.body == b""


async def test_the_first_phone_to_answer_wins_and_the_other_is_cancelled(make_api, tmp_path):
    async with SippGateway(tmp_path, "uas-quickcall-gateway-answer.xml") as gateway:
        api = await service(make_api, gateway.uri)
        account, device = await setup(api)
        async with SippPhones(tmp_path, api.sip_address, account["realm"], [("alice", PASSWORD)],
                              uas="uas-quickcall-phone-answer.xml") as desk, \
                SippPhones(tmp_path, api.sip_address, account["realm"], [("alice", PASSWORD)],
                           uas="uas-quickcall-phone-never-answer.xml") as mobile:
            await _two_bindings(api, account, device)
            response, body = await api.call("POST", quickcall_path(account, device), token=account["token"],
                                            params={"wait": "true"})
            assert response.status == 200, body
            call = body["data"]["call"]
            assert call["outcome"] == "answered", call
            assert call["contact"] == f"sip:alice@127.0.0.1:{desk.port};transport=UDP"
            await wait_for(lambda: mobile.received("ACK"), what="the ACK of the 487")
            assert len(mobile.received("CANCEL")) == 1
            assert mobile.received("INVITE")[0].header("Call-ID") != desk.received("INVITE")[0].header("Call-ID")
            response, _ = await api.call("DELETE", call_path(account, call["id"]), token=account["token"])
            assert response.status == 200
            code, log = await gateway.finish()
            assert code == 0, log


async def _two_bindings(api, account, device, timeout: float = 20.0) -> None:
    path = f"/v2/accounts/{account['id']}/devices/{device['id']}/registrations"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        _, body = await api.call("GET", path, token=account["token"])
        if len(body.get("data") or []) == 2:
            return
        assert loop.time() < deadline, body
        await asyncio.sleep(0.1)


async def test_the_number_hangs_up_and_the_phone_leg_gets_a_bye(make_api, tmp_path):
    async with SippGateway(tmp_path, "uas-quickcall-gateway-answer-then-bye.xml") as gateway:
        api = await service(make_api, gateway.uri)
        account, device = await setup(api)
        async with SippPhones(tmp_path, api.sip_address, account["realm"], [("alice", PASSWORD)],
                              uas="uas-quickcall-phone-answer.xml") as phone:
            await wait_registered(api, account, [device["id"]])
            response, body = await api.call("POST", quickcall_path(account, device), token=account["token"],
                                            params={"wait": "true"})
            assert response.status == 200 and body["data"]["call"]["outcome"] == "answered", body
            call_id = body["data"]["call"]["id"]
            code, log = await gateway.finish()
            assert code == 0, log  # its own BYE was answered 200
            await wait_for(lambda: phone.received("BYE"), what="the phone's BYE")
            _, body = await api.call("GET", call_path(account, call_id), token=account["token"])
            assert (body["data"]["state"], body["data"]["ended_by"]) == ("ended", "gateway"), body


async def test_the_phone_hangs_up_and_the_number_gets_a_bye(make_api, tmp_path):
    async with SippGateway(tmp_path, "uas-quickcall-gateway-answer.xml") as gateway:
        api = await service(make_api, gateway.uri)
        account, device = await setup(api)
        async with SippPhones(tmp_path, api.sip_address, account["realm"], [("alice", PASSWORD)],
                              uas="uas-quickcall-phone-answer-then-bye.xml") as phone:
            await wait_registered(api, account, [device["id"]])
            response, body = await api.call("POST", quickcall_path(account, device), token=account["token"],
                                            params={"wait": "true"})
            assert response.status == 200 and body["data"]["call"]["outcome"] == "answered", body
            call_id = body["data"]["call"]["id"]
            code, log = await gateway.finish()
            assert code == 0, log  # it got the BYE
            def answers_to_bye():
                return [r for r in phone.received("SIP/2.0 200") if r.header("CSeq") == "1 BYE"]
            await wait_for(answers_to_bye, what="the answer to the phone's BYE")
            assert len(answers_to_bye()) == 1
            _, body = await api.call("GET", call_path(account, call_id), token=account["token"])
            assert (body["data"]["state"], body["data"]["ended_by"]) == ("ended", "phone"), body


async def test_refusals(make_api, tmp_path, redis_url):
    api = await service(make_api, f"sip:127.0.0.1:{free_port()}")
    account, device = await setup(api)
    token = account["token"]
    response, body = await api.call("POST", quickcall_path(account, device), token=token)
    assert response.status == 409 and body["message"] == "device not registered", body
    response, body = await api.call("POST", quickcall_path(account, device), token=token, params={"wait": "maybe"})
    assert response.status == 400 and "wait" in body["data"]["message"], body
    response, body = await api.call("POST", quickcall_path(account, device), token=token, params={"timeout": "2"})
    assert response.status == 400 and "timeout" in body["data"], body
    missing = "0" * 36
    for method in ("GET", "DELETE"):
        response, body = await api.call(method, call_path(account, missing), token=token)
        assert response.status == 404 and body["data"]["cause"] == missing, body
        response, _ = await api.call(method, call_path(account, "not-a-call-id"), token=token)
        assert response.status == 404
    # A live call that another process holds: reported, but not hung up here.
    held = "a" * 36
    client = aioredis.Redis.from_url(redis_url)
    await client.set(keys.quickcall(account["id"], held),
                     b'{"id": "' + held.encode() + b'", "device_id": "' + device["id"].encode()
                     + b'", "state": "connected", "node": "elsewhere:1"}', ex=60)
    await client.aclose()
    response, body = await api.call("GET", call_path(account, held), token=token)
    assert response.status == 200 and body["data"]["node"] == "elsewhere:1", body
    response, body = await api.call("DELETE", call_path(account, held), token=token)
    assert response.status == 409 and body["message"] == "quickcall held elsewhere", body
    assert body["data"]["cause"] == "elsewhere:1"
    other = await api.new_account()
    response, _ = await api.call("GET", call_path(account, held), token=other["token"])
    assert response.status == 403


async def test_a_bye_outside_our_dialogs_gets_481_and_options_lists_bye(make_api):
    api = await service(make_api, f"sip:127.0.0.1:{free_port()}")
    async with SipClient(api.sip_address) as client:
        host, port = client.local
        for method, expected in (("BYE", 481), ("OPTIONS", 200)):
            client.send_bytes((
                f"{method} sip:sipsvc@127.0.0.1 SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {host}:{port};rport;branch=z9hG4bK-{method.lower()}1\r\n"
                f"From: <sip:a@example.com>;tag=a1\r\nTo: <sip:b@example.com>;tag=b1\r\n"
                f"Call-ID: unknown-dialog\r\nCSeq: 2 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            ).encode())
            response = await client.receive(timeout=2)
            assert response.status == expected, response
            if method == "OPTIONS":
                assert "BYE" in response.header("Allow")
