"""``/healthz``, ``/readyz`` and ``/metrics`` against the real app, a real Redis (a private
server, so it can be paused and killed, and its counts are exact) and real SIP peers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from sipsvc.api.keys import SIP_ENDPOINT, SIP_LISTENERS
from sipsvc.sip.message import Request
from sipsvc.store import keys
from sipsvc.store.connection import redis_server_binary
from tests.conftest import Api, free_port
from tests.sipclient import SipClient

PASSWORD = "s3cret-pass"


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of this test's own: (url, process)."""
    port = free_port()
    process = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline and process.poll() is None, "redis-server did not start"
            time.sleep(0.05)
    client.close()
    yield url, process
    if process.poll() is None:
        os.kill(process.pid, signal.SIGCONT)
        process.terminate()
        process.wait(10)


@pytest.fixture
async def private_api(aiohttp_client, config, private_redis) -> Api:
    from sipsvc.app import create_app

    return Api(await aiohttp_client(create_app(replace(config, redis_url=private_redis[0], t1=0.05))))


async def scrape(api: Api) -> dict[tuple[str, frozenset], float]:
    response = await api.client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def registered_phone(api: Api, account: dict, username: str) -> dict:
    return await api.new_device(account, {"name": username, "sip": {"username": username, "password": PASSWORD}})


# -- health --------------------------------------------------------------------------------


async def test_healthz_and_readyz_answer_when_all_is_well(api):
    response = await api.client.get("/healthz")
    assert response.status == 200 and await response.json() == {"status": "ok"}
    response = await api.client.get("/readyz")
    assert response.status == 200
    assert await response.json() == {"status": "ready", "checks": {"redis": "ok", "sip": "ok"}}


