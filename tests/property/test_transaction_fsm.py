"""Property tests of the four RFC 3261 §17 transaction state machines (after h2's
``test_state_machines.py``): every (state, input) pair of every table, and random sequences of
inputs through the whole layer checked against the tables as a model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipsvc.sip.message import Request, Response
from sipsvc.sip.transaction import (
    AckReceived, Action, Input, RequestReceived, ResponseReceived, TimerConfig, TransactionError,
    TransactionLayer, TransactionTimedOut, TxState,
)
from sipsvc.sip.transaction import invite_client, invite_server, non_invite_client, non_invite_server
from sipsvc.sip.transaction.client import ClientTransaction
from sipsvc.sip.transaction.fsm import Sink, Table, Transition, response_input, timer_input
from sipsvc.sip.transaction.server import ServerTransaction
from sipsvc.sip.transaction.timers import TimerQueue, duration

CONFIG = TimerConfig()
PEER = ("192.0.2.1", 5060)


@dataclass(frozen=True)
class Machine:
    name: str
    module: Any  # STATES, INPUTS, INITIAL and the table
    table: Table
    method: str
    server: bool


MACHINES = [
    Machine("invite-server", invite_server, invite_server.INVITE_SERVER, "INVITE", True),
    Machine("non-invite-server", non_invite_server, non_invite_server.NON_INVITE_SERVER, "REGISTER", True),
    Machine("invite-client", invite_client, invite_client.INVITE_CLIENT, "INVITE", False),
    Machine("non-invite-client", non_invite_client, non_invite_client.NON_INVITE_CLIENT, "NOTIFY", False),
]
IDS = [machine.name for machine in MACHINES]
EVENT_OF = {Action.PASS_RESPONSE: ResponseReceived, Action.PASS_ACK: AckReceived,
            Action.TIME_OUT: TransactionTimedOut, Action.PASS_REQUEST: RequestReceived}
SENDS = {Action.SEND_REQUEST, Action.SEND_RESPONSE, Action.RESEND_RESPONSE, Action.SEND_ACK,
         Action.RESEND_ACK}
STATUS_OF = {Input.SEND_1XX: 180, Input.SEND_2XX: 200, Input.SEND_FINAL: 486,
             Input.RECV_1XX: 180, Input.RECV_2XX: 200, Input.RECV_FINAL: 486}


def make_request(method: str, branch: str = "z9hG4bKprop1") -> Request:
    return Request(method=method, uri="sip:bob@example.com", headers=(
        ("Via", f"SIP/2.0/UDP 192.0.2.1:5060;branch={branch}"), ("Max-Forwards", "70"),
        ("To", "<sip:bob@example.com>"), ("From", "<sip:alice@example.com>;tag=a1"),
        ("Call-ID", "prop-call"), ("CSeq", f"7 {method}"), ("Content-Length", "0")))


def make_response(request: Request, status: int) -> Response:
    headers = tuple((n, f"{v};tag=b2" if n == "To" else v) for n, v in request.headers
                    if n in ("Via", "From", "To", "Call-ID", "CSeq"))
    return Response(status=status, reason="X", headers=headers)


def chain(table, transition: Transition, reliable: bool) -> list[Transition]:
    """The transitions one input causes: itself, then any zero-length timer it started."""
    steps = [transition]
    for timer in transition.start:
        if transition.target is not TxState.TERMINATED and duration(
                timer, CONFIG, reliable=reliable) == 0:
            steps += chain(table, table[(transition.target, timer_input(timer))], reliable)
    return steps


def allowed_events(steps: list[Transition]) -> list[type]:
    return [EVENT_OF[action] for step in steps for action in step.actions if action in EVENT_OF]


# -- the tables ------------------------------------------------------------------------------

@pytest.mark.parametrize("machine", MACHINES, ids=IDS)
def test_each_table_is_total_over_its_live_states_and_inputs(machine):
    table, states, inputs = machine.table, machine.module.STATES, machine.module.INPUTS
    assert set(table) == {(state, each) for state in states for each in inputs}
    legal = set(states) | {TxState.TERMINATED}
    assert all(transition.target in legal for transition in table.values())
    assert machine.module.INITIAL.target in states


@pytest.mark.parametrize("machine", MACHINES, ids=IDS)
def test_each_table_starts_only_timers_whose_firing_it_handles(machine):
    inputs = set(machine.module.INPUTS)
    for transition in [machine.module.INITIAL, *machine.table.values()]:
        assert {timer_input(timer) for timer in transition.start} <= inputs


# -- every (state, input) pair, one transaction at a time --------------------------------------

class Recorder:
    def __init__(self) -> None:
        self.terminated: list[str] = []
        self.timers = TimerQueue()
        self.sink = Sink([], [], self.timers, CONFIG, self.terminated.append)


def make_transaction(machine: Machine, recorder: Recorder, reliable: bool):
    request = make_request(machine.method)
    kind = ServerTransaction if machine.server else ClientTransaction
    extra = {"arrival": RequestReceived("t1", request, PEER)} if machine.server else {}
    return kind("t1", request=request, target=PEER, reliable=reliable, sink=recorder.sink, **extra)


@pytest.mark.parametrize("machine", MACHINES, ids=IDS)
@settings(max_examples=60, deadline=None)
@given(reliable=st.booleans(), now=st.floats(0, 1e6), primed=st.booleans())
def test_every_state_input_pair_reaches_the_state_and_events_its_table_says(machine, reliable, now, primed):
    for (state, event), transition in machine.table.items():
        recorder = Recorder()
        tx = make_transaction(machine, recorder, reliable)
        if primed:  # a transaction with history: it has sent something it may have to re-send
            tx.begin(now)
            if machine.server:
                tx.last_response = make_response(tx.request, 180)
            else:
                tx.ack = make_request("ACK")
            recorder.sink.events.clear()
            recorder.sink.outgoing.clear()
        tx.state = state
        message = None
        if event in STATUS_OF:
            message = make_response(tx.request, STATUS_OF[event])
        elif event in (Input.REQUEST, Input.ACK):
            message = make_request("ACK" if event is Input.ACK else machine.method)
        tx.handle(event, now, message, PEER)

        steps = chain(machine.table, transition, reliable)
        assert tx.state is steps[-1].target, (state, event)
        assert [type(e) for e in recorder.sink.events] == allowed_events(steps), (state, event)
        may_send = any(action in SENDS for step in steps for action in step.actions)
        assert may_send or recorder.sink.outgoing == [], (state, event)
        if tx.state is TxState.TERMINATED:
            assert recorder.terminated == ["t1"] and recorder.timers.deadlines("t1") == {}
        else:
            assert recorder.terminated == []
            assert all(deadline > now for deadline in recorder.timers.deadlines("t1").values())


# -- random input sequences through the layer, with the tables as the model --------------------

SERVER_OPS = st.one_of(
    st.just(("retransmit",)), st.just(("ack",)), st.just(("tick",)), st.just(("respond-unknown",)),
    st.tuples(st.just("respond"), st.sampled_from([100, 180, 183, 200, 202, 302, 404, 486, 500, 603])))
CLIENT_OPS = st.one_of(
    st.just(("tick",)), st.just(("stray",)), st.just(("misuse",)),
    st.tuples(st.just("recv"), st.sampled_from([100, 180, 200, 202, 301, 401, 486, 500, 603])))


class Model:
    """The expected state of one transaction, walked through its table."""

    def __init__(self, machine: Machine, reliable: bool) -> None:
        self.machine, self.reliable = machine, reliable
        self.state = machine.module.INITIAL.target

    def step(self, event: Input) -> list[type]:
        if self.state is TxState.TERMINATED:
            return []
        steps = chain(self.machine.table, self.machine.table[(self.state, event)], self.reliable)
        self.state = steps[-1].target
        return allowed_events(steps)


def start(machine: Machine, layer: TransactionLayer, reliable: bool) -> tuple[str, Request]:
    request = make_request(machine.method)
    if machine.server:
        layer.receive(request, PEER, reliable=reliable, now=0.0)
        (event,) = layer.events()
        return event.tx, request
    return layer.send_request(request, PEER, reliable=reliable, now=0.0), request


def tick(layer: TransactionLayer, tx: str, model: Model) -> tuple[float, list[type]]:
    deadline = layer.next_deadline()
    if deadline is None:
        return 0.0, []
    running = layer.deadlines(tx)
    due = sorted((timer for timer, when in running.items() if when == deadline), key=lambda t: t.value)
    expected = [kind for timer in due for kind in model.step(timer_input(timer))]
    layer.on_timer(deadline)
    return deadline, expected


def apply(op: tuple, machine: Machine, layer: TransactionLayer, tx: str, request: Request,
          model: Model, now: float) -> tuple[float, list[type]]:
    """Do ``op``; the new time and the event types the model allows for it."""
    kind = op[0]
    if kind == "tick":
        return tick(layer, tx, model)
    if kind == "retransmit":
        if model.state is TxState.TERMINATED:
            return now, []  # it would start a new transaction, which is not this test's subject
        layer.receive(request, PEER, reliable=model.reliable, now=now)
        return now, model.step(Input.REQUEST)
    if kind == "ack":
        layer.receive(make_request("ACK"), PEER, reliable=model.reliable, now=now)
        if not machine.server or machine.method != "INVITE" or model.state is TxState.TERMINATED:
            return now, [AckReceived]  # matches no transaction: the TU's
        return now, model.step(Input.ACK)
    if kind == "respond":
        response = make_response(request, op[1])
        if model.state is TxState.TERMINATED:
            with pytest.raises(TransactionError):
                layer.respond(tx, response, now)
            return now, []
        layer.respond(tx, response, now)
        return now, model.step(response_input(op[1], sending=True))
    if kind == "recv":
        layer.receive(make_response(request, op[1]), PEER, reliable=model.reliable, now=now)
        return now, model.step(response_input(op[1], sending=False))
    if kind == "stray":
        layer.receive(make_response(make_request(machine.method, "z9hG4bKelse"), 200), PEER,
                      reliable=model.reliable, now=now)
        return now, []
    with pytest.raises(TransactionError):  # respond-unknown, misuse: answer no server transaction
        layer.respond("nope" if kind == "respond-unknown" else tx, make_response(request, 200), now)
    return now, []


def finish(machine: Machine, layer: TransactionLayer, tx: str, request: Request, now: float) -> None:
    """Answer what only the other side ends (§17.2: the TU must respond; §17.1.1.2: a ringing
    INVITE waits for its final), then let every timer run out."""
    if layer.state(tx) in (TxState.TRYING, TxState.PROCEEDING):
        if machine.server:
            layer.respond(tx, make_response(request, 500), now)
        elif layer.state(tx) is TxState.PROCEEDING:
            layer.receive(make_response(request, 487), PEER, reliable=False, now=now)
    while (deadline := layer.next_deadline()) is not None:
        layer.on_timer(deadline)


@pytest.mark.parametrize("machine", MACHINES, ids=IDS)
@settings(max_examples=150, deadline=None)
@given(reliable=st.booleans(), data=st.data())
def test_random_inputs_follow_the_table_and_every_transaction_ends(machine, reliable, data):
    ops = data.draw(st.lists(SERVER_OPS if machine.server else CLIENT_OPS, max_size=25))
    layer = TransactionLayer(CONFIG)
    tx, request = start(machine, layer, reliable)
    model = Model(machine, reliable)
    legal = set(machine.module.STATES) | {TxState.TERMINATED}
    now = 0.0
    for op in ops:
        now, expected = apply(op, machine, layer, tx, request, model, now)
        events = layer.events()
        assert [type(event) for event in events] == expected, op
        assert all(getattr(event, "tx", tx) == tx for event in events)
        assert layer.state(tx) is model.state and model.state in legal, op
        assert (len(layer) == 0) == (model.state is TxState.TERMINATED)
        layer.outgoing()
    finish(machine, layer, tx, request, now)
    assert len(layer) == 0 and layer.next_deadline() is None
