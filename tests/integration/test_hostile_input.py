"""Hostile SIP input over real UDP and TCP sockets against the running app (issue 6 items 1
and 6): each limit gets its refusal (400 with a reason, 414 for a long Request-URI, a drop that
is counted when there is no Via to answer), TCP floods and slow or greedy peers are cut off, and
phones keep registering all the while."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from sipsvc.app import SIP_ENDPOINT
from sipsvc.sip.message import Request
from sipsvc.sip.transaction import TimerConfig
from sipsvc.sip.uas import make_response
from sipsvc.transport.endpoint import SipEndpoint
from sipsvc.transport.listen import listen
from tests.sipclient import SipClient

PASSWORD = "hostile-secret-1"


def options(client: SipClient, *, before=(), extra=(), uri: str = "sip:example.com",
            vias: list[str] | None = None, to: str = "<sip:probe@example.com>") -> Request:
    host, port = client.local
    transport = client.transport.upper()
    top = f"SIP/2.0/{transport} {host}:{port};rport;branch=z9hG4bK{os.urandom(8).hex()}"
    headers = [*before, *(("Via", via) for via in (vias if vias is not None else [top])),
               ("Max-Forwards", "70"), ("From", f"<sip:probe@example.com>;tag={client.tag}"), ("To", to),
               ("Call-ID", f"{os.urandom(6).hex()}@hostile"), ("CSeq", "1 OPTIONS"), *extra]
    return Request(method="OPTIONS", uri=uri, headers=tuple(headers))


def counters(api) -> dict:
    return api.client.server.app[SIP_ENDPOINT].counters


async def phone(api):
    account = await api.new_account()
    await api.new_device(account, {"name": "alice", "sip": {"username": "alice", "password": PASSWORD}})
    return account


async def still_serving(api, account, *, tcp_source: str = "127.0.0.1") -> None:
    """A phone registers over UDP and an OPTIONS over a fresh TCP connection gets 200."""
    async with SipClient(api.sip_address) as client:
        assert (await client.register("alice", PASSWORD, account["realm"])).status == 200
    reader, writer = await asyncio.open_connection(*api.sip_address, local_addr=(tcp_source, 0))
    try:
        local = writer.get_extra_info("sockname")[:2]
        probe = SipClient(api.sip_address, "tcp")
        probe.local = local
        writer.write(options(probe).to_bytes())
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n"), 3)).startswith(b"SIP/2.0 200 ")
    finally:
        writer.close()


# -- parse limits, over UDP and TCP --------------------------------------------------------

# An authenticated REGISTER's Authorization line is some 450 characters long.
LIMITED = dict(max_headers=20, max_line_length=600, max_uri_length=100, max_vias=3)
# (request, status, reason, whether a TCP connection is closed: a head that does not parse
# leaves the stream untrusted; a parsed message that fails the request checks does not)
CASES = {
    "too many headers": (dict(extra=[("X-Fill", "1")] * 20), 400, "too many header lines", True),
    "a long header line": (dict(extra=[("X-Long", "a" * 700)]), 400, "header line too long", True),
    "a long Request-URI": (dict(uri="sip:" + "u" * 120 + "@example.com"), 414, "Request-URI too long", True),
    "a long URI in To": (dict(to="<sip:" + "t" * 120 + "@example.com>"), 400, "URI in To too long", False),
}


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("case", list(CASES))
async def test_a_message_over_a_limit_is_answered_with_the_reason(make_api, transport, case):
    api = await make_api(**LIMITED)
    account = await phone(api)
    changes, status, reason, closes = CASES[case]
    async with SipClient(api.sip_address, transport) as client:
        client.send_bytes(options(client, **changes).to_bytes())
        response = await client.receive()
        assert (response.status, response.reason) == (status, reason)
        if transport == "tcp" and closes:
            with pytest.raises(ConnectionError):
                await client.receive()
        else:  # the same socket is still answered
            assert (await client.send(options(client))).status == 200
    assert counters(api)["refused"] == 1
    await still_serving(api, account)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_too_many_vias_get_400(make_api, transport):
    api = await make_api(**LIMITED)
    async with SipClient(api.sip_address, transport) as client:
        host, port = client.local
        vias = [f"SIP/2.0/{transport.upper()} {host}:{port};rport;branch=z9hG4bKv{i}" for i in range(4)]
        client.send_bytes(options(client, vias=vias).to_bytes())
        response = await client.receive()
        assert (response.status, response.reason) == (400, "too many Via headers")
        assert len(response.values("Via")) == 4
        # Three are fine, on the same socket.
        assert (await client.send(options(client, vias=vias[:3]))).status == 200


async def test_over_a_limit_without_a_usable_via_is_dropped_and_counted(make_api):
    api = await make_api(**LIMITED)
    account = await phone(api)
    async with SipClient(api.sip_address) as client:
        for request in (options(client, before=[("X-Long", "a" * 700)]),  # before the Via
                        options(client, before=[("X-Fill", "1")] * 25)):  # Via past the header limit
            client.send_bytes(request.to_bytes())
        with pytest.raises(asyncio.TimeoutError):
            await client.receive(timeout=0.5)
    assert counters(api)["dropped"] == 2 and counters(api)["refused"] == 0
    await still_serving(api, account)


async def test_a_udp_flood_of_garbage_is_dropped_and_registration_goes_on(make_api):
    api = await make_api(**LIMITED)
    account = await phone(api)
    garbage = [os.urandom(200), b"\r\n" * 300, b"INVITE " + b"a" * 5000, b"SIP/2.0 200 OK\r\n" + b"X: y\r\n" * 50]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for index in range(400):
            sock.sendto(garbage[index % len(garbage)], api.sip_address)
    await still_serving(api, account)
    for _ in range(50):
        if counters(api)["dropped"] >= 400:
            break
        await asyncio.sleep(0.05)
    assert counters(api)["dropped"] >= 390  # loopback may lose a few of a burst


# -- TCP connection limits -----------------------------------------------------------------

async def _open(api, source: str = "127.0.0.1"):
    return await asyncio.open_connection(*api.sip_address, local_addr=(source, 0))


async def _answers(reader, writer) -> bool:
    """True when an OPTIONS on this connection gets 200; False when the server closed it."""
    probe = SipClient(("", 0), "tcp")
    probe.local = writer.get_extra_info("sockname")[:2]
    try:
        writer.write(options(probe).to_bytes())
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)  # no body
    except (ConnectionError, asyncio.IncompleteReadError):
        return False
    return answer.startswith(b"SIP/2.0 200 ")


async def _closed_by_server(reader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(100), 3) == b""
    except ConnectionError:
        return True


async def test_tcp_connections_per_source_are_capped(make_api):
    api = await make_api(tcp_max_connections_per_source=3)
    account = await phone(api)
    first = [await _open(api) for _ in range(3)]
    try:
        assert all([await _answers(*conn) for conn in first])
        reader, writer = await _open(api)
        assert await _closed_by_server(reader)
        writer.close()
        assert counters(api)["tcp_refused_per_source"] == 1
        # Another address is not affected, and a closed connection frees its place.
        await still_serving(api, account, tcp_source="127.0.0.2")
        first.pop()[1].close()
        await asyncio.sleep(0.2)
        first.append(await _open(api))
        assert await _answers(*first[-1])
    finally:
        for _, writer in first:
            writer.close()


async def test_tcp_connections_in_total_are_capped(make_api):
    api = await make_api(tcp_max_connections_per_source=2, tcp_max_connections=3)
    admitted = [await _open(api), await _open(api)]
    try:
        over_source = await _open(api)  # a third from 127.0.0.1
        assert await _closed_by_server(over_source[0])
        admitted.append(await _open(api, "127.0.0.2"))
        over_total = await _open(api, "127.0.0.3")  # a fourth in all
        assert await _closed_by_server(over_total[0])
        for _, writer in (over_source, over_total):
            writer.close()
        assert counters(api)["tcp_refused_per_source"] == 1 and counters(api)["tcp_refused_total"] == 1
        assert all([await _answers(*conn) for conn in admitted])  # the admitted ones carry on
    finally:
        for _, writer in admitted:
            writer.close()
    await asyncio.sleep(0.2)
    assert api.client.server.app[SIP_ENDPOINT].connections == {}


# -- slow and greedy TCP peers -------------------------------------------------------------

async def test_a_slow_sender_is_cut_off_after_the_whole_message_time(make_api):
    api = await make_api(tcp_message_timeout=0.8, tcp_idle_timeout=30.0)
    account = await phone(api)
    reader, writer = await _open(api)
    probe = SipClient(("", 0), "tcp")
    probe.local = writer.get_extra_info("sockname")[:2]
    data = options(probe).to_bytes()
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        for index in range(len(data)):  # a byte every 50 ms: never idle, never done
            writer.write(data[index:index + 1])
            await asyncio.sleep(0.05)
            if reader.at_eof() or writer.is_closing():
                break
            if loop.time() - started > 5:
                break
        assert await _closed_by_server(reader)
        assert 0.7 < loop.time() - started < 3
    finally:
        writer.close()
    assert counters(api)["tcp_closed_slow"] == 1
    await still_serving(api, account)


async def test_pauses_between_whole_messages_and_lone_line_ends_are_not_slow(make_api):
    api = await make_api(tcp_message_timeout=0.5, tcp_idle_timeout=30.0)
    reader, writer = await _open(api)
    try:
        assert await _answers(reader, writer)
        writer.write(b"\r\n")  # a lone CRLF (some phones' keep-alive): no message has begun
        await asyncio.sleep(1.0)
        assert await _answers(reader, writer)
        assert counters(api)["tcp_closed_slow"] == 0
    finally:
        writer.close()


async def test_a_peer_that_does_not_read_its_answers_is_cut_off(make_api):
    api = await make_api(max_message_bytes=8192, tcp_max_buffered_bytes=32768)
    account = await phone(api)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, api.sip_address)
    reader, writer = await asyncio.open_connection(sock=sock)
    probe = SipClient(("", 0), "tcp")
    probe.local = sock.getsockname()[:2]
    # Each answer echoes a 4 KB To header; the peer sends thousands and reads none.
    request = options(probe, to="<sip:probe@example.com>;x=" + "a" * 4000).to_bytes()
    try:
        for _ in range(200):
            if counters(api)["tcp_closed_buffer"]:
                break
            try:
                writer.write(request * 25)
                await asyncio.wait_for(writer.drain(), 2)
            except (ConnectionError, asyncio.TimeoutError):
                break
            await asyncio.sleep(0.01)
        for _ in range(40):
            if counters(api)["tcp_closed_buffer"]:
                break
            await asyncio.sleep(0.05)
    finally:
        writer.close()
    assert counters(api)["tcp_closed_buffer"] == 1
    await still_serving(api, account)


async def test_a_flood_faster_than_the_handlers_gets_503_instead_of_a_queue():
    """The endpoint alone on loopback, with a handler that holds every REGISTER until released
    (standing in for a Redis slower than the flood): past ``max_pending`` waiting requests the
    rest get 503 with Retry-After at once, and the waiting ones are answered afterwards."""
    release = asyncio.Event()

    async def held(request, source):
        await release.wait()
        return make_response(request, 200, to_tag="held")

    endpoint = SipEndpoint(timers=TimerConfig(), handlers={"REGISTER": held}, max_pending=3)
    listeners = await listen(endpoint, "127.0.0.1", 0, max_message=65536, idle_timeout=30.0)
    try:
        async with SipClient(listeners.address) as client:
            for _ in range(5):
                client.send_bytes(client.register_request("x", "example.com").to_bytes())
            refused = [await client.receive() for _ in range(2)]
            assert [(r.status, r.header("Retry-After")) for r in refused] == [(503, "5")] * 2
            assert sorted(int(r.header("CSeq").split()[0]) for r in refused) == [4, 5]
            with pytest.raises(asyncio.TimeoutError):
                await client.receive(timeout=0.3)
            release.set()
            assert [(await client.receive()).status for _ in range(3)] == [200] * 3
        assert endpoint.counters["overloaded"] == 2
    finally:
        await listeners.close()
        await endpoint.close()


async def test_past_the_transaction_cap_new_requests_are_dropped_and_counted():
    """Each answered request keeps its transaction for 32 s (Timer J); past ``max_transactions``
    a flood of new requests is dropped instead of held."""
    endpoint = SipEndpoint(timers=TimerConfig(), handlers={}, max_transactions=3)
    listeners = await listen(endpoint, "127.0.0.1", 0, max_message=65536, idle_timeout=30.0)
    try:
        async with SipClient(listeners.address) as client:
            requests = [options(client) for _ in range(5)]
            for request in requests:
                client.send_bytes(request.to_bytes())
            answers = [await client.receive() for _ in range(3)]
            assert [answer.status for answer in answers] == [200] * 3
            with pytest.raises(asyncio.TimeoutError):
                await client.receive(timeout=0.3)
        assert endpoint.counters["dropped_overload"] == 2 and len(endpoint.layer) == 3
    finally:
        await listeners.close()
        await endpoint.close()


async def test_a_connection_that_never_sends_is_cut_off_like_a_slow_sender(make_api):
    api = await make_api(tcp_message_timeout=0.5, tcp_idle_timeout=30.0)
    reader, writer = await _open(api)
    started = asyncio.get_running_loop().time()
    try:
        assert await _closed_by_server(reader)
        assert asyncio.get_running_loop().time() - started < 2
    finally:
        writer.close()
    assert counters(api)["tcp_closed_slow"] == 1
    # A connection whose first message comes at once stays past the timeout.
    reader, writer = await _open(api)
    try:
        assert await _answers(reader, writer)
        await asyncio.sleep(0.8)
        assert await _answers(reader, writer)
    finally:
        writer.close()
    assert counters(api)["tcp_closed_slow"] == 1


# -- mutated messages through the whole service --------------------------------------------

def _mutants(realm: str, count: int, seed: int) -> list[bytes]:
    """The fuzz seeds (REGISTERs aimed at a real account) with random bytes changed, inserted,
    deleted and lines repeated: deterministic for a seed."""
    import random

    from tests.fuzz.corpus import EVERYDAY, seeds

    rng = random.Random(seed)
    pool = [data.replace(b"example.com", realm.encode()) for data in seeds()]
    register = EVERYDAY[0].replace(b"example.com", realm.encode())
    special = b" \t\r\n:;,=<>\"\\@%?&/[]()" + bytes([0, 0x7F, 0x80, 0xFF])
    out = []
    for _ in range(count):
        data = bytearray(register if rng.random() < 0.5 else rng.choice(pool))  # half reach the registrar
        data = data.replace(b"z9hG4bK", b"z9hG4bK%x." % rng.getrandbits(48))  # no retransmissions
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(data) + 1)
            kind = rng.randrange(4)
            if kind == 0 and at < len(data):
                data[at] = rng.choice(special)
            elif kind == 1:
                data[at:at] = bytes(rng.choice(special) for _ in range(rng.randint(1, 8)))
            elif kind == 2:
                del data[at:at + rng.randint(1, 12)]
            else:
                start = data.rfind(b"\n", 0, at) + 1
                end = data.find(b"\n", at)
                if end != -1:
                    data[start:start] = data[start:end + 1] * rng.randint(1, 30)
        out.append(bytes(data))
    return out


async def test_mutated_messages_over_udp_and_tcp_crash_nothing(make_api, caplog):
    """Hundreds of mutated messages (REGISTERs reaching the registrar's digest and Contact
    parsing among them) over UDP, and over TCP in random chunks: no handler fails (no 500, no
    error logged), and phones keep registering."""
    import logging
    import random

    caplog.set_level(logging.ERROR)
    api = await make_api(tcp_message_timeout=1.0)
    account = await phone(api)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for index, data in enumerate(_mutants(account["realm"], 600, seed=6)):
            sock.sendto(data, api.sip_address)
            if index % 50 == 49:
                await asyncio.sleep(0.02)  # let the loop answer; no kernel buffer overflow
    rng = random.Random(7)
    for stream in range(40):
        reader, writer = await _open(api)
        data = b"".join(_mutants(account["realm"], 4, seed=100 + stream))
        at = 0
        while at < len(data) and not writer.is_closing():
            size = rng.randint(1, 300)
            writer.write(data[at:at + size])
            at += size
        writer.close()
    await asyncio.sleep(0.5)
    await still_serving(api, account)
    endpoint_counters = counters(api)
    assert not [key for key in endpoint_counters if key.endswith("_500")], endpoint_counters
    assert endpoint_counters["responded_REGISTER_401"] > 50 and endpoint_counters["refused"] > 50, endpoint_counters
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert not errors, [record.getMessage() for record in errors[:5]]


# -- a callee that rings for ever ----------------------------------------------------------

async def test_an_invite_that_rings_for_ever_after_its_cancel_is_given_up():
    """A callee (a real UDP socket here) answers our INVITE 180 and then ignores everything,
    the CANCEL included: 64*T1 after the CANCEL the INVITE's transaction is ended (§9.1) and
    its waiter gets None, so nothing is held for ever."""
    from sipsvc.sip.uac import make_cancel
    from sipsvc.transport.endpoint import Target

    timers = TimerConfig(t1=0.01, t2=0.04, t4=0.05)
    endpoint = SipEndpoint(timers=timers, handlers={})
    listeners = await listen(endpoint, "127.0.0.1", 0, max_message=65536, idle_timeout=30.0)
    callee = SipClient(listeners.address)
    try:
        async with callee:
            host, port = listeners.address
            invite = Request(method="INVITE", uri=f"sip:callee@{callee.local[0]}:{callee.local[1]}", headers=(
                ("Via", f"SIP/2.0/UDP {host}:{port};branch={endpoint.new_branch()}"), ("Max-Forwards", "70"),
                ("From", f"<sip:caller@{host}>;tag={endpoint.new_tag()}"), ("To", "<sip:callee@example.com>"),
                ("Call-ID", f"{os.urandom(6).hex()}@hostile"), ("CSeq", "1 INVITE"),
                ("Contact", f"<sip:caller@{host}:{port}>")))
            answer = endpoint.send_request(invite, Target("udp", callee.local))
            received = await callee.receive()  # the INVITE
            ringing = make_response(received, 180, to_tag="forever")
            callee.send_bytes(ringing.to_bytes())
            await asyncio.sleep(0.1)
            endpoint.send_request(make_cancel(invite), Target("udp", callee.local))
            assert await asyncio.wait_for(answer, 3) is None  # given up 0.64 s after the CANCEL
            await asyncio.sleep(0.1)
            assert len(endpoint.layer) == 0 and endpoint.counters["invite_abandoned"] == 1
    finally:
        await listeners.close()
        await endpoint.close()