async def test_readyz_is_503_with_the_reason_while_redis_is_paused_then_gone(private_api, private_redis):
    _, server = private_redis
    os.kill(server.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        response = await private_api.client.get("/readyz")
        body = await response.json()
        assert response.status == 503 and time.monotonic() - started < 3
        assert body["status"] == "unready"
        assert body["reason"] == "redis: no answer to PING within 1.0 s"
        assert body["checks"]["sip"] == "ok"
        healthz = await private_api.client.get("/healthz")
        assert healthz.status == 200  # the process itself is fine
    finally:
        os.kill(server.pid, signal.SIGCONT)
    assert (await private_api.client.get("/readyz")).status == 200

    server.terminate()
    server.wait(10)
    response = await private_api.client.get("/readyz")
    body = await response.json()
    assert response.status == 503 and body["reason"].startswith("redis: unreachable: ")
    # An API call fails with 503 too, and /metrics still answers (without the Redis gauge).
    response, _ = await private_api.call("GET", "/v2/accounts/0123456789abcdef0123456789abcdef")
    assert response.status == 503
    samples = await scrape(private_api)
    assert value(samples, "sipsvc_redis_errors_total", source="readyz") == 2
    assert value(samples, "sipsvc_redis_errors_total", source="api") == 1
    assert value(samples, "sipsvc_redis_errors_total", source="metrics") == 1
    assert not any(name == "sipsvc_registered_devices" for name, _ in samples)


async def test_readyz_is_503_when_the_sip_socket_is_closed(api):
    api.client.server.app[SIP_LISTENERS].udp.close()
    await asyncio.sleep(0)
    response = await api.client.get("/readyz")
    body = await response.json()
    assert response.status == 503
    assert body == {"status": "unready", "reason": "sip: UDP socket closed",
                    "checks": {"redis": "ok", "sip": "UDP socket closed"}}


# -- metrics -------------------------------------------------------------------------------


async def test_api_requests_are_counted_by_route_template_and_status(api):
    account = await api.new_account()
    base = f"/v2/accounts/{account['id']}/devices"
    for device_id in ("a" * 32, "b" * 32, "c" * 32):
        response, _ = await api.call("GET", f"{base}/{device_id}", token=account["token"])
        assert response.status == 404
    response, _ = await api.call("GET", base, token=account["token"])
    assert response.status == 200
    await api.client.get("/no/such/route")
    samples = await scrape(api)
    route = "/v2/accounts/{account_id}/devices/{device_id}"
    assert value(samples, "sipsvc_api_requests_total", method="GET", route=route, status="404") == 3
    assert value(samples, "sipsvc_api_requests_total", method="GET",
                 route="/v2/accounts/{account_id}/devices", status="200") == 1
    assert value(samples, "sipsvc_api_requests_total", method="PUT", route="/v2/accounts", status="201") == 1
    assert value(samples, "sipsvc_api_requests_total", method="GET", route="unmatched", status="404") == 1
    assert value(samples, "sipsvc_api_request_duration_seconds_count", method="GET", route=route) == 3
    assert value(samples, "sipsvc_api_request_duration_seconds_bucket", method="GET", route=route, le="+Inf") == 3
    # No raw URL (with its ids) ever becomes a label.
    assert not any(account["id"] in label for _, labels in samples for _, label in labels)


async def test_register_results_auth_failures_and_registered_devices(private_api):
    api = private_api
    assert value(await scrape(api), "sipsvc_registered_devices") == 0
    account = await api.new_account()
    await registered_phone(api, account, "alice")
    await registered_phone(api, account, "bob")
    async with SipClient(api.sip_address) as alice:
        assert (await alice.register("alice", PASSWORD, account["realm"])).status == 200
    async with SipClient(api.sip_address, "tcp") as bob:
        assert (await bob.register("bob", PASSWORD, account["realm"])).status == 200
        assert (await bob.register("bob", "wrong-password", account["realm"], call_id="other@x")).status == 403
    other = await api.new_account()
    await registered_phone(api, other, "carol")
    async with SipClient(api.sip_address) as carol:
        assert (await carol.register("carol", PASSWORD, other["realm"])).status == 200
    samples = await scrape(api)
    assert value(samples, "sipsvc_registered_devices") == 3  # over both accounts
    assert value(samples, "sipsvc_sip_register_responses_total", status="401") == 4
    assert value(samples, "sipsvc_sip_register_responses_total", status="200") == 3
    assert value(samples, "sipsvc_sip_register_responses_total", status="403") == 1
    assert value(samples, "sipsvc_sip_auth_failures_total") == 1
    assert value(samples, "sipsvc_sip_messages_received_total", kind="request") == 8


async def test_registered_devices_counts_accounts_made_before_the_index(private_api, private_redis):
    """Accounts created before ``account-ids`` existed are found once by a SCAN."""
    api = private_api
    account = await api.new_account()
    await registered_phone(api, account, "dave")
    async with SipClient(api.sip_address) as dave:
        assert (await dave.register("dave", PASSWORD, account["realm"])).status == 200
    assert value(await scrape(api), "sipsvc_registered_devices") == 1
    client = redis.Redis.from_url(private_redis[0], decode_responses=True)
    client.delete(keys.account_ids(), keys.account_ids_complete())
    assert value(await scrape(api), "sipsvc_registered_devices") == 1
    assert client.smembers(keys.account_ids()) == {account["id"]}
    client.close()


async def test_retransmissions_transactions_and_notify_results(private_api):
    """A phone that never answers its check-sync NOTIFY: Timer E re-sends it, Timer F ends it."""
    api = private_api
    account = await api.new_account()
    device = await registered_phone(api, account, "erin")
    async with SipClient(api.sip_address) as erin:
        request = erin.register_request("erin", account["realm"])
        erin.send_bytes(request.to_bytes())
        first = await erin.receive()
        erin.send_bytes(request.to_bytes())  # a retransmission: absorbed, answered again (Completed)
        assert first.status == 401 and (await erin.receive()).to_bytes() == first.to_bytes()
        assert (await erin.register("erin", PASSWORD, account["realm"])).status == 200
        sync = asyncio.ensure_future(api.call(
            "POST", f"/v2/accounts/{account['id']}/devices/{device['id']}/sync?wait=true",
            token=account["token"]))
        notifies = 0
        while notifies < 3:
            message = await erin.receive(2)
            notifies += isinstance(message, Request) and message.method == "NOTIFY"
        samples = await scrape(api)
        assert value(samples, "sipsvc_sip_transactions_in_flight") >= 1
        assert value(samples, "sipsvc_sip_retransmissions_total", direction="sent") >= 2
        response, body = await sync
    assert response.status == 200 and body["data"][0]["status"] == "timeout"
    await asyncio.sleep(64 * 0.05 + 0.2)  # Timer J of the REGISTERs (64*T1 over UDP)
    samples = await scrape(api)
    assert value(samples, "sipsvc_sip_retransmissions_total", direction="received") == 1
    assert value(samples, "sipsvc_sip_register_responses_total", status="401") == 2
    assert value(samples, "sipsvc_notify_results_total", status="timeout") == 1
    assert value(samples, "sipsvc_sip_transactions_in_flight") == 0
    assert value(samples, "sipsvc_sip_events_total", event="TransactionTimedOut") == 1
    layer = api.client.server.app[SIP_ENDPOINT].layer
    assert value(samples, "sipsvc_sip_retransmissions_total", direction="sent") == layer.retransmissions_sent


async def test_event_loop_lag_is_measured(api):
    time.sleep(0.8)  # hold the loop for longer than the measuring interval, as a slow callback would
    await asyncio.sleep(0.7)
    samples = await scrape(api)
    assert value(samples, "sipsvc_event_loop_lag_seconds_count") >= 1
    assert value(samples, "sipsvc_event_loop_lag_seconds_sum") >= 0.25
    assert value(samples, "sipsvc_event_loop_lag_seconds_bucket", le="0.1") < \
        value(samples, "sipsvc_event_loop_lag_seconds_bucket", le="+Inf")


def test_every_scrape_answers_for_all_workers(redis_url, tmp_path):
    """``--workers 2``: the kernel spreads connections over both workers, and whichever one a
    scrape reaches reports the requests of both (prometheus-client's multiprocess mode)."""
    import urllib.error
    import urllib.request

    from tests.integration.test_workers import _two_workers

    with _two_workers(redis_url, tmp_path) as (_, workers, http, _sip):
        path = "/v2/accounts/0123456789abcdef0123456789abcdef/devices"
        for _ in range(20):  # a new connection each time
            request = urllib.request.Request(f"http://127.0.0.1:{http}{path}",
                                             headers={"X-Auth-Token": "x"})
            with pytest.raises(urllib.error.HTTPError) as answer:
                urllib.request.urlopen(request, timeout=5)
            assert answer.value.code == 401
            answer.value.close()
        environ = dict(item.split("=", 1) for item in
                       Path(f"/proc/{workers[0]}/environ").read_text().split("\0") if "=" in item)
        metrics_dir = environ["PROMETHEUS_MULTIPROC_DIR"]
        assert {f"counter_{pid}.db" for pid in workers} <= set(os.listdir(metrics_dir))
        for _ in range(6):
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=5) as response:
                text = response.read().decode()
            samples = {(s.name, frozenset(s.labels.items())): s.value
                       for family in text_string_to_metric_families(text) for s in family.samples}
            assert value(samples, "sipsvc_api_requests_total", method="GET",
                         route="/v2/accounts/{account_id}/devices", status="401") == 20
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/readyz", timeout=5) as response:
            assert response.status == 200
