"""Graceful shutdown of a real ``sipsvc serve``: on SIGTERM it refuses new SIP TCP and HTTP
connections at once, still answers the REGISTERs in progress (over UDP and over an open TCP
connection), then closes its TCP connections and exits 0. The REGISTERs are held in progress by
pausing the service's private Redis (SIGSTOP) until after the SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time

import aiohttp

from tests.integration import redis_servers
from tests.integration.test_nodes import node
from tests.integration.test_workers import _ProcessApi
from tests.sipclient import SipClient

PASSWORD = "shutdown-pass-1"


def refused(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) != 0


async def test_sigterm_answers_registers_in_progress_and_refuses_new_connections(tmp_path):
    redis = redis_servers.plain(tmp_path / "redis").start()
    try:
        with node(redis.url, tmp_path / "node") as (process, http, sip):
            async with aiohttp.ClientSession(f"http://127.0.0.1:{http}") as session:
                api = _ProcessApi(session, sip)
                account = await api.new_account()
                for name in ("udp", "tcp"):
                    await api.new_device(account, {"name": name, "sip": {"username": name, "password": PASSWORD}})
            async with SipClient(("127.0.0.1", sip)) as udp, SipClient(("127.0.0.1", sip), "tcp") as tcp:
                requests = []
                for name, client in (("udp", udp), ("tcp", tcp)):
                    challenge = await client.send(client.register_request(name, account["realm"]))
                    assert challenge.status == 401
                    authorization = client.answer(challenge, name, PASSWORD, f"sip:{account['realm']}",
                                                  algorithm="SHA-256")
                    requests.append(client.register_request(name, account["realm"], authorization=authorization))
                os.kill(redis.process.pid, signal.SIGSTOP)
                try:
                    for client, request in zip((udp, tcp), requests):
                        client.send_bytes(request.to_bytes())
                    await asyncio.sleep(0.3)  # both are in progress, waiting for Redis
                    process.send_signal(signal.SIGTERM)
                    deadline = time.monotonic() + 5
                    while not (refused(sip) and refused(http)):
                        assert time.monotonic() < deadline, "new connections still accepted after SIGTERM"
                        await asyncio.sleep(0.05)
                    assert process.poll() is None  # still finishing what it had
                finally:
                    os.kill(redis.process.pid, signal.SIGCONT)
                for client in (udp, tcp):
                    response = await client.receive(timeout=5)
                    assert response.status == 200, response
                # Then the service closes the TCP connection itself and exits cleanly.
                try:
                    extra = await tcp.receive(timeout=10)
                    raise AssertionError(f"unexpected message after the answer: {extra}")
                except ConnectionError:
                    pass
            process.wait(15)
            assert process.returncode == 0, process.stderr.read()
    finally:
        redis.stop()
