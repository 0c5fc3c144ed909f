"""A bulk sync counts each NOTIFY's outcome as it finishes and lets the NOTIFY go: a sync of
10,000 phones must not hold 10,000 finished tasks to the end (the soak's memory step)."""

from __future__ import annotations

import asyncio
import gc
import weakref

from sipsvc.notify.service import TIMEOUT, Outcome, _Delivery, _Tally
from sipsvc.registrar.policy import Binding


def _binding(n: int) -> Binding:
    contact = f"sip:user{n}@127.0.0.1:{5000 + n}"
    return Binding(id=contact, contact=contact, expires_at=0.0, registered_at=0.0, call_id=f"c{n}",
                   cseq=1, source=f"127.0.0.1:{5000 + n}", transport="udp")


async def _answer(binding: Binding, status, elapsed_ms: int, gate: asyncio.Event) -> Outcome:
    await gate.wait()
    return Outcome(binding.contact, binding.transport, status, elapsed_ms)


async def test_finished_notifies_are_counted_and_let_go():
    loop = asyncio.get_running_loop()
    tally = _Tally()
    gate = asyncio.Event()
    watched = []
    statuses = [200, 200, 481, TIMEOUT, 200]
    for n, status in enumerate(statuses):
        task = loop.create_task(_answer(_binding(n), status, 10 * (n + 1), gate))
        watched.append(weakref.ref(task))
        tally.follow(_Delivery(_binding(n), task))
        del task
    tally.follow(_Delivery(_binding(99), None))  # nothing could be sent

    gate.set()
    await tally.drained()
    gc.collect()

    assert [ref() for ref in watched] == [None] * len(statuses)
    summary = tally.summary(sending=1.0, elapsed=2.0)
    assert summary["sent"] == 5
    assert summary["answered"] == {"200": 3, "481": 1}
    assert summary["timed_out"] == 1
    assert summary["unreachable"] == 1
    assert summary["answer_ms"] == {"p50": 20, "p99": 50, "max": 50}


async def test_a_still_pending_notify_is_waited_for():
    loop = asyncio.get_running_loop()
    tally = _Tally()
    gate = asyncio.Event()
    tally.follow(_Delivery(_binding(1), loop.create_task(_answer(_binding(1), 200, 5, gate))))
    waiting = loop.create_task(tally.drained())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    gate.set()
    await asyncio.wait_for(waiting, 1)
    assert tally.summary(1.0, 1.0)["answered"] == {"200": 1}

