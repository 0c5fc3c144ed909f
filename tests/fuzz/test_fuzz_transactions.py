"""Fuzzing the transaction layer with random sequences (issue 6 item 1): requests, CANCELs,
ACKs and responses from a peer with colliding branches, the TU's answers and requests, and time
jumping about. Only ``TransactionError`` may come out (and only where documented: ``respond``
and ``send_request``), everything the layer sends serialises and parses back, and once the TU
has answered everything and the timers have run out no transaction is left: nothing a peer
sends keeps memory alive for ever."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipsvc.sip.message import Request, Response
from sipsvc.sip.parser import check_request, check_response, parse_datagram
from sipsvc.sip.transaction import RequestReceived, TimerConfig, TransactionError, TransactionLayer, TxState
from sipsvc.sip.uas import make_response

PEER = ("192.0.2.9", 5060)
METHODS = ["INVITE", "REGISTER", "ACK", "CANCEL", "BYE", "NOTIFY"]
BRANCHES = ["z9hG4bK1", "z9hG4bK2", "z9hG4bK3", "rfc2543", ""]
STATUSES = [100, 180, 183, 200, 202, 401, 486, 487, 500, 603]


def request(method: str, branch: str, cseq_method: str | None = None, to_tag: str | None = None,
            call: str = "c1") -> Request:
    via = "SIP/2.0/UDP 192.0.2.9:5060" + (f";branch={branch}" if branch else "")
    to = "<sip:b@example.com>" + (f";tag={to_tag}" if to_tag else "")
    return Request(method=method, uri="sip:b@example.com", headers=(
        ("Via", via), ("Max-Forwards", "70"), ("To", to), ("From", "<sip:a@example.com>;tag=f1"),
        ("Call-ID", call), ("CSeq", f"1 {cseq_method or method}"), ("Content-Length", "0")))


def response(status: int, method: str, branch: str, to_tag: str | None) -> Response:
    req = request(method, branch)
    return make_response(req, status, to_tag=to_tag)


operation = st.one_of(
    st.tuples(st.just("receive"), st.sampled_from(METHODS), st.sampled_from(BRANCHES),
              st.sampled_from([None, "t1", "fuzz"]), st.sampled_from(["c1", "c2"]), st.booleans()),
    st.tuples(st.just("response"), st.sampled_from(STATUSES), st.sampled_from(METHODS),
              st.sampled_from(BRANCHES + ["z9hG4bKown0", "z9hG4bKown1"]), st.sampled_from([None, "t9"])),
    st.tuples(st.just("respond"), st.integers(0, 7), st.sampled_from(STATUSES + [99, 700])),
    st.tuples(st.just("send"), st.sampled_from(METHODS), st.integers(0, 2), st.booleans()),
    st.tuples(st.just("time"), st.sampled_from([0.0, 0.25, 0.5, 1.0, 4.0, 16.0, 40.0])),
)


def _drain(layer: TransactionLayer, server_txs: dict[str, Request]) -> None:
    for event in layer.events():
        if isinstance(event, RequestReceived):
            server_txs[event.tx] = event.request
    for outgoing in layer.outgoing():
        assert outgoing.target == PEER
        parse_datagram(outgoing.message.to_bytes())


@settings(max_examples=300, deadline=timedelta(milliseconds=500), suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, max_size=40))
def test_random_sequences_leave_no_transaction_behind(operations):
    layer = TransactionLayer(TimerConfig())
    now = 0.0
    server_txs: dict[str, Request] = {}  # every server transaction reported, and its request
    client_txs: dict[str, str] = {}  # client transaction -> method
    for op in operations:
        kind = op[0]
        if kind == "receive":
            _, method, branch, to_tag, call, reliable = op
            message = request(method, branch, to_tag=to_tag, call=call)
            check_request(message)
            layer.receive(message, PEER, reliable=reliable, now=now)
        elif kind == "response":
            _, status, method, branch, to_tag = op
            message = response(status, method, branch, to_tag)
            check_response(message)
            layer.receive(message, PEER, reliable=False, now=now)
        elif kind == "respond":
            _, index, status = op
            if server_txs:
                tx = list(server_txs)[index % len(server_txs)]
                answer = (Response(status=status, reason="X", headers=()) if status in (99, 700)
                          else make_response(server_txs[tx], status, to_tag="t1"))
                try:
                    layer.respond(tx, answer, now)
                except TransactionError:
                    pass  # a terminated transaction, or a status out of range: documented
        elif kind == "send":
            _, method, number, reliable = op
            try:
                tx = layer.send_request(request(method, f"z9hG4bKown{number}"), PEER, reliable=reliable, now=now)
                client_txs[tx] = method
            except TransactionError:
                pass  # an ACK, or a branch already in use: documented
        else:
            now += op[1]
            layer.on_timer(now)
        _drain(layer, server_txs)

    # The TU answers whatever is still waiting and gives up on INVITEs that ring for ever (an
    # INVITE client transaction has no timer in Proceeding: §9.1 leaves that to the TU, through
    # ``terminate``); then the timers run out and nothing is left.
    for tx, method in client_txs.items():
        if method == "INVITE" and layer.state(tx) is TxState.PROCEEDING:
            layer.terminate(tx)
    for tx, received in list(server_txs.items()):
        try:
            layer.respond(tx, make_response(received, 500, to_tag="t1"), now)
        except TransactionError:
            pass
        _drain(layer, server_txs)
    for _ in range(10000):
        deadline = layer.next_deadline()
        if deadline is None:
            break
        now = max(now, deadline)
        layer.on_timer(now)
        _drain(layer, server_txs)
    assert len(layer) == 0

