"""``sipsvc serve --workers 2``: one busy UDP peer (a single socket, as a proxy or SIPp ``-t u1``
would be) is served by both workers, and a retransmission still reaches the transaction that
answered its original (the same response, byte for byte)."""

from __future__ import annotations

import collections
import contextlib
import os
import select
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp

from sipsvc.transport.spread import spread_by_payload
from tests.conftest import ADMIN_TOKEN, Api, free_port
from tests.integration.sipp_phones import SippPhones, wait_for, wait_registered
from tests.integration.test_quickcall_call import SippGateway
from tests.integration.test_sync import PASSWORD, new_phone_device, sync_path

REQUESTS = 600


def _options(port: int, branch: str) -> bytes:
    return (f"OPTIONS sip:workers.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK-{branch}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:probe@workers.test>;tag=p\r\nTo: <sip:workers.test>\r\n"
            f"Call-ID: {branch}@probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()


def _wakeups(pid: int) -> int:
    """How often the process woke from waiting: an idle worker a few times a second, a worker
    fed one datagram at a time about once for every two (uvloop often finds the next one
    already there)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    raise AssertionError(f"no voluntary_ctxt_switches in /proc/{pid}/status")


def _workers(supervisor: int, count: int) -> list[int]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
        if len(children) == count:
            return [int(pid) for pid in children]
        time.sleep(0.05)
    raise AssertionError(f"{count} workers did not start")


@contextlib.contextmanager
def _two_workers(redis_url: str, tmp_path: Path, **env: str):
    """``sipsvc serve --workers 2``; yields (supervisor pid, worker pids, http port, sip port)."""
    http, sip = free_port(), free_port()
    service = subprocess.Popen(
        [sys.executable, "-m", "sipsvc", "serve", "--workers", "2", "--redis-url", redis_url,
         "--data-dir", str(tmp_path), "--http", f"127.0.0.1:{http}", "--sip", f"127.0.0.1:{sip}"],
        env={**os.environ, "SIPSVC_ADMIN_TOKEN": ADMIN_TOKEN, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        workers = _workers(service.pid, 2)
        deadline = time.monotonic() + 20
        while True:  # the API answers (404) once a worker is up
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/accounts/x", timeout=2)
            except urllib.error.HTTPError:
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline, "workers did not start"
                time.sleep(0.05)
        time.sleep(0.5)  # let both finish binding their SIP sockets
        yield service.pid, workers, http, sip
    finally:
        service.terminate()
        _, stderr = service.communicate(timeout=20)
    assert service.returncode == 0, stderr


def test_one_peer_spreads_over_both_workers_and_retransmissions_stay_with_their_transaction(redis_url, tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer, \
            _two_workers(redis_url, tmp_path) as (_, workers, _, sip):
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(5)
        before = [_wakeups(pid) for pid in workers]
        for i in range(REQUESTS):
            request = _options(peer.getsockname()[1], f"w{i}")
            answers = []
            for _ in range(2):  # the original, then a retransmission
                peer.sendto(request, ("127.0.0.1", sip))
                answers.append(peer.recv(65536))
            assert answers[0].startswith(b"SIP/2.0 200 "), answers[0][:80]
            assert answers[1] == answers[0], "a retransmission reached another transaction"
        handled = [_wakeups(pid) - start for pid, start in zip(workers, before)]
        # 1,200 datagrams, one at a time. With the kernel's address hash one worker got them
        # all ([3, 526] wake-ups when tried); spread by payload, each gets about half.
        assert sum(handled) >= REQUESTS // 3, handled
        assert min(handled) >= sum(handled) // 4, handled


class _ProcessApi(Api):
    """The ``Api`` helpers against a real server process."""

    def __init__(self, session: aiohttp.ClientSession, sip: int) -> None:
        super().__init__(session)
        self._sip = sip

    @property
    def sip_address(self) -> tuple[str, int]:
        return ("127.0.0.1", self._sip)


async def test_check_sync_answers_reach_the_worker_that_asked_over_udp_and_tcp(redis_url, tmp_path):
    """The phone's answer to a NOTIFY lands on either worker, and a TCP phone's connection is
    held by one of them; each sync still gets its phone's real answer from both workers."""
    settings = {"SIPSVC_T1": "0.05", "SIPSVC_DIGEST_ALGORITHMS": "MD5,SHA-256"}
    with _two_workers(redis_url, tmp_path, **settings) as (_, _, http, sip):
        # A new connection per request, so the kernel spreads the API calls over the workers.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{http}", connector=connector) as session:
            api = _ProcessApi(session, sip)
            account = await api.new_account()
            devices = [await new_phone_device(api, account, name) for name in ("udp", "tcp")]
            async with SippPhones(tmp_path, api.sip_address, account["realm"], [("udp", PASSWORD)]), \
                    SippPhones(tmp_path, api.sip_address, account["realm"], [("tcp", PASSWORD)], transport="t1"):
                await wait_registered(api, account, [device["id"] for device in devices])
                outcomes = []
                for _ in range(8):
                    for device in devices:
                        response, body = await api.call("POST", sync_path(account, device),
                                                        token=account["token"], params={"wait": "true"})
                        assert response.status == 200, body
                        outcomes += [(entry["transport"], entry["status"]) for entry in body["data"]]
    assert outcomes == [("udp", 200), ("tcp", 200)] * 8


def test_the_spread_program_keeps_copies_together_and_spreads_different_datagrams():
    """The kernel runs the program on each datagram: byte-identical copies always reach the
    same socket of the group, different requests reach both, a short datagram still works."""
    first = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    second = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    group = [first, second]
    try:
        for sock in group:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.setblocking(False)
        first.bind(("127.0.0.1", 0))
        second.bind(first.getsockname())
        assert spread_by_payload(first, 2)

        def receiver(payload: bytes) -> int:
            client.sendto(payload, first.getsockname())
            ready, _, _ = select.select(group, [], [], 2)
            assert len(ready) == 1, "one datagram, one socket"
            ready[0].recv(65536)
            return group.index(ready[0])

        seen = collections.Counter()
        for i in range(200):
            payload = _options(5060, f"spread-{i}")
            chosen = receiver(payload)
            seen[chosen] += 1
            assert all(receiver(payload) == chosen for _ in range(3)), "copies split up"
        assert min(seen.values()) >= 50, seen
        receiver(b"\r\n\r\n")  # a keep-alive is shorter than the hashed bytes: still delivered
    finally:
        for sock in (*group, client):
            sock.close()


async def test_a_bye_reaching_either_worker_ends_the_quickcall_its_sibling_holds(redis_url, tmp_path):
    """The gateway's BYE lands on whichever worker its bytes hash to; the worker holding the call
    (named in the dialog's tag) must get it and answer 200, never 481."""
    gateway_port = free_port()
    settings = {"SIPSVC_T1": "0.05", "SIPSVC_DIGEST_ALGORITHMS": "MD5,SHA-256",
                "SIPSVC_QUICKCALL_GATEWAY": f"sip:127.0.0.1:{gateway_port}"}
    with _two_workers(redis_url, tmp_path, **settings) as (_, _, http, sip):
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{http}", connector=connector) as session:
            api = _ProcessApi(session, sip)
            account = await api.new_account()
            device = await new_phone_device(api, account, "alice")
            async with SippPhones(tmp_path, api.sip_address, account["realm"], [("alice", PASSWORD)],
                                  uas="uas-quickcall-phone-answer.xml") as phone:
                await wait_registered(api, account, [device["id"]])
                for call in range(4):  # each BYE reaches the holder by chance with probability 1/2
                    async with SippGateway(tmp_path, "uas-quickcall-gateway-answer-then-bye.xml",
                                           port=gateway_port) as gateway:
                        response, body = await api.call(
                            "POST", f"/v2/accounts/{account['id']}/devices/{device['id']}/quickcall/{100 + call}",
                            token=account["token"], params={"wait": "true"})
                        assert response.status == 200 and body["data"]["call"]["outcome"] == "answered", body
                        code, log = await gateway.finish()
                        assert code == 0, log  # its BYE was answered 200, not 481
                    await wait_for(lambda: len(phone.received("BYE")) > call, what="the phone's BYE")
