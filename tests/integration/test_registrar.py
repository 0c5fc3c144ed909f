"""The registrar over real UDP and TCP against the running service (real Redis): every RFC 3261
§10.3 rule, digest authentication, IP authentication, and what the API shows afterwards."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.sipclient import SipClient

PASSWORD = "secret123"


async def phone(api, username: str = "alice", **sip):
    account = await api.new_account()
    device = await api.new_device(account, {"name": username, "sip": {"username": username, "password": PASSWORD, **sip}})
    return account, device


async def status(api, account) -> list[str]:
    _, body = await api.call("GET", f"/v2/accounts/{account['id']}/devices/status", token=account["token"])
    return [row["device_id"] for row in body["data"]]


async def registrations(api, account, device) -> list[dict]:
    _, body = await api.call("GET", f"/v2/accounts/{account['id']}/devices/{device['id']}/registrations",
                             token=account["token"])
    return body["data"]


def contact_expires(response) -> dict[str, int]:
    out = {}
    for value in response.values("Contact"):
        uri = value[value.index("<") + 1:value.index(">")]
        out[uri] = int(re.search(r";expires=(\d+)", value).group(1))
    return out


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
async def test_a_phone_registers_with_digest_and_shows_up(api, algorithm):
    account, device = await phone(api)
    async with SipClient(api.sip_address) as client:
        challenge = await client.send(client.register_request("alice", account["realm"]))
        assert challenge.status == 401
        offers = challenge.header_lines("WWW-Authenticate")
        assert [re.search(r"algorithm=([\w-]+)", o).group(1) for o in offers] == ["SHA-256", "MD5"]
        assert all(f'realm="{account["realm"]}"' in o and 'qop="auth"' in o for o in offers)
        authorization = client.answer(challenge, "alice", PASSWORD, f"sip:{account['realm']}", algorithm=algorithm)
        ok = await client.send(client.register_request("alice", account["realm"], authorization=authorization))
    assert ok.status == 200
    assert ok.header("Date").endswith("GMT")
    assert ";tag=" in ok.header("To")
    (contact, expires), = contact_expires(ok).items()
    assert contact == f"sip:alice@{client.local[0]}:{client.local[1]};transport=udp" and 295 <= expires <= 300
    assert await status(api, account) == [device["id"]]
    (binding,) = await registrations(api, account, device)
    assert binding["source"] == f"127.0.0.1:{client.local[1]}"
    assert binding["transport"] == "udp" and binding["user_agent"] == "sipsvc-tests"
    assert 295 <= binding["expires_in"] <= 300


async def test_a_phone_registers_over_tcp(api):
    account, device = await phone(api)
    async with SipClient(api.sip_address, "tcp") as client:
        response = await client.register("alice", PASSWORD, account["realm"])
    assert response.status == 200
    (binding,) = await registrations(api, account, device)
    assert binding["transport"] == "tcp"


async def test_wrong_password_and_unknown_user_are_answered_alike(api):
    account, _ = await phone(api)
    answers = []
    for user, password in (("alice", "wrong-password"), ("mallory", PASSWORD)):
        async with SipClient(api.sip_address) as client:
            answers.append(await client.register(user, password, account["realm"]))
    assert [(r.status, r.reason) for r in answers] == [(403, "Forbidden")] * 2
    assert await status(api, account) == []


async def test_an_unknown_domain_gets_404(api):
    async with SipClient(api.sip_address) as client:
        response = await client.send(client.register_request("alice", "nowhere.invalid"))
    assert response.status == 404


async def test_a_disabled_device_gets_403(api):
    account, device = await phone(api)
    await api.call("PATCH", f"/v2/accounts/{account['id']}/devices/{device['id']}", token=account["token"],
                   json={"data": {"enabled": False}})
    async with SipClient(api.sip_address) as client:
        assert (await client.register("alice", PASSWORD, account["realm"])).status == 403


async def test_credentials_of_one_device_cannot_register_another_aor(api):
    account, _ = await phone(api)
    await api.new_device(account, {"name": "bob", "sip": {"username": "bob", "password": "bobsecret"}})
    async with SipClient(api.sip_address) as client:
        challenge = await client.send(client.register_request("bob", account["realm"]))
        authorization = client.answer(challenge, "alice", PASSWORD, f"sip:{account['realm']}")
        response = await client.send(client.register_request("bob", account["realm"], authorization=authorization))
    assert response.status == 403
    assert await status(api, account) == []


async def test_the_request_uri_may_be_an_address(api):
    account, device = await phone(api)
    host, port = api.sip_address
    async with SipClient(api.sip_address) as client:
        response = await client.register("alice", PASSWORD, account["realm"], uri=f"sip:{host}:{port}")
    assert response.status == 200
    assert await status(api, account) == [device["id"]]


async def test_unregister_with_expires_zero(api):
    account, device = await phone(api)
    async with SipClient(api.sip_address) as client:
        assert (await client.register("alice", PASSWORD, account["realm"])).status == 200
        response = await client.register("alice", PASSWORD, account["realm"], expires=0)
    assert response.status == 200 and response.values("Contact") == []
    assert await status(api, account) == []
    assert await registrations(api, account, device) == []


async def test_contact_star_removes_every_binding_and_needs_expires_zero(api):
    account, _ = await phone(api)
    async with SipClient(api.sip_address) as client:
        await client.register("alice", PASSWORD, account["realm"],
                              contacts=["<sip:a@127.0.0.1:5999>", "<sip:b@127.0.0.1:5998>"])
        bad = await client.register("alice", PASSWORD, account["realm"], contacts=["*"], expires=300)
        assert bad.status == 400
        response = await client.register("alice", PASSWORD, account["realm"], contacts=["*"], expires=0)
    assert response.status == 200 and response.values("Contact") == []
    assert await status(api, account) == []


async def test_too_brief_an_interval_gets_423_with_min_expires(api):
    account, _ = await phone(api)
    async with SipClient(api.sip_address) as client:
        response = await client.register("alice", PASSWORD, account["realm"], expires=10)
    assert response.status == 423 and response.header("Min-Expires") == "60"
    assert await status(api, account) == []


async def test_a_long_interval_is_shortened_and_contact_expires_wins(api):
    account, _ = await phone(api)
    async with SipClient(api.sip_address) as client:
        response = await client.register("alice", PASSWORD, account["realm"], expires=999999,
                                         contacts=["<sip:a@127.0.0.1:5999>", "<sip:b@127.0.0.1:5998>;expires=120"])
    granted = contact_expires(response)
    assert 3595 <= granted["sip:a@127.0.0.1:5999"] <= 3600
    assert 115 <= granted["sip:b@127.0.0.1:5998"] <= 120


async def test_several_contacts_and_refreshes(api):
    account, device = await phone(api)
    async with SipClient(api.sip_address) as client:
        await client.register("alice", PASSWORD, account["realm"], contacts=["<sip:a@Phone.example:5999>"])
        response = await client.register("alice", PASSWORD, account["realm"],
                                         contacts=["<sip:b@phone.example:5998>", "<sip:a@PHONE.example:5999>"])
    # The second REGISTER refreshed a (hosts compare case-insensitively, RFC 3261 §19.1.4) and
    # added b; the contact is kept as the phone last wrote it.
    assert set(contact_expires(response)) == {"sip:a@PHONE.example:5999", "sip:b@phone.example:5998"}
    assert len(await registrations(api, account, device)) == 2


async def test_the_same_instance_replaces_its_binding(api):
    account, device = await phone(api)
    instance = '"<urn:uuid:00000000-0000-1000-8000-000000000001>"'
    async with SipClient(api.sip_address) as client:
        for port in (5001, 5002):
            response = await client.register("alice", PASSWORD, account["realm"],
                                             contacts=[f"<sip:alice@127.0.0.1:{port}>;+sip.instance={instance}"])
            assert response.status == 200
    (binding,) = await registrations(api, account, device)
    assert binding["contact"] == "sip:alice@127.0.0.1:5002" and binding["instance"] == instance


async def test_an_older_cseq_of_the_same_call_id_fails(api):
    account, device = await phone(api)
    async with SipClient(api.sip_address) as client:
        assert (await client.register("alice", PASSWORD, account["realm"], cseq=10)).status == 200
        challenge = await client.send(client.register_request("alice", account["realm"], cseq=3))
        stale = await client.send(client.register_request(
            "alice", account["realm"], cseq=4,
            authorization=client.answer(challenge, "alice", PASSWORD, f"sip:{account['realm']}")))
    assert stale.status == 500
    assert len(await registrations(api, account, device)) == 1


async def test_too_many_contacts_are_refused(make_api):
    api = await make_api(max_contacts=2)
    account, _ = await phone(api)
    async with SipClient(api.sip_address) as client:
        response = await client.register("alice", PASSWORD, account["realm"],
                                         contacts=[f"<sip:a@127.0.0.1:{p}>" for p in (5001, 5002, 5003)])
    assert response.status == 403 and response.reason == "Too Many Contacts"


async def test_a_retransmitted_register_gets_the_same_response_once_processed(api):
    account, device = await phone(api)
    async with SipClient(api.sip_address) as client:
        challenge = await client.send(client.register_request("alice", account["realm"]))
        request = client.register_request("alice", account["realm"], authorization=client.answer(
            challenge, "alice", PASSWORD, f"sip:{account['realm']}"))
        first = await client.send(request)
        second = await client.send(request)  # same branch: a retransmission
    assert first.status == 200 and second.to_bytes() == first.to_bytes()


async def test_a_replayed_nonce_count_is_challenged_again(api):
    account, _ = await phone(api)
    async with SipClient(api.sip_address) as client:
        challenge = await client.send(client.register_request("alice", account["realm"]))
        authorization = client.answer(challenge, "alice", PASSWORD, f"sip:{account['realm']}", nc=1)
        assert (await client.send(client.register_request("alice", account["realm"], authorization=authorization))).status == 200
        replay = await client.send(client.register_request("alice", account["realm"], authorization=authorization))
    assert replay.status == 401


async def test_an_expired_nonce_is_challenged_with_stale_true(make_api):
    api = await make_api(nonce_lifetime=1)
    account, _ = await phone(api)
    async with SipClient(api.sip_address) as client:
        challenge = await client.send(client.register_request("alice", account["realm"]))
        await asyncio.sleep(1.3)
        response = await client.send(client.register_request("alice", account["realm"], authorization=client.answer(
            challenge, "alice", PASSWORD, f"sip:{account['realm']}")))
    assert response.status == 401
    assert all("stale=true" in value for value in response.header_lines("WWW-Authenticate"))


async def test_a_binding_lapses_at_its_expiry_without_a_sweeper(make_api):
    api = await make_api(min_expires=1, default_expires=1)
    account, device = await phone(api)
    async with SipClient(api.sip_address) as client:
        assert (await client.register("alice", PASSWORD, account["realm"], expires=1)).status == 200
    assert await status(api, account) == [device["id"]]
    await asyncio.sleep(1.2)
    assert await status(api, account) == []
    assert await registrations(api, account, device) == []


async def test_an_ip_authenticated_device_registers_without_a_challenge(api):
    account = await api.new_account()
    device = await api.new_device(account, {"name": "trunk", "sip": {"method": "ip", "ip": "127.0.0.1"}})
    async with SipClient(api.sip_address) as client:
        response = await client.send(client.register_request("trunk", account["realm"]))
    try:
        assert response.status == 200
        assert await status(api, account) == [device["id"]]
    finally:  # 127.0.0.1 is unique among IP devices: free it for other tests
        await api.call("DELETE", f"/v2/accounts/{account['id']}/devices/{device['id']}", token=account["token"])


@pytest.mark.parametrize("change", [
    {"sip": {"password": "another-secret"}},
    {"sip": {"username": "alice2"}},
    {"enabled": False},
    None,  # delete
])
async def test_registrations_are_dropped_when_credentials_change(api, change):
    account, device = await phone(api)
    async with SipClient(api.sip_address) as client:
        assert (await client.register("alice", PASSWORD, account["realm"])).status == 200
    assert await status(api, account) == [device["id"]]
    path = f"/v2/accounts/{account['id']}/devices/{device['id']}"
    if change is None:
        await api.call("DELETE", path, token=account["token"])
    else:
        response, _ = await api.call("PATCH", path, token=account["token"], json={"data": change})
        assert response.status == 200
    assert await status(api, account) == []


async def test_unrelated_changes_keep_the_registration(api):
    account, device = await phone(api)
    async with SipClient(api.sip_address) as client:
        assert (await client.register("alice", PASSWORD, account["realm"])).status == 200
    await api.call("PATCH", f"/v2/accounts/{account['id']}/devices/{device['id']}", token=account["token"],
                   json={"data": {"name": "renamed"}})
    assert await status(api, account) == [device["id"]]


async def test_listing_with_status_says_who_is_registered(api):
    account, device = await phone(api)
    other = await api.new_device(account, {"name": "idle"})
    async with SipClient(api.sip_address) as client:
        await client.register("alice", PASSWORD, account["realm"])
    _, body = await api.call("GET", f"/v2/accounts/{account['id']}/devices", token=account["token"],
                             params={"with_status": "true"})
    assert {row["id"]: row["registered"] for row in body["data"]} == {device["id"]: True, other["id"]: False}


async def test_status_is_the_same_seen_from_another_node(api, make_api):
    account, device = await phone(api)
    other_node = await make_api()
    async with SipClient(other_node.sip_address) as client:
        assert (await client.register("alice", PASSWORD, account["realm"])).status == 200
    assert await status(api, account) == [device["id"]] == await status(other_node, account)


@pytest.mark.parametrize("method,expected", [("INVITE", 405), ("MESSAGE", 405), ("FOO", 501), ("OPTIONS", 200)])
async def test_methods_other_than_register(api, method, expected):
    async with SipClient(api.sip_address) as client:
        request = client.register_request("x", "example.com")
        headers = tuple((n, v.replace("REGISTER", method)) for n, v in request.headers)
        response = await client.send(type(request)(method=method, uri="sip:example.com", headers=headers))
    assert response.status == expected
    if expected in (405, 200):
        assert "REGISTER" in response.header("Allow")


async def test_an_unsupported_scheme_and_extension(api):
    async with SipClient(api.sip_address) as client:
        request = client.register_request("x", "example.com", uri="tel:+15551234")
        assert (await client.send(request)).status == 416
        request = client.register_request("x", "example.com", extra=[("Require", "foo, path")])
        response = await client.send(request)
    assert response.status == 420 and response.header("Unsupported") == "foo"


async def test_a_malformed_request_with_a_via_gets_400_and_garbage_nothing(api):
    async with SipClient(api.sip_address) as client:
        request = client.register_request("x", "example.com")
        broken = request.to_bytes().replace(b"CSeq: 1 REGISTER", b"CSeq: one REGISTER")
        client.send_bytes(broken)
        response = await client.receive()
        assert response.status == 400 and response.reason == "malformed CSeq"
        client.send_bytes(b"\x00\x01garbage\r\n\r\n")
        with pytest.raises(asyncio.TimeoutError):
            await client.receive(timeout=0.5)


async def test_a_changed_password_is_enforced_at_once(api, make_api):
    account, device = await phone(api)
    other_node = await make_api()  # its auth cache must hear about the change too
    for node in (api, other_node):
        async with SipClient(node.sip_address) as client:
            assert (await client.register("alice", PASSWORD, account["realm"])).status == 200
    await api.call("PATCH", f"/v2/accounts/{account['id']}/devices/{device['id']}", token=account["token"],
                   json={"data": {"sip": {"password": "brand-new-secret"}}})
    for node in (api, other_node):
        async with SipClient(node.sip_address) as client:
            assert (await client.register("alice", PASSWORD, account["realm"])).status == 403
            assert (await client.register("alice", "brand-new-secret", account["realm"])).status == 200


async def preloaded_replica(node):
    """The node's replica of the auth records, once its preload has finished (at most 10 s)."""
    from sipsvc.app import STORES

    cache = node.client.server.app[STORES].devices.auth_cache
    for _ in range(200):  # bounded: the preload runs in the background after subscribing
        if cache.preloaded:
            return cache
        await asyncio.sleep(0.05)
    raise AssertionError("the preload did not finish within 10 s")


