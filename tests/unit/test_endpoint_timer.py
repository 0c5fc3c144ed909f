"""The endpoint's one loop timer on uvloop, which answers ``call_at`` for a deadline less than
a millisecond away with a plain Handle (no ``when()``): rescheduling must still work. Found by
the soak: a bulk sync under load failed with AttributeError."""

from __future__ import annotations

import asyncio

import uvloop

from sipsvc.sip.transaction import TimerConfig
from sipsvc.sip.uac import make_request, via_value
from sipsvc.transport.endpoint import SipEndpoint, Target


class _Socket:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, address) -> None:
        self.sent.append(data)


def _notify(endpoint: SipEndpoint, n: int):
    return make_request(
        "NOTIFY", "sip:phone@127.0.0.1:5062", from_uri="sip:a@b.test", from_tag=f"t{n}",
        to_uri="sip:a@b.test", call_id=f"c{n}@test", cseq=1,
        via=via_value("UDP", "127.0.0.1", 5060, endpoint.new_branch()),
    )


async def _send_requests_with_sub_millisecond_timers() -> int:
    # T1 of 0.1 ms: Timer E of the first request is due sooner than uvloop's 1 ms resolution.
    endpoint = SipEndpoint(timers=TimerConfig(0.0001, 0.0004, 0.0005), handlers={})
    socket = _Socket()
    endpoint.attach_udp(socket)  # type: ignore[arg-type]
    futures = [endpoint.send_request(_notify(endpoint, n), Target("udp", ("127.0.0.1", 5062)))
               for n in range(20)]
    answers = await asyncio.wait_for(asyncio.gather(*futures), 5)
    await endpoint.close()
    assert answers == [None] * 20  # nobody answered: every transaction ended on Timer F
    return len(socket.sent)


def test_timers_under_a_millisecond_on_uvloop_are_rescheduled_and_fire():
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        sent = runner.run(_send_requests_with_sub_millisecond_timers())
    assert sent > 20  # the originals, then retransmissions on Timer E
