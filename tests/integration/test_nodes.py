"""Several nodes: two ``sipsvc serve`` processes (different SIP and HTTP ports, different data
directories, so not sibling workers) sharing one Redis act as one service. A SIPp phone
registered over TCP to node A gets the check-sync NOTIFY asked for through node B's API (the
request crosses over Redis pub/sub, the phone's answer comes back the same way); once node A is
killed its TCP binding is reported unreachable within seconds, and node B keeps working."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp

from sipsvc.store.relay import DEAD_AFTER, HEARTBEAT
from tests.conftest import ADMIN_TOKEN, free_port
from tests.integration.sipp_phones import SippPhones, wait_registered
from tests.integration.test_sync import PASSWORD, new_phone_device, sync_path
from tests.integration.test_workers import _ProcessApi

SETTINGS = {"SIPSVC_T1": "0.05", "SIPSVC_DIGEST_ALGORITHMS": "MD5,SHA-256"}


def wait_for_api(http: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while True:  # the API answers (404) once the node is up
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/accounts/x", timeout=2)
        except urllib.error.HTTPError:
            return
        except urllib.error.URLError:
            assert process.poll() is None, "the node exited"
            assert time.monotonic() < deadline, "the node did not start"
            time.sleep(0.05)


@contextlib.contextmanager
def node(redis_url: str, data_dir: Path, **env: str):
    """One ``sipsvc serve`` process; yields (process, http port, sip port)."""
    http, sip = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sipsvc", "serve", "--redis-url", redis_url, "--data-dir", str(data_dir),
         "--http", f"127.0.0.1:{http}", "--sip", f"127.0.0.1:{sip}"],
        env={**os.environ, "SIPSVC_ADMIN_TOKEN": ADMIN_TOKEN, **SETTINGS, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for_api(http, process)
        yield process, http, sip
    finally:
        if process.poll() is None:
            process.terminate()
        process.communicate(timeout=20)


async def test_a_tcp_phone_on_node_a_is_synced_through_node_b_and_reported_unreachable_when_a_dies(
        redis_url, tmp_path):
    with node(redis_url, tmp_path / "a") as (process_a, http_a, sip_a), \
            node(redis_url, tmp_path / "b") as (_, http_b, sip_b):
        async with aiohttp.ClientSession(f"http://127.0.0.1:{http_b}") as session:
            api_b = _ProcessApi(session, sip_b)
            account = await api_b.new_account()
            on_a = await new_phone_device(api_b, account, "tcpa")
            on_b = await new_phone_device(api_b, account, "udpb")
            async with SippPhones(tmp_path, ("127.0.0.1", sip_a), account["realm"], [("tcpa", PASSWORD)],
                                  transport="t1") as phone_a, \
                    SippPhones(tmp_path, ("127.0.0.1", sip_b), account["realm"], [("udpb", PASSWORD)]) as phone_b:
                await wait_registered(api_b, account, [on_a["id"], on_b["id"]])
                for attempt in range(3):
                    response, body = await api_b.call("POST", sync_path(account, on_a), token=account["token"],
                                                      params={"wait": "true"})
                    assert response.status == 200, body
                    assert [(o["transport"], o["status"]) for o in body["data"]] == [("tcp", 200)], body
                response, body = await api_b.call(
                    "GET", f"/v2/accounts/{account['id']}/devices/{on_a['id']}/registrations",
                    token=account["token"])
                assert [(r["transport"], r["reachable"]) for r in body["data"]] == [("tcp", True)], body
                assert len(phone_a.received()) == 3
                # Node B published the NOTIFYs to node A (and A the answers back), as counted.
                async with session.get("/metrics") as scrape:
                    text = await scrape.text()
                relayed = [line for line in text.splitlines()
                           if line.startswith('sipsvc_sip_events_total{event="relayed"}')]
                assert relayed and float(relayed[0].split()[-1]) >= 3, relayed
                notify = phone_a.received()[0]
                assert notify.header("Event") == "check-sync"

                # Node A dies: its TCP binding is reported unreachable promptly, not timed out.
                process_a.send_signal(signal.SIGKILL)
                process_a.wait(10)
                killed = time.monotonic()
                while True:
                    response, body = await api_b.call("POST", sync_path(account, on_a), token=account["token"],
                                                      params={"wait": "true"})
                    if response.status == 409:
                        break
                    assert response.status == 200, body
                    assert time.monotonic() - killed < DEAD_AFTER + 2 * HEARTBEAT + 4, body
                assert body["message"] == "device not registered"
                _, listing = await api_b.call(
                    "GET", f"/v2/accounts/{account['id']}/devices/{on_a['id']}/registrations",
                    token=account["token"])
                assert [(r["transport"], r["reachable"]) for r in listing["data"]] == [("tcp", False)], listing
                assert "closed" in body["data"]["message"]
                assert time.monotonic() - killed < DEAD_AFTER + 2 * HEARTBEAT + 4

                # Node B keeps working: its own phone is synced, the status still lists both.
                response, body = await api_b.call("POST", sync_path(account, on_b), token=account["token"],
                                                  params={"wait": "true"})
                assert response.status == 200, body
                assert [(o["transport"], o["status"]) for o in body["data"]] == [("udp", 200)]
                assert len(phone_b.received()) == 1


async def test_a_quickcall_through_node_b_rings_a_tcp_phone_held_by_node_a(redis_url, tmp_path):
    """The INVITE, its answers, the ACK and the REFER of a quickcall placed through node B all
    cross to and from the TCP connection node A holds."""
    from tests.integration.test_quickcall_call import SippGateway

    gateway_port = free_port()
    gateway = {"SIPSVC_QUICKCALL_GATEWAY": f"sip:127.0.0.1:{gateway_port}"}
    with node(redis_url, tmp_path / "a", **gateway) as (_, _, sip_a), \
            node(redis_url, tmp_path / "b", **gateway) as (_, http_b, sip_b):
        async with aiohttp.ClientSession(f"http://127.0.0.1:{http_b}") as session:
            api_b = _ProcessApi(session, sip_b)
            account = await api_b.new_account()
            device = await new_phone_device(api_b, account, "alice")
            async with SippPhones(tmp_path, ("127.0.0.1", sip_a), account["realm"], [("alice", PASSWORD)],
                                  uas="uas-quickcall-phone-answer.xml", transport="t1"):
                await wait_registered(api_b, account, [device["id"]])
                async with SippGateway(tmp_path, "uas-quickcall-gateway-answer-then-bye.xml",
                                       port=gateway_port) as sipp_gateway:
                    response, body = await api_b.call(
                        "POST", f"/v2/accounts/{account['id']}/devices/{device['id']}/quickcall/100",
                        token=account["token"], params={"wait": "true"})
                    assert response.status == 200 and body["data"]["call"]["outcome"] == "answered", body
                    code, log = await sipp_gateway.finish()
                    assert code == 0, log
