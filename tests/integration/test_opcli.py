"""The operator commands against ``sipsvc serve`` (a real process, real Redis), run as an
operator runs them (``python -m sipsvc ...``), with real phones registering over SIP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from sipsvc.sip.message import Request
from sipsvc.sip.uas import make_response
from tests.conftest import free_port
from tests.live import ADMIN, LiveServer
from tests.sipclient import SipClient

PASSWORD = "secret123"


@pytest.fixture(scope="module")
def live(redis_url):
    server = LiveServer(redis_url)
    yield server
    returncode, stderr = server.stop()
    assert returncode == 0, stderr


def sipsvc(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SIPSVC_")}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "sipsvc", *args], env=environment,
                          capture_output=True, text=True, timeout=60)


async def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """The command in a thread: the event loop keeps serving the test's SIP phones."""
    return await asyncio.to_thread(sipsvc, *args, **kwargs)


def as_operator(live: LiveServer, account: dict) -> dict:
    return {"SIPSVC_API": live.base, "SIPSVC_API_KEY": account["api_key"]}


def lines_of(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip()]


async def test_accounts_create_prints_the_account_and_how_to_use_it(live):
    realm = f"{os.urandom(4).hex()}.sip.test"
    done = await run("accounts", "create", "Acme", realm, "--api", live.base, "--token", ADMIN, "--json")
    assert done.returncode == 0, done.stderr
    account = json.loads(done.stdout)
    assert account["name"] == "Acme" and account["realm"] == realm and len(account["api_key"]) > 20
    done = await run("accounts", "create", "Beta", f"b{realm}", env={"SIPSVC_API": live.base, "SIPSVC_TOKEN": ADMIN})
    assert done.returncode == 0, done.stderr
    assert ["realm", f"b{realm}"] in lines_of(done.stdout)
    assert "export SIPSVC_ACCOUNT=" in done.stdout and "SIPSVC_API_KEY=" in done.stdout


async def test_devices_list_and_show_as_tables_and_json(live):
    account = live.new_account()
    alice = live.new_device(account, {"name": "Alice", "sip": {"username": "alice", "password": PASSWORD},
                                      "mac_address": "00:04:f2:ab:7e:fd"})
    live.new_device(account, {"name": "Lobby"})
    env = as_operator(live, account)
    async with SipClient(("127.0.0.1", live.sip_port)) as phone:
        assert (await phone.register("alice", PASSWORD, account["realm"])).status == 200
        done = await run("devices", "list", "--status", env=env)
        assert done.returncode == 0, done.stderr
        header, *rows = lines_of(done.stdout)
        assert header == ["ID", "NAME", "USERNAME", "ENABLED", "MAC", "REGISTERED"]
        assert sorted(row[1:] for row in rows) == [["Alice", "alice", "yes", "00:04:f2:ab:7e:fd", "yes"],
                                                   ["Lobby", "-", "yes", "-", "no"]]
        assert alice["id"] in {row[0] for row in rows}
        done = await run("devices", "list", "--json", env=env)
        assert sorted(r["name"] for r in json.loads(done.stdout)) == ["Alice", "Lobby"]

        done = await run("devices", "show", "alice", env=env)  # by SIP username
        assert done.returncode == 0, done.stderr
        assert ["sip.username", "alice"] in lines_of(done.stdout)
        assert "registrations (1):" in done.stdout and f"127.0.0.1:{phone.local[1]}" in done.stdout
        shown = json.loads((await run("devices", "show", alice["id"], "--json", env=env)).stdout)
        assert shown["device"]["id"] == alice["id"] and len(shown["registrations"]) == 1


async def test_registrations_lists_each_binding(live):
    account = live.new_account()
    alice = live.new_device(account, {"name": "Alice", "sip": {"username": "alice", "password": PASSWORD}})
    env = as_operator(live, account)
    done = await run("registrations", env=env)
    assert (done.returncode, done.stdout.strip()) == (0, "(no registrations)")
    async with SipClient(("127.0.0.1", live.sip_port)) as phone:
        assert (await phone.register("alice", PASSWORD, account["realm"])).status == 200
        done = await run("registrations", env=env)
        header, row = lines_of(done.stdout)
        assert header[:4] == ["DEVICE", "NAME", "CONTACT", "SOURCE"]
        assert row[:2] == [alice["id"], "Alice"] and row[3] == f"127.0.0.1:{phone.local[1]}"
        (binding,) = json.loads((await run("registrations", "--json", env=env)).stdout)
        assert binding["device_id"] == alice["id"] and 290 < binding["expires_in"] <= 300


