"""check-sync end to end: SIPp phones register to the running service, the API asks for a sync,
and what reaches the phones (SIPp's message trace) and what the API reports are both checked.

The phones answer with the out-of-call scenarios ``uas-notify-*.xml``; T1 is 50 ms here, so
Timer F (64*T1) gives up after 3.2 s.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from sipsvc.sip.digest import parse_credentials
from sipsvc.sip.headers import parse_name_addr, top_via
from tests.integration.sipp_phones import SippPhones, wait_for, wait_registered

PASSWORD = "secret123"
T1 = 0.05


@pytest.fixture
async def api(make_api):
    """SIPp 3.6 answers only the first challenge and only knows MD5: offer MD5 first."""
    return await make_api(digest_algorithms=("MD5", "SHA-256"), t1=T1)


async def new_phone_device(api, account, username="alice", **extra):
    return await api.new_device(account, {"name": username, "sip": {"username": username, "password": PASSWORD},
                                          **extra})


def sync_path(account, device=None):
    if device is None:
        return f"/v2/accounts/{account['id']}/devices/sync"
    return f"/v2/accounts/{account['id']}/devices/{device['id']}/sync"


async def test_notify_reaches_the_phone_exactly_and_kazoo_reply(api, tmp_path):
    account = await api.new_account()
    device = await new_phone_device(api, account)
    async with SippPhones(tmp_path, api.sip_address, account["realm"], [("alice", PASSWORD)]) as phone:
        await wait_registered(api, account, [device["id"]])
        response, body = await api.call("POST", sync_path(account, device), token=account["token"])
        assert response.status == 200, body
        assert body["status"] == "success" and body["data"] == "sync request sent"
        await wait_for(lambda: len(phone.received()) == 1, what="the NOTIFY")
        register = phone.received("REGISTER", sent=True)[-1]
    notify = phone.received()[0]
    aor = f"sip:alice@{account['realm']}"
    assert notify.uri == f"sip:alice@127.0.0.1:{phone.port};transport=UDP"  # the registered contact
    assert notify.header("Event") == "check-sync"
    assert notify.header("Subscription-State") == "terminated"
    assert notify.header("X-KAZOO-AOR") == aor
    assert notify.header("Content-Length") == "0" and notify.body == b""
    assert notify.header("Max-Forwards") == "70"
    assert notify.header("CSeq") == "1 NOTIFY"
    assert notify.header("To") == f"<{aor}>"
    sender = parse_name_addr(notify.header("From"))
    assert str(sender.uri) == aor and sender.tag
    assert notify.header("Call-ID") and notify.header("Call-ID") != register.header("Call-ID")
    via = top_via(notify)
    assert via.transport == "UDP" and (via.host, via.port) == api.sip_address
    assert via.param("rport") == "" and via.branch.startswith("z9hG4bK")


async def test_wait_reports_each_answer_with_device_event_and_reboot(api, tmp_path):
    account = await api.new_account()
    device = await new_phone_device(api, account, provision={"check_sync_event": "resync"})
    async with SippPhones(tmp_path, api.sip_address, account["realm"], [("alice", PASSWORD)]) as phone:
        await wait_registered(api, account, [device["id"]])
        response, body = await api.call("POST", sync_path(account, device), token=account["token"],
                                        params={"wait": "true", "reboot": "true"})
        assert response.status == 200, body
        [entry] = body["data"]
        assert entry["contact"] == f"sip:alice@127.0.0.1:{phone.port};transport=UDP"
        assert entry["transport"] == "udp" and entry["status"] == 200
        assert 0 <= entry["elapsed_ms"] < 3000
        response, body = await api.call("POST", sync_path(account, device), token=account["token"],
                                        params={"wait": "true"}, json={"data": {"reboot": False}})
        assert response.status == 200 and body["data"][0]["status"] == 200, body
    assert [n.header("Event") for n in phone.received()] == ["resync;reboot=true", "resync;reboot=false"]


async def test_a_refusal_is_reported(api, tmp_path):
    account = await api.new_account()
    device = await new_phone_device(api, account)
    async with SippPhones(tmp_path, api.sip_address, account["realm"], [("alice", PASSWORD)],
                          uas="uas-notify-answer-481.xml"):
        await wait_registered(api, account, [device["id"]])
        response, body = await api.call("POST", sync_path(account, device), token=account["token"],
                                        params={"wait": "true"})
    assert response.status == 200, body
    assert [entry["status"] for entry in body["data"]] == [481]


@pytest.mark.parametrize("phone_password,expected", [(PASSWORD, 200), ("not-the-password", 403)])
async def test_a_challenge_is_answered_with_the_device_credentials(api, tmp_path, phone_password, expected):
    account = await api.new_account()
    device = await new_phone_device(api, account)
    async with SippPhones(tmp_path, api.sip_address, account["realm"], [("alice", PASSWORD)],
                          uas="uas-notify-challenge-401-then-200.xml",
                          keys={"user": "alice", "pass": phone_password}) as phone:
        await wait_registered(api, account, [device["id"]])
        response, body = await api.call("POST", sync_path(account, device), token=account["token"],
                                        params={"wait": "true"})
    assert response.status == 200, body
    assert [entry["status"] for entry in body["data"]] == [expected]
    first, retry = phone.received()
    assert retry.header("Call-ID") == first.header("Call-ID")
    assert retry.header("From") == first.header("From")
    assert (first.header("CSeq"), retry.header("CSeq")) == ("1 NOTIFY", "2 NOTIFY")
    assert top_via(retry).branch != top_via(first).branch
    assert first.header("Authorization") is None
    credentials = parse_credentials(retry.header("Authorization"))
    assert (credentials.username, credentials.realm, credentials.uri) == ("alice", "phone.test", first.uri)


async def test_a_silent_phone_times_out_and_the_service_stays_responsive(api, tmp_path):
    account = await api.new_account()
    device = await new_phone_device(api, account)
    async with SippPhones(tmp_path, api.sip_address, account["realm"], [("alice", PASSWORD)],
                          uas="uas-notify-never-answer.xml") as phone:
        await wait_registered(api, account, [device["id"]])
        loop = asyncio.get_running_loop()
        started = loop.time()
        sync = asyncio.ensure_future(api.call("POST", sync_path(account, device), token=account["token"],
                                              params={"wait": "true"}))
        checks = 0
        while not sync.done():  # meanwhile the API answers at once
            asked = loop.time()
            response, _ = await api.call("GET", f"/v2/accounts/{account['id']}/devices/{device['id']}",
                                         token=account["token"])
            assert response.status == 200 and loop.time() - asked < 0.5
            checks += 1
            await asyncio.sleep(0.2)
        assert checks >= 5
        response, body = await sync
        took = loop.time() - started
    assert response.status == 200, body
    [entry] = body["data"]
    assert entry["status"] == "timeout"
    assert 64 * T1 * 1000 <= entry["elapsed_ms"] < 64 * T1 * 1000 + 1000
    assert took < 64 * T1 + 2
    # Timer E: the same request again, at 50, 100, 200, 400 ms... intervals (RFC 3261 §17.1.2.2).
    sent = phone.received()
    assert len(sent) >= 5
    assert {top_via(n).branch for n in sent} == {top_via(sent[0]).branch}


async def test_over_tcp_the_notify_uses_the_phones_connection(api, tmp_path):
    account = await api.new_account()
    device = await new_phone_device(api, account)
    async with SippPhones(tmp_path, api.sip_address, account["realm"], [("alice", PASSWORD)],
                          transport="t1") as phone:
        await wait_registered(api, account, [device["id"]])
        response, body = await api.call("POST", sync_path(account, device), token=account["token"],
                                        params={"wait": "true"})
        assert response.status == 200, body
        assert [(e["transport"], e["status"]) for e in body["data"]] == [("tcp", 200)]
        [notify] = phone.received()
        assert top_via(notify).transport == "TCP"
        assert "TCP message received" in phone.trace.read_text()
        # The service opens no connections: the one it holds is the phone's own.
        assert len(api.client.server.app[_endpoint_key()].connections) == 1
    # The phone is gone with its connection: nothing can be sent, and the API says so.
    await wait_for(lambda: not api.client.server.app[_endpoint_key()].connections, what="the connection to close")
    response, body = await api.call("POST", sync_path(account, device), token=account["token"])
    assert response.status == 409, body
    assert body["error"] == "409" and body["message"] == "device not registered"
    assert "TCP" in body["data"]["message"]


def _endpoint_key():
    from sipsvc.app import SIP_ENDPOINT

    return SIP_ENDPOINT


async def test_a_phone_with_two_bindings_gets_two_notifies(api, tmp_path):
    account = await api.new_account()
    device = await new_phone_device(api, account)
    async with SippPhones(tmp_path, api.sip_address, account["realm"], [("alice", PASSWORD)],
                          main="uac-register-two-contacts-then-wait.xml") as phone:
        await wait_registered(api, account, [device["id"]])
        response, body = await api.call("POST", sync_path(account, device), token=account["token"],
                                        params={"wait": "true"})
    assert response.status == 200, body
    contacts = {f"sip:alice-{x}@127.0.0.1:{phone.port};transport=UDP" for x in "ab"}
    assert {(e["contact"], e["status"]) for e in body["data"]} == {(c, 200) for c in contacts}
    notifies = phone.received()
    assert {n.uri for n in notifies} == contacts and len(notifies) == 2
    assert len({n.header("Call-ID") for n in notifies}) == 2


async def test_sync_flag_on_save_syncs_and_is_not_stored(api, tmp_path):
    account = await api.new_account()
    device = await new_phone_device(api, account)
    path = f"/v2/accounts/{account['id']}/devices/{device['id']}"
    async with SippPhones(tmp_path, api.sip_address, account["realm"], [("alice", PASSWORD)]) as phone:
        await wait_registered(api, account, [device["id"]])
        response, body = await api.call("PATCH", path, token=account["token"],
                                        json={"data": {"name": "renamed", "sync": True}})
        assert response.status == 200, body
        assert "sync" not in body["data"] and body["data"]["name"] == "renamed"
        await wait_for(lambda: len(phone.received()) == 1, what="the NOTIFY after PATCH")
        full = dict(body["data"], sync=True)
        response, body = await api.call("POST", path, token=account["token"], json={"data": full})
        assert response.status == 200, body
        await wait_for(lambda: len(phone.received()) == 2, what="the NOTIFY after POST")
        response, body = await api.call("PATCH", path, token=account["token"], json={"data": {"name": "quiet"}})
        assert response.status == 200, body
        await asyncio.sleep(0.5)
        assert len(phone.received()) == 2  # no sync asked, no credentials changed: nothing sent
    _, body = await api.call("GET", path, token=account["token"])
    assert "sync" not in body["data"]


async def test_a_credentials_change_notifies_the_old_binding(api, tmp_path):
    account = await api.new_account()
    device = await new_phone_device(api, account)
    path = f"/v2/accounts/{account['id']}/devices/{device['id']}"
    async with SippPhones(tmp_path, api.sip_address, account["realm"], [("alice", PASSWORD)]) as phone:
        await wait_registered(api, account, [device["id"]])
        response, body = await api.call("PATCH", path, token=account["token"],
                                        json={"data": {"sip": {"username": "alice2"}}})
        assert response.status == 200, body
        await wait_for(lambda: len(phone.received()) == 1, what="the NOTIFY to the old binding")
    [notify] = phone.received()
    old_aor = f"sip:alice@{account['realm']}"
    assert notify.header("To") == f"<{old_aor}>" and notify.header("X-KAZOO-AOR") == old_aor
    assert notify.uri == f"sip:alice@127.0.0.1:{phone.port};transport=UDP"
    _, body = await api.call("GET", f"{path}/registrations", token=account["token"])
    assert body["data"] == []  # the binding went with the old credentials


async def test_an_unregistered_device_is_a_conflict_and_a_missing_one_404(api):
    account = await api.new_account()
    device = await new_phone_device(api, account)
    response, body = await api.call("POST", sync_path(account, device), token=account["token"])
    assert response.status == 409
    assert body["status"] == "error" and body["error"] == "409"
    assert body["message"] == "device not registered"
    assert body["data"]["cause"] == device["id"] and "no current registration" in body["data"]["message"]
    response, body = await api.call("POST", sync_path(account, {"id": "0" * 32}), token=account["token"])
    assert response.status == 404
    assert body["message"] == "bad_identifier" and body["data"] == {"cause": "0" * 32, "message": "bad identifier"}
    response, body = await api.call("POST", sync_path(account), token=account["token"])
    assert response.status == 200, body
    assert body["data"]["devices"] == 0 and body["data"]["sent"] == 0
    # A save asking for a sync still succeeds for an unregistered device (as in Kazoo).
    response, body = await api.call("PATCH", f"/v2/accounts/{account['id']}/devices/{device['id']}",
                                    token=account["token"], json={"data": {"sync": True}})
    assert response.status == 200 and "sync" not in body["data"], body


@pytest.mark.parametrize("params,data,message", [
    ({"reboot": "maybe"}, None, "reboot must be true or false"),
    ({"wait": "soon"}, None, "wait must be true or false"),
    ({}, {"reboot": "yes"}, '"reboot" must be true or false'),
    ({"reboot": "true"}, {"reboot": False}, "different values"),
])
async def test_bad_sync_options_are_refused_clearly(api, params, data, message):
    account = await api.new_account()
    device = await new_phone_device(api, account)
    response, body = await api.call("POST", sync_path(account, device), token=account["token"], params=params,
                                    json={"data": data} if data is not None else None)
    assert response.status == 400, body
    assert message in body["data"]["message"]


async def test_bad_sync_flag_and_event_are_validation_errors(api):
    account = await api.new_account()
    device = await new_phone_device(api, account)
    path = f"/v2/accounts/{account['id']}/devices/{device['id']}"
    response, body = await api.call("PATCH", path, token=account["token"], json={"data": {"sync": "yes"}})
    assert response.status == 400 and "sync" in body["data"], body
    response, body = await api.call("PATCH", path, token=account["token"],
                                    json={"data": {"provision": {"check_sync_event": "a\r\nX-Evil: 1"}}})
    assert response.status == 400 and "provision.check_sync_event" in body["data"], body


async def test_bulk_sync_of_500_phones_and_a_second_one_is_refused(make_api, tmp_path):
    node = await make_api(digest_algorithms=("MD5", "SHA-256"), t1=T1, notify_rate=400.0)
    other_node = await make_api(digest_algorithms=("MD5", "SHA-256"), t1=T1)
    account = await node.new_account()
    users = [(f"user{i:03d}", PASSWORD) for i in range(500)]
    devices = []
    for start in range(0, len(users), 50):
        devices += await asyncio.gather(*(new_phone_device(node, account, name) for name, _ in users[start:start + 50]))
    async with SippPhones(tmp_path, node.sip_address, account["realm"], users, rate=250) as phones:
        await wait_registered(node, account, [d["id"] for d in devices], timeout=20)
        bulk = asyncio.ensure_future(node.call("POST", sync_path(account), token=account["token"]))
        await wait_for(lambda: len(phones.received()) > 0, what="the first NOTIFY")
        response, body = await other_node.call("POST", sync_path(account), token=account["token"])
        assert response.status == 409, body
        assert body["message"] == "sync already running"
        response, body = await bulk
        assert response.status == 200, body
        summary = body["data"]
        assert summary["devices"] == 500 and summary["sent"] == 500
        assert summary["answered"] == {"200": 500} and summary["timed_out"] == 0
        assert 300 <= summary["rate"] <= 440  # paced at 400/s
        await wait_for(lambda: len(phones.received()) >= 500, what="500 NOTIFYs in the trace")
        notified = {re.match(r"sip:(user\d+)@", n.uri).group(1) for n in phones.received()}
        assert notified == {name for name, _ in users}
        response, body = await other_node.call("POST", sync_path(account), token=account["token"])
        assert response.status == 200, body  # the lock is free again
        assert body["data"]["answered"] == {"200": 500}
