"""The whole service on Redis Sentinel and on Redis Cluster, each a real set of servers on
loopback: accounts, devices (with their cross-account claims), listings, a user's devices,
REGISTER, a password change that every process's auth cache hears of over pub/sub, live
registration events, and delete. On the cluster a script whose keys spanned two hash slots
would fail with CROSSSLOT, so this runs every Lua script the store has against it."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace

import pytest
import redis

from sipsvc.app import create_app
from sipsvc.store import keys
from tests.conftest import Api
from tests.integration import redis_servers
from tests.integration.test_registration_events import stream
from tests.sipclient import SipClient

PASSWORD = "first-pass-1"


async def exercise(api: Api) -> None:
    """Every store operation, through the API and SIP, with every script among them."""
    account = await api.new_account()
    user = os.urandom(16).hex()
    device = await api.new_device(account, {"name": "desk", "owner_id": user, "mac_address": "00:11:22:33:44:55",
                                            "sip": {"username": "alice", "password": PASSWORD}})
    path = f"/v2/accounts/{account['id']}/devices/{device['id']}"
    async with stream(api, account) as events:
        name, _ = await events.next()
        assert name == "snapshot"
        async with SipClient(api.sip_address) as phone:
            assert (await phone.register("alice", PASSWORD, account["realm"])).status == 200
            name, event = await events.next()
            assert name == "register" and event["device_id"] == device["id"]
            # A new password: the auth cache hears of it over pub/sub (the old one stops working).
            response, body = await api.call("PATCH", path, token=account["token"],
                                            json={"data": {"sip": {"password": "second-pass-2"}}})
            assert response.status == 200, body
        # (The first phone gets a NOTIFY for its dropped registration; a second one goes on.)
        async with SipClient(api.sip_address) as phone:
            for _ in range(50):
                if (await phone.register("alice", PASSWORD, account["realm"])).status in (401, 403):
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the old password still works")
            assert (await phone.register("alice", "second-pass-2", account["realm"])).status == 200
    response, body = await api.call("GET", f"/v2/accounts/{account['id']}/devices", token=account["token"])
    assert response.status == 200 and [d["id"] for d in body["data"]] == [device["id"]]
    response, body = await api.call("GET", f"/v2/accounts/{account['id']}/users/{user}/devices",
                                    token=account["token"])
    assert response.status == 200 and len(body["data"]) == 1
    # A second device may not take the first one's credentials (a claim), then takes them
    # once the first is deleted (its claim released).
    response, _ = await api.call("PUT", f"/v2/accounts/{account['id']}/devices", token=account["token"],
                                 json={"data": {"name": "copy", "sip": {"username": "alice", "password": "x" * 8}}})
    assert response.status == 400
    response, _ = await api.call("DELETE", path, token=account["token"])
    assert response.status == 200
    await api.new_device(account, {"name": "copy", "sip": {"username": "alice", "password": "x" * 8}})
    response, _ = await api.call("GET", "/readyz", token=None)
    assert response.status == 200


async def test_the_service_runs_on_redis_sentinel(aiohttp_client, config, tmp_path):
    master = redis_servers.plain(tmp_path / "master").start()
    sentinel = redis_servers.sentinel(tmp_path / "sentinel", master.port, "sipsvc").start()
    try:
        url = f"redis+sentinel://127.0.0.1:{sentinel.port}/sipsvc/3"
        api = Api(await aiohttp_client(create_app(replace(config, redis_url=url))))
        await exercise(api)
        stored = redis.Redis(port=master.port, db=3, decode_responses=True)
        assert stored.exists(keys.nonce_secret())  # the data went to db 3 of the master
        stored.close()
        await api.client.close()
    finally:
        sentinel.stop()
        master.stop()


async def test_a_bad_sentinel_url_is_refused_with_the_expected_form(config):
    from sipsvc.store.connection import connect_url
    from sipsvc.store.errors import StoreUnavailableError

    with pytest.raises(StoreUnavailableError, match="service_name"):
        await connect_url("redis+sentinel://127.0.0.1:26379")


async def test_the_service_runs_on_redis_cluster(aiohttp_client, config, tmp_path):
    started = time.monotonic()
    servers = redis_servers.cluster(tmp_path / "cluster")
    try:
        assert time.monotonic() - started < 20
        url = "redis+cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in servers[:2])
        api = Api(await aiohttp_client(create_app(replace(config, redis_url=url))))
        await exercise(api)
        # The data really is spread over the nodes (so one slot per script was not luck).
        sizes = [redis.Redis(port=s.port).dbsize() for s in servers]
        assert sum(1 for size in sizes if size > 0) >= 2, sizes
        # With the whole cluster gone, REGISTER is answered 503 and the API 503 (not 500).
        for server in servers:
            server.stop()
        async with SipClient(api.sip_address) as phone:
            response = await phone.send(phone.register_request("nobody", "gone.sip.test"), timeout=10)
            assert response.status == 503 and response.header("Retry-After")
        response, body = await api.call("GET", f"/v2/accounts/{'0' * 32}")
        assert response.status == 503 and body["message"] == "datastore_unreachable"
        await api.client.close()
    finally:
        for server in servers:
            server.stop()


async def test_a_sentinel_failover_is_followed_without_a_restart(aiohttp_client, config, tmp_path):
    """The master dies; the Sentinel promotes its replica; REGISTER and the API answer 503 at
    worst meanwhile and then work against the new master by themselves."""
    master = redis_servers.plain(tmp_path / "master").start()
    replica = redis_servers.Server(redis_servers.free_port(), tmp_path / "replica",
                                   ["--save", "", "--replicaof", "127.0.0.1", str(master.port)]).start()
    sentinel = redis_servers.sentinel(tmp_path / "sentinel", master.port, "sipsvc").start()
    try:
        url = f"redis+sentinel://127.0.0.1:{sentinel.port}/sipsvc"
        api = Api(await aiohttp_client(create_app(replace(config, redis_url=url))))
        account = await api.new_account()
        device = await api.new_device(account, {"name": "carol", "sip": {"username": "carol", "password": PASSWORD}})
        with redis.Redis(port=master.port) as direct:
            assert direct.wait(1, 5000) == 1  # the replica has everything so far
        with redis.Redis(port=sentinel.port, decode_responses=True) as watcher:
            deadline = time.monotonic() + 15  # the Sentinel has found the replica
            while not watcher.sentinel_slaves("sipsvc"):
                assert time.monotonic() < deadline, "the Sentinel did not discover the replica"
                await asyncio.sleep(0.1)
            master.process.kill()
            master.process.wait(10)
            statuses = []
            async with SipClient(api.sip_address) as phone:
                deadline = time.monotonic() + 30
                while True:
                    status = (await phone.register("carol", PASSWORD, account["realm"])).status
                    statuses.append(status)
                    if status == 200:
                        break
                    assert status == 503 and time.monotonic() < deadline, statuses
                    await asyncio.sleep(0.2)
            assert int(watcher.sentinel_get_master_addr_by_name("sipsvc")[1]) == replica.port
        response, body = await api.call("GET", f"/v2/accounts/{account['id']}/devices/{device['id']}/registrations",
                                        token=account["token"])
        assert response.status == 200 and len(body["data"]) == 1, body
        await exercise(api)  # everything, pub/sub included, runs on the new master
        await api.client.close()
    finally:
        for server in (sentinel, replica, master):
            server.stop()


async def test_a_redis_password_is_never_in_the_store_description_or_errors(tmp_path):
    from sipsvc.store.connection import connect_url
    from sipsvc.store.errors import StoreUnavailableError

    master = redis_servers.Server(redis_servers.free_port(), tmp_path / "pw",
                                  ["--save", "", "--requirepass", "hunter2-secret"]).start()
    try:
        store = await connect_url(f"redis://:hunter2-secret@127.0.0.1:{master.port}/0")
        assert "hunter2" not in store.description and ":***@" in store.description
        await store.close()
        with pytest.raises(StoreUnavailableError) as raised:
            await connect_url("redis+sentinel://:hunter2-secret@127.0.0.1:1/sipsvc")
        assert str(raised.value) == ("cannot connect to redis+sentinel://:***@127.0.0.1:1/sipsvc: "
                                     "no Sentinel named a master for the service")
    finally:
        master.stop()
