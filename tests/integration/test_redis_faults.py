"""Redis going away under traffic: a private redis-server (append-only, so what it acknowledged
survives its restart) is stopped while a phone keeps registering, then started again on the same
port. While it is gone every REGISTER is answered 503 with Retry-After (never 200), the API says
503 with a clear message, and the process stays up; once it is back both recover by themselves,
and every REGISTER that was answered 200 is really stored."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from dataclasses import replace

import orjson
import redis

from sipsvc.app import create_app
from sipsvc.store import keys
from tests.conftest import Api
from tests.integration import redis_servers
from tests.sipclient import SipClient

PASSWORD = "fault-pass-1"


async def test_redis_stopped_and_restarted_mid_traffic(aiohttp_client, config, tmp_path):
    server = redis_servers.plain(tmp_path / "redis").start()
    try:
        api = Api(await aiohttp_client(create_app(replace(config, redis_url=server.url, max_contacts=1000))))
        account = await api.new_account()
        device = await api.new_device(account, {"name": "alice", "sip": {"username": "alice", "password": PASSWORD}})
        device_path = f"/v2/accounts/{account['id']}/devices/{device['id']}"
        answers: list[tuple[float, int, str | None, str]] = []  # (when, status, Retry-After, contact)
        stop = asyncio.Event()

        async def phone() -> None:
            async with SipClient(api.sip_address) as client:
                for n in range(2000):  # bounded; ends when told
                    if stop.is_set():
                        return
                    contact = f"<sip:alice@127.0.0.1:{20000 + n};transport=udp>"
                    response = await client.register("alice", PASSWORD, account["realm"], contacts=[contact])
                    answers.append((time.monotonic(), response.status, response.header("Retry-After"), contact))
                    await asyncio.sleep(0.02)

        traffic = asyncio.get_running_loop().create_task(phone())
        try:
            await _until(lambda: sum(1 for a in answers if a[1] == 200) >= 5, "no REGISTER succeeded")
            server.stop()
            stopped = time.monotonic()
            await _until(lambda: any(a[1] == 503 for a in answers), "no 503 while Redis was down")
            response, body = await api.call("GET", device_path, token=account["token"])
            assert response.status == 503
            assert body["error"] == "503" and body["message"] == "datastore_unreachable"
            assert body["data"]["message"] == "the data store is unreachable; try again shortly"
            assert (await api.client.get("/healthz")).status == 200  # the process itself is fine
            assert (await api.client.get("/readyz")).status == 503
            await asyncio.sleep(1.0)  # more REGISTERs meet the outage
            server.start()
            restarted = time.monotonic()
            await _until(lambda: any(a[1] == 200 and a[0] > restarted for a in answers),
                         "REGISTER did not recover after Redis came back", timeout=15)
            response, body = await api.call("GET", device_path, token=account["token"])
            assert response.status == 200, body
        finally:
            stop.set()
            await asyncio.wait_for(traffic, 10)
        statuses = {a[1] for a in answers}
        assert statuses == {200, 503}, statuses
        during = [a for a in answers if stopped < a[0] < restarted]
        assert during and all(a[1] == 503 for a in during), during  # never a 200 while down
        assert all(a[2] is not None and int(a[2]) > 0 for a in answers if a[1] == 503)
        # Every acknowledged REGISTER is in Redis.
        client = redis.Redis(port=server.port, decode_responses=True)
        try:
            stored = {orjson.loads(v)["contact"] for v in
                      client.hvals(keys.bindings(account["id"], device["id"]))}
        finally:
            client.close()
        acknowledged = {a[3].strip("<>") for a in answers if a[1] == 200}
        assert acknowledged and {c.partition(";")[0] for c in acknowledged} <= {
            s.strip("<>").partition(";")[0] for s in stored}, (acknowledged, stored)
    finally:
        server.stop()


async def _until(condition, message: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        await asyncio.sleep(0.02)


async def test_a_redis_that_stops_answering_gets_503_after_the_command_timeout(aiohttp_client, config, tmp_path):
    """Paused (as a network cut would leave it): connections stay open but nothing answers. A
    REGISTER is answered 503 once the command times out instead of waiting for Redis, the API
    too, and both work again once Redis answers."""
    from sipsvc.store.connection import COMMAND_TIMEOUT

    server = redis_servers.plain(tmp_path / "redis").start()
    try:
        api = Api(await aiohttp_client(create_app(replace(config, redis_url=server.url))))
        account = await api.new_account()
        device = await api.new_device(account, {"name": "bob", "sip": {"username": "bob", "password": PASSWORD}})
        async with SipClient(api.sip_address) as phone:
            assert (await phone.register("bob", PASSWORD, account["realm"])).status == 200
            challenge = await phone.send(phone.register_request("bob", account["realm"]))
            authorization = phone.answer(challenge, "bob", PASSWORD, f"sip:{account['realm']}")
            os.kill(server.process.pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                response = await phone.send(phone.register_request("bob", account["realm"],
                                                                   authorization=authorization),
                                            timeout=COMMAND_TIMEOUT + 5)
                assert response.status == 503 and response.header("Retry-After")
                assert time.monotonic() - started < COMMAND_TIMEOUT + 3
                response, body = await api.call("GET", f"/v2/accounts/{account['id']}/devices/{device['id']}",
                                                token=account["token"])
                assert response.status == 503 and body["message"] == "datastore_unreachable"
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
            assert (await phone.register("bob", PASSWORD, account["realm"])).status == 200
            response, _ = await api.call("GET", f"/v2/accounts/{account['id']}/devices/{device['id']}",
                                         token=account["token"])
            assert response.status == 200
    finally:
        server.stop()


def test_a_killed_service_keeps_every_acknowledged_registration(tmp_path):
    """The embedded store (append-only, fsync every second, flushed by its server when sipsvc
    dies): REGISTERs answered 200 right before a SIGKILL are all there after the restart."""
    from tests.conftest import free_port
    from tests.integration.test_serve import Service

    sip = free_port()
    service = Service(tmp_path, "--sip", f"127.0.0.1:{sip}")
    status, account = service.request("PUT", "/v2/accounts", {"name": "Acme", "realm": "kill.sip.test"})
    assert status == 201
    account_id = account["data"]["id"]
    device_ids = []
    for i in range(5):
        status, body = service.request("PUT", f"/v2/accounts/{account_id}/devices",
                                       {"name": f"p{i}", "sip": {"username": f"p{i}", "password": PASSWORD}})
        assert status == 201
        device_ids.append(body["data"]["id"])

    async def register_all() -> None:
        for i in range(5):
            async with SipClient(("127.0.0.1", sip)) as phone:
                assert (await phone.register(f"p{i}", PASSWORD, "kill.sip.test", expires=3600)).status == 200

    asyncio.run(register_all())
    service.stop(signal.SIGKILL)  # at once after the last 200
    restarted = Service(tmp_path, "--sip", f"127.0.0.1:{sip}")
    status, body = restarted.request("GET", f"/v2/accounts/{account_id}/devices/status")
    assert status == 200
    assert sorted(row["device_id"] for row in body["data"]) == sorted(device_ids)
    assert restarted.stop()[0] == 0
