"""Transport rules over real sockets: size limits, idle TCP connections, CRLF keep-alives."""

from __future__ import annotations

import asyncio

import pytest

from tests.sipclient import SipClient


async def test_an_idle_tcp_connection_is_closed(make_api):
    api = await make_api(tcp_idle_timeout=0.5)
    reader, writer = await asyncio.open_connection(*api.sip_address)
    try:
        assert await asyncio.wait_for(reader.read(100), 3) == b""  # closed by the server
    finally:
        writer.close()


async def test_a_crlf_keepalive_gets_a_pong_and_keeps_the_connection(make_api):
    api = await make_api(tcp_idle_timeout=1.0)
    reader, writer = await asyncio.open_connection(*api.sip_address)
    try:
        for _ in range(3):
            await asyncio.sleep(0.6)  # each ping restarts the idle timer
            writer.write(b"\r\n\r\n")
            assert await asyncio.wait_for(reader.readexactly(2), 2) == b"\r\n"
    finally:
        writer.close()


async def test_a_tcp_message_over_the_limit_gets_413_and_the_connection_closes(make_api):
    api = await make_api(max_message_bytes=2048)
    async with SipClient(api.sip_address, "tcp") as client:
        request = client.register_request("x", "example.com", extra=[("X-Padding", "a" * 1000)] * 3)
        client.send_bytes(request.to_bytes())
        response = await client.receive()
        assert response.status == 413
        with pytest.raises(ConnectionError):
            await client.receive()


async def test_a_udp_datagram_over_the_limit_is_dropped(make_api):
    api = await make_api(max_message_bytes=2048)
    async with SipClient(api.sip_address) as client:
        request = client.register_request("x", "example.com", extra=[("X-Padding", "a" * 1000)] * 3)
        client.send_bytes(request.to_bytes())
        with pytest.raises(asyncio.TimeoutError):
            await client.receive(timeout=0.5)
        # A message within the limit is still answered.
        small = client.register_request("x", "nowhere.invalid")
        assert (await client.send(small)).status == 404


async def test_a_broken_stream_gets_400_and_is_closed(api):
    async with SipClient(api.sip_address, "tcp") as client:
        request = client.register_request("x", "example.com")
        client.send_bytes(request.to_bytes().replace(b"Content-Length: 0", b"Content-Length: -5"))
        response = await client.receive()
        assert response.status == 400
        with pytest.raises(ConnectionError):
            await client.receive()
