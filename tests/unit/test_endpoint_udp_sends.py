"""The endpoint sends the UDP answers of one loop turn together at its end (one wake-up of the
receiver per burst), in order, and ``drain`` sends what is still held before a shutdown closes
the socket. A request answered on arrival is answered once: its retransmission gets the same
bytes without asking the quick handler again."""

from __future__ import annotations

import asyncio

import uvloop

from sipsvc.sip.parser import parse_datagram
from sipsvc.sip.transaction import TimerConfig
from sipsvc.sip.uas import make_response
from sipsvc.transport.endpoint import SipEndpoint

PEER = ("127.0.0.1", 5062)


class _Socket:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple]] = []

    def sendto(self, data: bytes, address) -> None:
        self.sent.append((data, address))


def _options(n: int) -> bytes:
    return (f"OPTIONS sip:sipsvc.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-o{n}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:a@b.test>;tag=t{n}\r\nTo: <sip:sipsvc.test>\r\n"
            f"Call-ID: c{n}@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()


async def _burst() -> tuple[int, list[str], int]:
    endpoint = SipEndpoint(timers=TimerConfig(), handlers={})
    socket = _Socket()
    endpoint.attach_udp(socket)  # type: ignore[arg-type]
    for n in range(3):
        endpoint.datagram_received(_options(n), PEER)
    held = len(socket.sent)  # answered, not sent yet: the turn is not over
    await asyncio.sleep(0)
    call_ids = [parse_datagram(data).header("Call-ID") for data, address in socket.sent if address == PEER]
    endpoint.datagram_received(_options(3), PEER)
    await endpoint.drain()  # sends what is held, without another turn of the loop
    after_drain = len(socket.sent)
    await endpoint.close()
    return held, call_ids, after_drain


def test_answers_of_one_loop_turn_go_out_together_in_order_and_drain_sends_the_rest():
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        held, call_ids, after_drain = runner.run(_burst())
    assert held == 0
    assert call_ids == ["c0@test", "c1@test", "c2@test"]
    assert after_drain == 4


async def _retransmitted_challenge() -> tuple[int, list[bytes]]:
    asked = []

    def challenge(request, source):
        asked.append(request)
        return make_response(request, 401, to_tag=f"t{len(asked)}")

    endpoint = SipEndpoint(timers=TimerConfig(), handlers={}, quick_handlers={"OPTIONS": challenge})
    socket = _Socket()
    endpoint.attach_udp(socket)  # type: ignore[arg-type]
    for _ in range(2):  # the original, then its retransmission
        endpoint.datagram_received(_options(7), PEER)
        await asyncio.sleep(0)
    await endpoint.close()
    return len(asked), [data for data, _ in socket.sent]


def test_a_retransmission_of_a_request_answered_on_arrival_gets_the_same_bytes_unasked():
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        asked, sent = runner.run(_retransmitted_challenge())
    assert asked == 1
    assert len(sent) == 2 and sent[0] == sent[1]