async def test_a_new_node_holds_every_device_auth_record_in_memory(api, make_api):
    from sipsvc.store import keys

    account, device = await phone(api)
    node = await make_api()
    cache = await preloaded_replica(node)
    claim = keys.sip_credentials_claim(account["realm"], "alice")
    assert claim in cache._entries, "the record was not preloaded"
    record = cache._entries[claim][0]
    assert record["device_id"] == device["id"] and record["password"] == PASSWORD
    async with SipClient(node.sip_address) as client:
        assert (await client.register("alice", PASSWORD, account["realm"])).status == 200
    # A change made through another node drops the preloaded record at once.
    await api.call("PATCH", f"/v2/accounts/{account['id']}/devices/{device['id']}", token=account["token"],
                   json={"data": {"sip": {"password": "changed-secret"}}})
    async with SipClient(node.sip_address) as client:
        assert (await client.register("alice", PASSWORD, account["realm"])).status == 403


async def test_a_device_written_after_start_is_in_every_replica_without_a_register(api, make_api):
    """Devices created or changed after a node started are reloaded into its replica in the
    background: no REGISTER has to miss first (and every node's memory is complete)."""
    from sipsvc.store import keys

    node = await make_api()
    cache = await preloaded_replica(node)
    account, device = await phone(api, "bob")  # written through the other node
    claim = keys.sip_credentials_claim(account["realm"], "bob")
    for _ in range(100):
        known, record = cache.known(claim)
        if known and record is not None:
            break
        await asyncio.sleep(0.05)
    assert known and record["device_id"] == device["id"] and record["password"] == PASSWORD
    await api.call("PATCH", f"/v2/accounts/{account['id']}/devices/{device['id']}", token=account["token"],
                   json={"data": {"sip": {"password": "changed-secret"}}})
    for _ in range(100):
        known, record = cache.known(claim)
        if known and record["password"] == "changed-secret":
            break
        await asyncio.sleep(0.05)
    assert known and record["password"] == "changed-secret"
