"""The node relay (``sipsvc/store/relay.py``) on the real test Redis and on a real cluster: bytes of every value cross
unchanged, nodes see each other through their heartbeats, a node that stops cleanly is seen gone
within a heartbeat, and a message no node hears marks its node dead."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from sipsvc.store.connection import connect_url
from sipsvc.store.relay import DEAD_AFTER, HEARTBEAT, NodeRelay
from tests.integration import redis_servers


def node_id() -> str:
    return f"{secrets.randbelow(1 << 22)}.{secrets.token_hex(4)}"


async def until(condition, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.fixture(params=["plain", "cluster"])
def relay_redis_url(request, redis_url, tmp_path):
    """The shared test Redis, and a private three-node cluster (PUBLISH is broadcast there)."""
    if request.param == "plain":
        yield redis_url
        return
    servers = redis_servers.cluster(tmp_path / "cluster")
    try:
        yield "redis+cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in servers)
    finally:
        for server in servers:
            server.stop()


async def test_two_relays_exchange_bytes_and_see_each_other_come_and_go(relay_redis_url):
    store = await connect_url(relay_redis_url)
    client = store.redis
    first, second = NodeRelay(client), NodeRelay(client)
    got: list[bytes] = []
    try:
        await first.start(node_id(), lambda data: None)
        await second.start(node_id(), got.append)
        await until(lambda: first.alive(second.node), "the first relay to see the second", 2 * HEARTBEAT + 1)
        payload = bytes(range(256)) + b"\r\nINVITE sip:x SIP/2.0\r\n\xff\x00"
        await until(lambda: _post_and_check(first, second.node, payload, got), "the message", 5)
        assert got[0] == payload

        await second.stop()  # leaves the live set itself: seen gone within one heartbeat
        await until(lambda: not first.alive(second.node), "the stopped relay to be seen gone",
                    HEARTBEAT + 1)

        stranger = node_id()  # never beat, and nobody listens
        first.post(stranger, b"hello")
        await until(lambda: first.counters["relay_unheard"] >= 1, "an unheard message", 5)
        assert not first.alive(stranger)
        assert DEAD_AFTER > HEARTBEAT
    finally:
        await first.stop()
        await second.stop()
        await store.close()


def _post_and_check(relay: NodeRelay, node: str, payload: bytes, got: list[bytes]) -> bool:
    # The receiver subscribes in the background: post until one arrives (bounded by the caller).
    if not got:
        relay.post(node, payload)
    return bool(got)


async def test_a_request_in_a_dialog_of_a_dead_node_is_answered_here(api):
    """A BYE whose To tag names a node that is gone is not sent into the void: 481."""
    from sipsvc.sip.message import Request
    from tests.sipclient import SipClient

    async with SipClient(api.sip_address) as peer:
        host, port = peer.local
        bye = Request(method="BYE", uri="sip:sipsvc@127.0.0.1", headers=(
            ("Via", f"SIP/2.0/UDP {host}:{port};rport;branch=z9hG4bK-bye{secrets.token_hex(4)}"),
            ("Max-Forwards", "70"), ("From", "<sip:gw@127.0.0.1>;tag=gw1"),
            ("To", f"<sip:alice@127.0.0.1>;tag={node_id()}-0123456789ab"),
            ("Call-ID", f"{secrets.token_hex(6)}@gw"), ("CSeq", "2 BYE"),
        ))
        response = await peer.send(bye, timeout=5)
        assert response.status == 481
