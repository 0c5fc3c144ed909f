"""``GET /v2/accounts/{A}/registrations/events``: a snapshot, then register, refresh,
unregister and expired as Server-Sent Events, from real REGISTERs over loopback, with real
Redis pub/sub between nodes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

from tests.sipclient import SipClient
from tests.sse import SseReader

PASSWORD = "secret123"


async def phone(api, username: str = "alice"):
    account = await api.new_account()
    device = await api.new_device(account, {"name": username, "sip": {"username": username, "password": PASSWORD}})
    return account, device


@contextlib.asynccontextmanager
async def stream(api, account, token=None):
    response = await api.client.get(f"/v2/accounts/{account['id']}/registrations/events",
                                    headers={"X-Auth-Token": token or account["token"]})
    try:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"] == "text/event-stream"
        yield SseReader(response)
    finally:
        response.close()


async def test_a_stream_starts_with_a_snapshot_then_follows_register_refresh_unregister(api):
    account, device = await phone(api)
    async with stream(api, account) as events:
        name, snapshot = await events.next()
        assert name == "snapshot" and snapshot["registered"] == []
        async with SipClient(api.sip_address) as client:
            assert (await client.register("alice", PASSWORD, account["realm"], expires=300)).status == 200
            name, registered = await events.next()
            assert name == "register"
            assert registered["device_id"] == device["id"] and registered["contacts"] == 1
            assert 295 < registered["expires_at"] - time.time() <= 300
            assert (await client.register("alice", PASSWORD, account["realm"], expires=600)).status == 200
            name, refreshed = await events.next()
            assert name == "refresh" and refreshed["expires_at"] > registered["expires_at"] + 250
            assert (await client.register("alice", PASSWORD, account["realm"], expires=0)).status == 200
            name, gone = await events.next()
            assert name == "unregister" and gone["device_id"] == device["id"] and gone["contacts"] == 0


async def test_the_snapshot_lists_devices_already_registered(api):
    account, device = await phone(api)
    await api.new_device(account, {"name": "idle"})
    async with SipClient(api.sip_address) as client:
        assert (await client.register("alice", PASSWORD, account["realm"])).status == 200
    async with stream(api, account) as events:
        name, snapshot = await events.next()
    assert name == "snapshot"
    (row,) = snapshot["registered"]
    assert row["device_id"] == device["id"] and row["expires_at"] > time.time() + 250


async def test_an_expiry_without_refresh_is_an_expired_event(make_api):
    api = await make_api(min_expires=1)
    account, device = await phone(api)
    async with stream(api, account) as events:
        await events.until("snapshot")
        async with SipClient(api.sip_address) as client:
            assert (await client.register("alice", PASSWORD, account["realm"], expires=1)).status == 200
        registered = await events.until("register")
        expired = await events.until("expired", timeout=4)
    assert expired["device_id"] == device["id"]
    assert expired["expires_at"] == registered["expires_at"] <= expired["at"]
    _, body = await api.call("GET", f"/v2/accounts/{account['id']}/devices/status", token=account["token"])
    assert body["data"] == []


async def test_a_refreshed_device_does_not_expire(make_api):
    api = await make_api(min_expires=1)
    account, _ = await phone(api)
    async with stream(api, account) as events:
        await events.until("snapshot")
        async with SipClient(api.sip_address) as client:
            for _ in range(4):
                assert (await client.register("alice", PASSWORD, account["realm"], expires=2)).status == 200
                await asyncio.sleep(0.8)
        names = []
        with contextlib.suppress(asyncio.TimeoutError):
            while True:
                names.append((await events.next(timeout=0.5))[0])
    assert names[:4] == ["register", "refresh", "refresh", "refresh"], names
    assert names[4:] == [] or names[4:] == ["expired"], names  # only after the last REGISTER's 2 s


async def test_events_reach_a_stream_served_by_another_node(make_api):
    node_a, node_b = await make_api(), await make_api()
    account, device = await phone(node_a)
    async with stream(node_b, account) as events:
        await events.until("snapshot")
        async with SipClient(node_a.sip_address) as client:
            assert (await client.register("alice", PASSWORD, account["realm"])).status == 200
        assert (await events.until("register"))["device_id"] == device["id"]


async def test_deleting_or_rekeying_a_registered_device_is_an_unregister_with_a_reason(api):
    account, device = await phone(api)
    other = await api.new_device(account, {"name": "bob", "sip": {"username": "bob", "password": PASSWORD}})
    async with SipClient(api.sip_address) as alice, SipClient(api.sip_address) as bob:
        assert (await alice.register("alice", PASSWORD, account["realm"])).status == 200
        assert (await bob.register("bob", PASSWORD, account["realm"])).status == 200
    async with stream(api, account) as events:
        assert len((await events.until("snapshot"))["registered"]) == 2
        response, _ = await api.call("PATCH", f"/v2/accounts/{account['id']}/devices/{other['id']}",
                                     token=account["token"], json={"data": {"sip": {"password": "changed99"}}})
        assert response.status == 200
        changed = await events.until("unregister")
        response, _ = await api.call("DELETE", f"/v2/accounts/{account['id']}/devices/{device['id']}",
                                     token=account["token"])
        assert response.status == 200
        deleted = await events.until("unregister")
    assert (changed["device_id"], changed["reason"]) == (other["id"], "device_changed")
    assert (deleted["device_id"], deleted["reason"]) == (device["id"], "device_deleted")


async def test_the_stream_needs_a_token_of_the_account(api):
    account, _ = await phone(api)
    other = await api.new_account()
    path = f"/v2/accounts/{account['id']}/registrations/events"
    response, body = await api.call("GET", path, token=None)
    assert response.status == 401 and body["message"] == "invalid_credentials"
    response, body = await api.call("GET", path, token=other["token"])
    assert response.status == 403 and body["message"] == "forbidden"


async def test_every_watcher_of_an_account_gets_each_event(api):
    account, device = await phone(api)
    async with stream(api, account) as first, stream(api, account) as second:
        await first.until("snapshot")
        await second.until("snapshot")
        async with SipClient(api.sip_address) as client:
            assert (await client.register("alice", PASSWORD, account["realm"])).status == 200
        assert (await first.until("register"))["device_id"] == device["id"]
        assert (await second.until("register"))["device_id"] == device["id"]


async def test_an_open_stream_does_not_hold_up_stopping_the_service(redis_url):
    import urllib.request

    from tests.live import LiveServer

    server = LiveServer(redis_url)
    account = server.new_account()
    request = urllib.request.Request(f"{server.base}/v2/accounts/{account['id']}/registrations/events",
                                     headers={"X-Auth-Token": account["token"]})
    stream = await asyncio.to_thread(urllib.request.urlopen, request, timeout=10)
    assert (await asyncio.to_thread(stream.readline)).startswith(b"event: snapshot")
    started = time.monotonic()
    returncode, stderr = await asyncio.to_thread(server.stop)
    assert returncode == 0, stderr
    assert time.monotonic() - started < 5  # aiohttp would otherwise wait up to a minute for it
    stream.close()


async def test_a_watcher_arriving_just_as_the_last_one_left_is_served_at_once(redis_url):
    import redis.asyncio as aioredis

    from sipsvc.events.hub import RegistrationEvents
    from sipsvc.store.registration_events import RegistrationEventFeed

    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    hub = RegistrationEvents(RegistrationEventFeed(client))
    hub.start()
    try:
        account_id = os.urandom(16).hex()
        async with hub.watch(account_id) as first:
            assert first.snapshot == {}
        # The feed has not dropped the subscription yet; the new watcher must not wait for a
        # confirmation that will never come.
        started = time.monotonic()
        async with hub.watch(account_id):
            pass
        assert time.monotonic() - started < 1
    finally:
        await hub.stop()
        await client.aclose()
