"""The node relay (``sipsvc/store/relay.py``) on the real test Redis: bytes of every value cross
unchanged, nodes see each other through their heartbeats, a node that stops cleanly is seen gone
within a heartbeat, and a message no node hears marks its node dead."""

from __future__ import annotations

import asyncio
import secrets
import time

import redis.asyncio as aioredis

from sipsvc.store.relay import DEAD_AFTER, HEARTBEAT, NodeRelay


def node_id() -> str:
    return f"{secrets.randbelow(1 << 22)}.{secrets.token_hex(4)}"


async def until(condition, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_two_relays_exchange_bytes_and_see_each_other_come_and_go(redis_url):
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
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
        await client.aclose()


def _post_and_check(relay: NodeRelay, node: str, payload: bytes, got: list[bytes]) -> bool:
    # The receiver subscribes in the background: post until one arrives (bounded by the caller).
    if not got:
        relay.post(node, payload)
    return bool(got)