async def test_registrations_watch_prints_changes_as_they_happen(live):
    account = live.new_account()
    live.new_device(account, {"name": "Alice", "sip": {"username": "alice", "password": PASSWORD}})
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SIPSVC_")}
    watcher = subprocess.Popen([sys.executable, "-m", "sipsvc", "registrations", "--watch"],
                               env={**environment, **as_operator(live, account)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        async def line() -> str:
            return await asyncio.wait_for(asyncio.to_thread(watcher.stdout.readline), 10)

        assert (await line()).strip() == "(no registrations)"
        while "watching for changes" not in await line():
            pass
        async with SipClient(("127.0.0.1", live.sip_port)) as phone:
            assert (await phone.register("alice", PASSWORD, account["realm"])).status == 200
            registered = (await line()).split()
            assert registered[1:3] == ["register", "Alice"] and registered[-3:-1] == ["in", "300"]
            assert (await phone.register("alice", PASSWORD, account["realm"], expires=0)).status == 200
            assert (await line()).split()[1:3] == ["unregister", "Alice"]
    finally:
        watcher.send_signal(signal.SIGINT)
        _, stderr = watcher.communicate(timeout=10)
    assert watcher.returncode == 0, stderr


async def test_sync_a_registered_phone_and_wait_for_its_answer(live):
    account = live.new_account()
    live.new_device(account, {"name": "Alice", "sip": {"username": "alice", "password": PASSWORD}})
    env = as_operator(live, account)
    async with SipClient(("127.0.0.1", live.sip_port)) as phone:
        assert (await phone.register("alice", PASSWORD, account["realm"])).status == 200

        async def answer_notify() -> Request:
            notify = await phone.receive(timeout=10)
            phone.send_bytes(make_response(notify, 200).to_bytes())
            return notify

        answering = asyncio.create_task(answer_notify())
        done = await run("sync", "Alice", "--reboot", "--wait", env=env)  # by name
        notify = await answering
        assert done.returncode == 0, done.stderr
        assert notify.header("Event") == "check-sync;reboot=true"
        header, row = lines_of(done.stdout)
        assert header == ["CONTACT", "TRANSPORT", "ANSWER", "ELAPSED"]
        assert row[1:3] == ["udp", "200"]


async def test_errors_are_explained_with_an_exit_status(live):
    account = live.new_account()
    device = live.new_device(account, {"name": "Idle", "sip": {"username": "idle", "password": PASSWORD}})
    env = as_operator(live, account)
    done = await run("sync", device["id"], env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("sipsvc: error: HTTP 409 device not registered: the device has no current registration")
    done = await run("devices", "list", env={"SIPSVC_API": live.base, "SIPSVC_TOKEN": "wrong", "SIPSVC_ACCOUNT": account["id"]})
    assert done.returncode == 1 and "HTTP 401 invalid_credentials" in done.stderr and "API key" in done.stderr
    done = await run("accounts", "create", "Bad", "no spaces allowed", env={"SIPSVC_API": live.base, "SIPSVC_TOKEN": ADMIN})
    assert done.returncode == 1 and "HTTP 400 validation error" in done.stderr
    assert "\n  realm: " in done.stderr
    done = await run("devices", "show", "nobody", env=env)
    assert (done.returncode, done.stderr.strip()) == (2, "sipsvc: error: no device has the id, SIP username or name 'nobody'")
    done = await run("devices", "list", env={"SIPSVC_API": live.base, "SIPSVC_TOKEN": ADMIN})
    assert done.returncode == 2 and "SIPSVC_ACCOUNT" in done.stderr
    done = await run("devices", "list", env={"SIPSVC_API": f"http://127.0.0.1:{free_port()}", "SIPSVC_TOKEN": "t",
                                             "SIPSVC_ACCOUNT": account["id"]})
    assert done.returncode == 3 and "connection refused" in done.stderr and "sipsvc serve" in done.stderr


async def test_quickcall_dry_run_shows_the_originate_payload(live):
    account = live.new_account()
    live.new_device(account, {"name": "Desk", "sip": {"username": "desk", "password": PASSWORD}})
    env = as_operator(live, account)
    done = await run("quickcall", "desk", "+14158867900", "--dry-run", "-o", "timeout=20", env=env)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["application_name"] == "transfer" and payload["timeout"] == 20
    done = await run("quickcall", "desk", "+14158867900", "--dry-run", "-o", "timeout=2", env=env)
    assert done.returncode == 1  # the API's validation errors, one line each
    assert "\n  timeout: query option timeout must be at least 3 (minimum)" in done.stderr
    started = time.monotonic()
    done = await run("quickcall", "desk", "+14158867900", env=env)
    # This server has no quickcall.gateway: placing the call is refused, and the error says why.
    assert done.returncode == 1
    assert "quickcall gateway not configured" in done.stderr and "quickcall.gateway" in done.stderr
    assert time.monotonic() - started < 30


async def test_bans_list_and_lift(live):
    """A guesser (its own loopback address) trips the live server's default per-username ban."""
    account = live.new_account()
    live.new_device(account, {"name": "alice", "sip": {"username": "alice", "password": PASSWORD}})
    a, b, c = os.urandom(3)
    guesser = f"127.{100 + a % 150}.{b}.{1 + c % 250}"
    for attempt in range(5):
        async with SipClient(("127.0.0.1", live.sip_port), bind=guesser) as client:
            assert (await client.register("alice", f"guess-{attempt}", account["realm"])).status == 403
    operator = as_operator(live, account)
    done = await run("bans", "list", env=operator)
    assert done.returncode == 0, done.stderr
    header, row = lines_of(done.stdout)
    assert header[:5] == ["ID", "SCOPE", "SOURCE", "USERNAME", "FAILURES"]
    assert row[1:5] == ["user", guesser, "alice", "5"]
    done = await run("bans", "list", "--all", "--json", env={"SIPSVC_API": live.base, "SIPSVC_TOKEN": ADMIN})
    assert done.returncode == 0, done.stderr
    assert row[0] in [ban["id"] for ban in json.loads(done.stdout)]
    done = await run("bans", "lift", row[0], env=operator)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"lifted ban {row[0]}: username alice from {guesser}"
    done = await run("bans", "list", env=operator)
    assert done.stdout.strip() == "(no bans)"
    async with SipClient(("127.0.0.1", live.sip_port), bind=guesser) as client:
        assert (await client.register("alice", PASSWORD, account["realm"])).status == 200
