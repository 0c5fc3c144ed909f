"""The transaction layer (RFC 3261 §17, RFC 6026): pure tests, no event loop. Time is a number
the tests choose; every timer value is checked exactly (T1 = 0.5, T2 = 4, T4 = 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipsvc.sip.errors import SipError
from sipsvc.sip.message import Request, Response
from sipsvc.sip.parser import parse_datagram
from sipsvc.sip.transaction import (
    AckReceived, CancelReceived, Outgoing, RequestReceived, ResponseReceived, Timer, TimerConfig,
    TransactionError, TransactionLayer, TransactionTimedOut, TxState,
)

CORPUS = Path(__file__).resolve().parents[2] / "data" / "rfc4475"
PEER = ("192.0.2.10", 5060)  # an opaque target: whatever the caller passes comes back


def make_request(method: str = "OPTIONS", branch: str | None = "z9hG4bKnashds8", *, cseq: int = 1,
                 host: str = "pc33.atlanta.example.com", call_id: str = "a84b4c76e66710",
                 to: str = "<sip:bob@biloxi.example.com>", uri: str = "sip:bob@biloxi.example.com",
                 from_: str = "<sip:alice@atlanta.example.com>;tag=1928301774",
                 extra: tuple[tuple[str, str], ...] = ()) -> Request:
    via = f"SIP/2.0/UDP {host}" + (f";branch={branch}" if branch is not None else "")
    return Request(method=method, uri=uri, headers=(
        ("Via", via), ("Max-Forwards", "70"), ("To", to), ("From", from_), ("Call-ID", call_id),
        ("CSeq", f"{cseq} {method}"), *extra, ("Content-Length", "0")))


def make_response(request: Request, status: int, reason: str = "Reason", *,
                  to_tag: str | None = "a6c85cf") -> Response:
    headers = []
    for name, value in request.headers:
        if name == "To" and to_tag and status > 100 and ";tag=" not in value:
            value = f"{value};tag={to_tag}"
        if name in ("Via", "From", "To", "Call-ID", "CSeq"):
            headers.append((name, value))
    return Response(status=status, reason=reason, headers=(*headers, ("Content-Length", "0")))


def read_corpus(name: str) -> Request:
    with open(CORPUS / name, "rb") as handle:
        message = parse_datagram(handle.read())
    assert isinstance(message, Request)
    return message


def run_timers(layer: TransactionLayer, until: float) -> list[float]:
    """Fire each timer at its deadline up to ``until``; the times it woke up."""
    fired = []
    while (deadline := layer.next_deadline()) is not None and deadline <= until:
        layer.on_timer(deadline)
        fired.append(deadline)
    return fired


def sent(layer: TransactionLayer) -> list:
    return [out.message for out in layer.outgoing()]


@pytest.fixture
def layer() -> TransactionLayer:
    return TransactionLayer(TimerConfig())


def new_server(layer: TransactionLayer, request: Request, *, reliable: bool = False,
               now: float = 0.0) -> str:
    layer.receive(request, PEER, reliable=reliable, now=now)
    (event,) = layer.events()
    assert event == RequestReceived(event.tx, request, PEER)
    return event.tx


# -- timer configuration -----------------------------------------------------------------------

def test_timer_config_defaults_are_rfc_3261_table_4():
    assert TimerConfig() == TimerConfig(t1=0.5, t2=4.0, t4=5.0)


@pytest.mark.parametrize("values", [(0, 4, 5), (0.5, 0.1, 5), (0.5, 4, 0)])
def test_timer_config_refuses_values_when_they_make_no_sense(values):
    with pytest.raises(ValueError):
        TimerConfig(*values)


def test_timers_come_from_the_config_when_t1_is_not_the_default():
    layer = TransactionLayer(TimerConfig(t1=0.1, t2=0.4, t4=1.0))
    request = make_request()
    tx = new_server(layer, request)
    layer.respond(tx, make_response(request, 200), now=1.0)
    assert layer.deadlines(tx) == {Timer.J: pytest.approx(1.0 + 6.4)}


# -- non-INVITE server (§17.2.2) ---------------------------------------------------------------

def test_non_invite_server_reports_a_request_once_when_retransmitted_in_trying(layer):
    request = make_request("REGISTER")
    tx = new_server(layer, request)
    assert layer.state(tx) is TxState.TRYING
    layer.receive(request, PEER, reliable=False, now=0.5)
    assert layer.events() == [] and layer.outgoing() == []
    assert len(layer) == 1


def test_non_invite_server_resends_the_provisional_when_retransmitted_in_proceeding(layer):
    request = make_request("REGISTER")
    tx = new_server(layer, request)
    trying = make_response(request, 100, "Trying")
    layer.respond(tx, trying, now=0.1)
    assert layer.outgoing() == [Outgoing(trying, PEER)]
    assert layer.state(tx) is TxState.PROCEEDING
    layer.receive(make_request("REGISTER"), PEER, reliable=False, now=0.5)
    assert sent(layer) == [trying] and layer.events() == []


def test_non_invite_server_resends_the_final_byte_for_byte_when_retransmitted_in_completed(layer):
    request = make_request("REGISTER")
    tx = new_server(layer, request)
    ok = make_response(request, 200, "OK")
    layer.respond(tx, ok, now=0.2)
    first = sent(layer)
    for now in (0.7, 5.0, 31.0):
        layer.receive(parse_datagram(request.to_bytes()), PEER, reliable=False, now=now)
        again = sent(layer)
        assert [m.to_bytes() for m in again] == [ok.to_bytes()] == [m.to_bytes() for m in first]
    assert layer.events() == []


def test_non_invite_server_keeps_completed_for_timer_j_when_unreliable(layer):
    request = make_request()
    tx = new_server(layer, request, now=10.0)
    layer.respond(tx, make_response(request, 404), now=10.0)
    assert layer.state(tx) is TxState.COMPLETED
    assert layer.deadlines(tx) == {Timer.J: 42.0}
    layer.on_timer(41.9)
    assert len(layer) == 1
    layer.on_timer(42.0)
    assert len(layer) == 0 and layer.events() == [] and layer.next_deadline() is None


def test_non_invite_server_terminates_at_once_when_reliable(layer):
    request = make_request()
    tx = new_server(layer, request, reliable=True)
    layer.respond(tx, make_response(request, 200), now=0.0)
    assert len(sent(layer)) == 1
    assert len(layer) == 0 and layer.state(tx) is TxState.TERMINATED and layer.next_deadline() is None


def test_non_invite_server_discards_a_second_final_when_completed(layer):
    request = make_request()
    tx = new_server(layer, request)
    layer.respond(tx, make_response(request, 200), now=0.0)
    layer.outgoing()
    layer.respond(tx, make_response(request, 500), now=0.1)
    assert layer.outgoing() == [] and layer.state(tx) is TxState.COMPLETED


# -- a request answered on arrival (no server transaction, §8.2.7 and §17.2.2) ---------------

def test_a_request_answered_on_arrival_keeps_its_response_for_retransmissions_until_timer_j(layer):
    request = make_request("REGISTER")
    challenge = make_response(request, 401, "Unauthorized")
    assert layer.answer(request, challenge, PEER, reliable=False, now=10.0) is True
    assert layer.outgoing() == [Outgoing(challenge, PEER)] and layer.events() == []
    assert len(layer) == 1 and layer.next_deadline() == 42.0
    for now in (10.5, 41.9):  # retransmissions: the same response again, nothing for the TU
        layer.receive(parse_datagram(request.to_bytes()), PEER, reliable=False, now=now)
        assert sent(layer) == [challenge] and layer.events() == []
    assert layer.retransmissions_received == 2
    layer.on_timer(41.9)
    assert len(layer) == 1
    layer.on_timer(42.0)
    assert len(layer) == 0 and layer.next_deadline() is None
    # Past Timer J the same branch is a new request, as it would be after the transaction.
    layer.receive(request, PEER, reliable=False, now=43.0)
    assert [type(event) for event in layer.events()] == [RequestReceived]


def test_a_request_answered_on_arrival_over_a_reliable_transport_is_not_kept(layer):
    request = make_request("REGISTER")
    assert layer.answer(request, make_response(request, 401), PEER, reliable=True, now=0.0)
    assert len(sent(layer)) == 1 and len(layer) == 0 and layer.next_deadline() is None


def test_answer_leaves_a_retransmission_to_receive(layer):
    request = make_request("REGISTER")
    tx = new_server(layer, request)  # the original took the usual way
    assert layer.answer(request, make_response(request, 401), PEER, reliable=False, now=0.1) is False
    assert layer.outgoing() == [] and layer.state(tx) is TxState.TRYING
    other = make_request("REGISTER", branch="z9hG4bKother")
    assert layer.answer(other, make_response(other, 401), PEER, reliable=False, now=0.1) is True
    assert layer.answer(other, make_response(other, 401), PEER, reliable=False, now=0.2) is False
    assert len(sent(layer)) == 1


def test_the_layer_holds_a_request_while_its_transaction_or_its_answer_lives(layer):
    started, answered, new = (make_request("REGISTER", branch=f"z9hG4bK{name}") for name in ("s", "a", "n"))
    new_server(layer, started)
    layer.answer(answered, make_response(answered, 401), PEER, reliable=False, now=0.0)
    assert layer.holds(started) and layer.holds(answered) and not layer.holds(new)
    layer.on_timer(32.0)  # Timer J of the answer
    assert not layer.holds(answered)


def test_the_earliest_of_timers_and_answered_requests_is_the_next_deadline(layer):
    early, late = make_request("OPTIONS", branch="z9hG4bKearly"), make_request("OPTIONS", branch="z9hG4bKlate")
    layer.answer(early, make_response(early, 200), PEER, reliable=False, now=1.0)
    tx = new_server(layer, late, now=2.0)
    layer.respond(tx, make_response(late, 200), now=2.0)
    assert layer.next_deadline() == 33.0
    layer.on_timer(33.0)
    assert layer.next_deadline() == 34.0 and len(layer) == 1


@pytest.mark.parametrize("method", ["INVITE", "ACK", "CANCEL"])
def test_answer_refuses_what_needs_a_transaction_of_its_own(layer, method):
    request = make_request(method)
    with pytest.raises(TransactionError):
        layer.answer(request, make_response(request, 486), PEER, reliable=False, now=0.0)


def test_answer_refuses_a_provisional_response(layer):
    request = make_request("REGISTER")
    with pytest.raises(TransactionError):
        layer.answer(request, make_response(request, 100), PEER, reliable=False, now=0.0)


def test_respond_raises_when_the_transaction_is_unknown_or_terminated(layer):
    with pytest.raises(TransactionError):
        layer.respond("s999", make_response(make_request(), 200), now=0.0)
    request = make_request()
    tx = new_server(layer, request, reliable=True)
    layer.respond(tx, make_response(request, 200), now=0.0)
    with pytest.raises(TransactionError) as raised:
        layer.respond(tx, make_response(request, 200), now=0.0)
    assert isinstance(raised.value, SipError)


def test_respond_raises_when_given_a_request_or_a_client_transaction(layer):
    request = make_request()
    tx = new_server(layer, request)
    with pytest.raises(TransactionError):
        layer.respond(tx, request, now=0.0)  # type: ignore[arg-type]
    client = layer.send_request(make_request(branch="z9hG4bKout"), PEER, reliable=False, now=0.0)
    with pytest.raises(TransactionError):
        layer.respond(client, make_response(request, 200), now=0.0)


def test_server_transactions_are_told_apart_by_branch_sent_by_and_method(layer):
    a = new_server(layer, make_request("OPTIONS", "z9hG4bK1"))
    b = new_server(layer, make_request("OPTIONS", "z9hG4bK1", host="other.example.com"))
    c = new_server(layer, make_request("REGISTER", "z9hG4bK1"))
    d = new_server(layer, make_request("OPTIONS", "z9hG4bK2"))
    assert len({a, b, c, d}) == 4 and len(layer) == 4


# -- INVITE server (§17.2.1, RFC 6026) ----------------------------------------------------------

def test_invite_server_absorbs_a_retransmission_when_nothing_was_sent_yet(layer):
    invite = make_request("INVITE")
    tx = new_server(layer, invite)
    assert layer.state(tx) is TxState.PROCEEDING
    layer.receive(invite, PEER, reliable=False, now=0.3)
    assert layer.events() == [] and layer.outgoing() == []


def test_invite_server_resends_the_last_provisional_when_retransmitted_in_proceeding(layer):
    invite = make_request("INVITE")
    tx = new_server(layer, invite)
    layer.respond(tx, make_response(invite, 100, "Trying"), now=0.0)
    ringing = make_response(invite, 180, "Ringing")
    layer.respond(tx, ringing, now=0.1)
    layer.outgoing()
    layer.receive(invite, PEER, reliable=False, now=0.5)
    assert sent(layer) == [ringing] and layer.events() == []


def test_invite_server_retransmits_a_non_2xx_final_on_timer_g_until_timer_h(layer):
    invite = make_request("INVITE")
    tx = new_server(layer, invite)
    busy = make_response(invite, 486, "Busy Here")
    layer.respond(tx, busy, now=0.0)
    assert layer.state(tx) is TxState.COMPLETED
    assert layer.deadlines(tx) == {Timer.G: 0.5, Timer.H: 32.0}
    assert sent(layer) == [busy]
    fired = run_timers(layer, 100.0)
    # G doubles from T1 and stays at T2 = 4; H = 64*T1 = 32
    assert fired == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5, 32.0]
    assert sent(layer) == [busy] * 10
    assert layer.events() == [TransactionTimedOut(tx)]
    assert len(layer) == 0 and layer.next_deadline() is None


def test_invite_server_resends_the_final_when_the_invite_is_retransmitted_in_completed(layer):
    invite = make_request("INVITE")
    tx = new_server(layer, invite)
    busy = make_response(invite, 486, "Busy Here")
    layer.respond(tx, busy, now=0.0)
    layer.outgoing()
    layer.receive(parse_datagram(invite.to_bytes()), PEER, reliable=False, now=0.2)
    assert [m.to_bytes() for m in sent(layer)] == [busy.to_bytes()]
    assert layer.events() == []


def test_invite_server_confirms_on_ack_and_ends_after_timer_i(layer):
    invite = make_request("INVITE")
    tx = new_server(layer, invite)
    busy = make_response(invite, 486, "Busy Here")
    layer.respond(tx, busy, now=0.0)
    layer.on_timer(0.5)  # one retransmission
    ack = make_request("ACK", to=busy.header("To"))
    layer.receive(ack, PEER, reliable=False, now=1.0)
    assert layer.state(tx) is TxState.CONFIRMED
    assert layer.deadlines(tx) == {Timer.I: 6.0}  # G and H stop; I = T4
    assert layer.events() == []
    layer.receive(ack, PEER, reliable=False, now=2.0)  # an ACK retransmission is absorbed
    layer.receive(invite, PEER, reliable=False, now=2.0)  # so is a late INVITE
    assert layer.events() == [] and sent(layer) == [busy, busy]  # first send and Timer G at 0.5
    assert run_timers(layer, 100.0) == [6.0]
    assert len(layer) == 0 and layer.events() == []


def test_invite_server_sends_once_and_ends_on_ack_when_reliable(layer):
    invite = make_request("INVITE")
    tx = new_server(layer, invite, reliable=True)
    busy = make_response(invite, 486, "Busy Here")
    layer.respond(tx, busy, now=0.0)
    assert layer.deadlines(tx) == {Timer.H: 32.0}  # no Timer G on a reliable transport
    layer.receive(make_request("ACK", to=busy.header("To")), PEER, reliable=True, now=0.1)
    assert len(layer) == 0 and sent(layer) == [busy] and layer.events() == []  # I = 0


def test_invite_server_times_out_on_timer_h_when_reliable_and_no_ack(layer):
    invite = make_request("INVITE")
    tx = new_server(layer, invite, reliable=True)
    layer.respond(tx, make_response(invite, 603, "Decline"), now=1.0)
    assert run_timers(layer, 100.0) == [33.0]
    assert layer.events() == [TransactionTimedOut(tx)] and len(layer) == 0


def test_invite_server_accepts_a_2xx_and_hands_acks_to_the_tu(layer):
    invite = make_request("INVITE")
    tx = new_server(layer, invite)
    ok = make_response(invite, 200, "OK")
    layer.respond(tx, ok, now=0.0)
    assert layer.state(tx) is TxState.ACCEPTED
    assert layer.deadlines(tx) == {Timer.L: 32.0}  # no retransmission timer: the TU retransmits 2xx
    assert sent(layer) == [ok]
    layer.receive(invite, PEER, reliable=False, now=0.4)  # RFC 6026 §8.7: absorbed, nothing re-sent
    assert layer.outgoing() == [] and layer.events() == []
    layer.respond(tx, ok, now=0.5)  # the TU's own 2xx retransmission goes out
    assert sent(layer) == [ok]
    ack = make_request("ACK", "z9hG4bKack2xx", to=ok.header("To"))  # the ACK for a 2xx: new branch
    layer.receive(ack, PEER, reliable=False, now=0.6)
    same_branch = make_request("ACK", to=ok.header("To"))
    layer.receive(same_branch, PEER, reliable=False, now=0.7)
    assert layer.events() == [AckReceived(ack, PEER), AckReceived(same_branch, PEER)]
    assert run_timers(layer, 100.0) == [32.0]
    assert len(layer) == 0 and layer.events() == []


def test_invite_server_keeps_timer_l_when_reliable(layer):
    invite = make_request("INVITE")
    tx = new_server(layer, invite, reliable=True)
    layer.respond(tx, make_response(invite, 200, "OK"), now=2.0)
    assert layer.deadlines(tx) == {Timer.L: 34.0}


def test_invite_server_discards_responses_when_a_final_was_sent(layer):
    invite = make_request("INVITE")
    tx = new_server(layer, invite)
    layer.respond(tx, make_response(invite, 486), now=0.0)
    layer.outgoing()
    for status in (180, 200, 500):
        layer.respond(tx, make_response(invite, status), now=0.1)
    assert layer.outgoing() == [] and layer.state(tx) is TxState.COMPLETED


# -- stray messages ------------------------------------------------------------------------------

def test_an_ack_matching_no_transaction_goes_to_the_tu(layer):
    ack = make_request("ACK", to="<sip:bob@biloxi.example.com>;tag=x")
    layer.receive(ack, PEER, reliable=False, now=0.0)
    assert layer.events() == [AckReceived(ack, PEER)]
    assert layer.outgoing() == [] and len(layer) == 0


def test_an_ack_in_proceeding_is_ignored(layer):
    invite = make_request("INVITE")
    tx = new_server(layer, invite)
    layer.receive(make_request("ACK"), PEER, reliable=False, now=0.1)
    assert layer.events() == [] and layer.state(tx) is TxState.PROCEEDING


def test_a_response_matching_no_transaction_is_dropped_silently(layer):
    request = make_request(branch="z9hG4bKmine")
    layer.send_request(request, PEER, reliable=False, now=0.0)
    layer.outgoing()
    layer.receive(make_response(make_request(branch="z9hG4bKother"), 200), PEER, reliable=False, now=0.1)
    layer.receive(make_response(make_request("REGISTER", branch="z9hG4bKmine"), 200), PEER,
                  reliable=False, now=0.1)  # the branch but not the CSeq method
    layer.receive(parse_datagram((CORPUS / "valid/unreason.dat").read_bytes()), PEER,
                  reliable=False, now=0.1)  # RFC 4475 §3.1.1.12
    assert layer.events() == [] and layer.outgoing() == [] and len(layer) == 1


def test_a_request_without_a_usable_via_is_refused(layer):
    request = Request(method="OPTIONS", uri="sip:x@example.com", headers=(("CSeq", "1 OPTIONS"),))
    with pytest.raises(TransactionError):
        layer.receive(request, PEER, reliable=False, now=0.0)


# -- non-INVITE client (§17.1.2) -----------------------------------------------------------------

def test_non_invite_client_retransmits_on_timer_e_until_timer_f(layer):
    request = make_request("NOTIFY", "z9hG4bKnotify")
    tx = layer.send_request(request, PEER, reliable=False, now=0.0)
    assert layer.outgoing() == [Outgoing(request, PEER)]
    assert layer.state(tx) is TxState.TRYING
    assert layer.deadlines(tx) == {Timer.E: 0.5, Timer.F: 32.0}
    fired = run_timers(layer, 100.0)
    assert fired == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5, 32.0]
    assert sent(layer) == [request] * 10
    assert layer.events() == [TransactionTimedOut(tx)] and len(layer) == 0


def test_non_invite_client_retransmits_every_t2_when_proceeding(layer):
    request = make_request("NOTIFY", "z9hG4bKnotify")
    tx = layer.send_request(request, PEER, reliable=False, now=0.0)
    layer.on_timer(0.5)  # E: next in 2*T1 = 1.0
    trying = make_response(request, 100, "Trying")
    layer.receive(trying, PEER, reliable=False, now=0.7)
    assert layer.state(tx) is TxState.PROCEEDING
    assert layer.events() == [ResponseReceived(tx, trying)]
    assert run_timers(layer, 14.0) == [1.5, 5.5, 9.5, 13.5]  # then every T2
    assert len(sent(layer)) == 1 + 1 + 4


def test_non_invite_client_passes_the_final_once_and_ends_after_timer_k(layer):
    request = make_request("NOTIFY", "z9hG4bKnotify")
    tx = layer.send_request(request, PEER, reliable=False, now=0.0)
    layer.outgoing()
    ok = make_response(request, 200, "OK")
    layer.receive(ok, PEER, reliable=False, now=0.2)
    assert layer.events() == [ResponseReceived(tx, ok)]
    assert layer.state(tx) is TxState.COMPLETED
    assert layer.deadlines(tx) == {Timer.K: 5.2}  # E and F stop; K = T4
    layer.receive(ok, PEER, reliable=False, now=1.0)  # retransmitted final: absorbed
    layer.receive(make_response(request, 100), PEER, reliable=False, now=1.0)
    assert layer.events() == [] and layer.outgoing() == []
    assert run_timers(layer, 100.0) == [5.2]
    assert len(layer) == 0 and layer.events() == []


def test_non_invite_client_sends_once_and_uses_k_zero_when_reliable(layer):
    request = make_request("NOTIFY", "z9hG4bKnotify")
    tx = layer.send_request(request, PEER, reliable=True, now=0.0)
    assert layer.deadlines(tx) == {Timer.F: 32.0}
    assert sent(layer) == [request]
    challenge = make_response(request, 401, "Unauthorized")
    layer.receive(challenge, PEER, reliable=True, now=0.1)
    assert layer.events() == [ResponseReceived(tx, challenge)]
    assert len(layer) == 0 and layer.next_deadline() is None and layer.outgoing() == []


def test_non_invite_client_times_out_when_reliable_and_unanswered(layer):
    tx = layer.send_request(make_request(branch="z9hG4bKx"), PEER, reliable=True, now=3.0)
    assert run_timers(layer, 100.0) == [35.0]
    assert layer.events() == [TransactionTimedOut(tx)] and len(layer) == 0


def test_a_late_timer_restarts_from_when_it_fired(layer):
    tx = layer.send_request(make_request(branch="z9hG4bKx"), PEER, reliable=False, now=0.0)
    layer.on_timer(0.6)
    assert layer.deadlines(tx)[Timer.E] == pytest.approx(1.6)


@pytest.mark.parametrize("request_", [
    make_request("ACK"),
    make_request(branch=None),
    make_request(branch="z9hG4bK"),
    make_request(branch="1234"),
    Request(method="OPTIONS", uri="sip:b@example.com",
            headers=(("Via", "SIP/2.0/UDP h;branch=z9hG4bKa"), ("CSeq", "1 INVITE"))),
], ids=["ack", "no-branch", "bare-cookie", "rfc2543-branch", "cseq-method"])
def test_send_request_refuses_requests_that_cannot_start_a_transaction(layer, request_):
    with pytest.raises(TransactionError):
        layer.send_request(request_, PEER, reliable=False, now=0.0)
    assert len(layer) == 0 and layer.outgoing() == []


def test_send_request_refuses_a_branch_already_in_use(layer):
    layer.send_request(make_request(), PEER, reliable=False, now=0.0)
    with pytest.raises(TransactionError):
        layer.send_request(make_request(), PEER, reliable=False, now=0.0)
    layer.send_request(make_request("CANCEL"), PEER, reliable=False, now=0.0)  # its own method
    assert len(layer) == 2


# -- INVITE client (§17.1.1, RFC 6026) -----------------------------------------------------------

INVITE_ROUTES = (("Route", "<sip:p1.example.com;lr>"), ("Route", "<sip:p2.example.com;lr>"),
                 ("Contact", "<sip:alice@192.0.2.4>"), ("Content-Type", "application/sdp"))


def make_invite(**kwargs) -> Request:
    invite = make_request("INVITE", "z9hG4bKinv1", cseq=314159, extra=INVITE_ROUTES, **kwargs)
    via = "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKinv1, SIP/2.0/UDP lb.example.com"
    return Request(method="INVITE", uri=invite.uri, body=b"v=0\r\n",
                   headers=(("Via", via), *invite.headers[1:]))


def test_invite_client_retransmits_on_timer_a_until_timer_b(layer):
    invite = make_invite()
    tx = layer.send_request(invite, PEER, reliable=False, now=0.0)
    assert layer.state(tx) is TxState.CALLING
    assert layer.deadlines(tx) == {Timer.A: 0.5, Timer.B: 32.0}
    fired = run_timers(layer, 100.0)
    assert fired == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5, 32.0]  # A doubles with no cap
    assert sent(layer) == [invite] * 7  # the first send and six retransmissions
    assert layer.events() == [TransactionTimedOut(tx)] and len(layer) == 0


def test_invite_client_stops_retransmitting_when_a_provisional_arrives(layer):
    invite = make_invite()
    tx = layer.send_request(invite, PEER, reliable=False, now=0.0)
    layer.on_timer(0.5)
    ringing = make_response(invite, 180, "Ringing")
    layer.receive(ringing, PEER, reliable=False, now=1.0)
    assert layer.state(tx) is TxState.PROCEEDING
    assert layer.events() == [ResponseReceived(tx, ringing)]
    assert layer.deadlines(tx) == {} and layer.next_deadline() is None
    layer.receive(ringing, PEER, reliable=False, now=1.2)
    assert layer.events() == [ResponseReceived(tx, ringing)]


def test_invite_client_builds_the_ack_for_a_non_2xx_final_as_section_17_1_1_3_says(layer):
    invite = make_invite()
    target = object()
    tx = layer.send_request(invite, target, reliable=False, now=0.0)
    layer.outgoing()
    busy = make_response(invite, 486, "Busy Here", to_tag="8321234356")
    layer.receive(busy, PEER, reliable=False, now=0.3)
    assert layer.events() == [ResponseReceived(tx, busy)]
    (out,) = layer.outgoing()
    assert out.target is target
    assert out.message.to_bytes() == (
        b"ACK sip:bob@biloxi.example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKinv1\r\n"
        b"Route: <sip:p1.example.com;lr>\r\n"
        b"Route: <sip:p2.example.com;lr>\r\n"
        b"Max-Forwards: 70\r\n"
        b"From: <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
        b"To: <sip:bob@biloxi.example.com>;tag=8321234356\r\n"
        b"Call-ID: a84b4c76e66710\r\n"
        b"CSeq: 314159 ACK\r\n"
        b"Content-Length: 0\r\n\r\n")
    assert layer.state(tx) is TxState.COMPLETED
    assert layer.deadlines(tx) == {Timer.D: 32.3}


def test_invite_client_resends_the_ack_for_each_retransmitted_final(layer):
    invite = make_invite()
    tx = layer.send_request(invite, PEER, reliable=False, now=0.0)
    layer.outgoing()
    busy = make_response(invite, 486, "Busy Here")
    layer.receive(busy, PEER, reliable=False, now=0.3)
    (ack,) = sent(layer)
    layer.events()
    for now in (0.8, 1.8, 3.8):
        layer.receive(busy, PEER, reliable=False, now=now)
        assert sent(layer) == [ack]
    assert layer.events() == []
    assert run_timers(layer, 100.0) == [32.3]
    assert len(layer) == 0 and layer.events() == []


def test_invite_client_ends_at_once_after_the_ack_when_reliable(layer):
    invite = make_invite()
    tx = layer.send_request(invite, PEER, reliable=True, now=0.0)
    assert layer.deadlines(tx) == {Timer.B: 32.0}  # no Timer A on a reliable transport
    layer.receive(make_response(invite, 404, "Not Found"), PEER, reliable=True, now=0.1)
    assert [m.method for m in sent(layer)] == ["INVITE", "ACK"]
    assert len(layer) == 0 and layer.next_deadline() is None


def test_invite_client_passes_every_2xx_up_when_accepted(layer):
    invite = make_invite()
    tx = layer.send_request(invite, PEER, reliable=False, now=0.0)
    layer.outgoing()
    ok = make_response(invite, 200, "OK")
    layer.receive(ok, PEER, reliable=False, now=0.2)
    assert layer.state(tx) is TxState.ACCEPTED
    assert layer.deadlines(tx) == {Timer.M: 32.2}
    other_fork = make_response(invite, 200, "OK", to_tag="fork2")
    layer.receive(ok, PEER, reliable=False, now=0.7)
    layer.receive(other_fork, PEER, reliable=False, now=0.8)
    layer.receive(make_response(invite, 180), PEER, reliable=False, now=0.9)  # absorbed
    assert layer.events() == [ResponseReceived(tx, ok)] * 2 + [ResponseReceived(tx, other_fork)]
    assert layer.outgoing() == []  # the TU ACKs a 2xx itself
    assert run_timers(layer, 100.0) == [32.2]
    assert len(layer) == 0


def test_send_queues_a_message_outside_any_transaction(layer):
    ack = make_request("ACK", "z9hG4bKack2xx")
    layer.send(ack, PEER)
    assert layer.outgoing() == [Outgoing(ack, PEER)] and len(layer) == 0


def test_terminate_drops_a_transaction_silently(layer):
    invite = make_invite()
    tx = layer.send_request(invite, PEER, reliable=False, now=0.0)
    layer.receive(make_response(invite, 180), PEER, reliable=False, now=0.1)
    layer.terminate(tx)
    assert len(layer) == 0 and layer.state(tx) is TxState.TERMINATED
    layer.outgoing(), layer.events()
    layer.receive(make_response(invite, 487), PEER, reliable=False, now=40.0)
    assert layer.events() == [] and layer.outgoing() == []
    with pytest.raises(TransactionError):
        layer.terminate(tx)


# -- CANCEL (§9.2) -------------------------------------------------------------------------------

def make_cancel(invite: Request) -> Request:
    """§9.1: the CANCEL copies the INVITE's Request-URI, top Via, Call-ID, To, From and CSeq
    number."""
    keep = ("Via", "To", "From", "Call-ID")
    headers = [(n, v) for n, v in invite.headers if n in keep]
    number = invite.header("CSeq").split()[0]
    headers += [("Max-Forwards", "70"), ("CSeq", f"{number} CANCEL"), ("Content-Length", "0")]
    return Request(method="CANCEL", uri=invite.uri, headers=tuple(headers))


def test_cancel_of_a_pending_invite_is_answered_200_and_reported(layer):
    invite = make_request("INVITE")
    tx = new_server(layer, invite)
    layer.respond(tx, make_response(invite, 180, "Ringing", to_tag="uas1"), now=0.0)
    layer.outgoing()
    cancel = make_cancel(invite)
    layer.receive(cancel, PEER, reliable=False, now=1.0)
    assert layer.events() == [CancelReceived(tx, cancel)]
    (out,) = layer.outgoing()
    assert out.target == PEER and out.message.status == 200
    assert out.message.header("To") == "<sip:bob@biloxi.example.com>;tag=uas1"  # as the INVITE's
    assert out.message.header("CSeq") == "1 CANCEL"
    assert out.message.values("Via") == invite.values("Via")
    layer.respond(tx, make_response(invite, 487, "Request Terminated", to_tag="uas1"), now=1.1)
    assert layer.state(tx) is TxState.COMPLETED
    assert [m.status for m in sent(layer)] == [487]


def test_a_retransmitted_cancel_gets_the_same_answer_and_no_second_event(layer):
    invite = make_request("INVITE")
    new_server(layer, invite)
    cancel = make_cancel(invite)
    layer.receive(cancel, PEER, reliable=False, now=1.0)
    layer.events()
    first = sent(layer)
    layer.receive(cancel, PEER, reliable=False, now=1.5)
    assert [m.to_bytes() for m in sent(layer)] == [m.to_bytes() for m in first]
    assert layer.events() == []


def test_cancel_matching_nothing_is_answered_481(layer):
    cancel = make_cancel(make_request("INVITE", "z9hG4bKgone"))
    layer.receive(cancel, PEER, reliable=False, now=0.0)
    assert layer.events() == [CancelReceived(None, cancel)]
    (response,) = sent(layer)
    assert response.status == 481 and ";tag=" in response.header("To")
    run_timers(layer, 100.0)
    assert len(layer) == 0


def test_cancel_after_the_final_response_is_answered_200_and_cancels_nothing(layer):
    invite = make_request("INVITE")
    tx = new_server(layer, invite)
    layer.respond(tx, make_response(invite, 200, "OK"), now=0.0)
    layer.outgoing()
    cancel = make_cancel(invite)
    layer.receive(cancel, PEER, reliable=True, now=0.5)
    assert layer.events() == [CancelReceived(None, cancel)]  # §9.2: no effect
    assert [m.status for m in sent(layer)] == [200]
    assert layer.state(tx) is TxState.ACCEPTED


def test_cancel_uses_the_injected_tag_factory_when_no_tag_was_sent():
    layer = TransactionLayer(TimerConfig(), tag_factory=lambda: "injected")
    invite = make_request("INVITE")
    new_server(layer, invite)
    layer.receive(make_cancel(invite), PEER, reliable=False, now=0.0)
    (response,) = sent(layer)
    assert response.header("To") == "<sip:bob@biloxi.example.com>;tag=injected"


def test_cancel_tag_is_stable_without_a_tag_factory(layer):
    cancel = make_cancel(make_request("INVITE", "z9hG4bKgone"))
    layer.receive(cancel, PEER, reliable=True, now=0.0)
    other = TransactionLayer(TimerConfig())
    other.receive(cancel, PEER, reliable=True, now=0.0)
    assert sent(layer)[0].header("To") == sent(other)[0].header("To")


# -- RFC 2543 peers (§17.2.3; RFC 4475 §3.4.1 and §3.2.1) --------------------------------------

def test_rfc2543_invite_retransmission_is_matched_without_a_branch(layer):
    invite = read_corpus("invalid/inv2543.dat")
    assert invite.header("Via") == "SIP/2.0/UDP iftgw.example.com"
    tx = new_server(layer, invite)
    trying = make_response(invite, 100, "Trying")
    layer.respond(tx, trying, now=0.0)
    layer.outgoing()
    layer.receive(read_corpus("invalid/inv2543.dat"), PEER, reliable=False, now=0.5)
    assert sent(layer) == [trying] and layer.events() == [] and len(layer) == 1


def test_rfc2543_ack_matches_by_the_to_tag_of_the_response_sent(layer):
    invite = read_corpus("invalid/inv2543.dat")
    tx = new_server(layer, invite)
    busy = make_response(invite, 486, "Busy Here", to_tag="2543tag")
    layer.respond(tx, busy, now=0.0)
    layer.outgoing()
    wrong_tag = make_ack_2543(invite, "other")
    layer.receive(wrong_tag, PEER, reliable=False, now=0.2)
    assert layer.events() == [AckReceived(wrong_tag, PEER)] and layer.state(tx) is TxState.COMPLETED
    layer.receive(make_ack_2543(invite, "2543tag"), PEER, reliable=False, now=0.3)
    assert layer.state(tx) is TxState.CONFIRMED and layer.events() == []
    run_timers(layer, 100.0)
    assert len(layer) == 0


def make_ack_2543(invite: Request, to_tag: str) -> Request:
    return Request(method="ACK", uri=invite.uri, headers=(
        ("Via", invite.header("Via")), ("From", invite.header("From")),
        ("To", f"{invite.header('To')};tag={to_tag}"), ("Call-ID", invite.header("Call-ID")),
        ("CSeq", "56 ACK"), ("Content-Length", "0")))


def test_rfc2543_ack_for_a_2xx_goes_to_the_tu_when_accepted(layer):
    invite = read_corpus("invalid/inv2543.dat")
    tx = new_server(layer, invite)
    layer.respond(tx, make_response(invite, 200, "OK", to_tag="ok2543"), now=0.0)
    ack = make_ack_2543(invite, "ok2543")
    layer.receive(ack, PEER, reliable=False, now=0.1)
    assert layer.events() == [AckReceived(ack, PEER)] and layer.state(tx) is TxState.ACCEPTED


@pytest.mark.parametrize("change", [
    ("Call-ID", "another-call-id"), ("CSeq", "57 INVITE"), ("From", "<sip:x@example.net>;tag=1"),
    ("Via", "SIP/2.0/UDP other.example.com"),
])
def test_rfc2543_requests_differing_in_a_matched_field_are_new_transactions(layer, change):
    invite = read_corpus("invalid/inv2543.dat")
    new_server(layer, invite)
    name, value = change
    headers = tuple((n, value if n == name else v) for n, v in invite.headers)
    other = Request(method="INVITE", uri=invite.uri, headers=headers, body=invite.body)
    second = new_server(layer, other)
    assert len(layer) == 2 and second


def test_rfc2543_request_uri_is_part_of_the_match(layer):
    invite = read_corpus("invalid/inv2543.dat")
    new_server(layer, invite)
    other = Request(method="INVITE", uri="sip:UserC@example.com", headers=invite.headers, body=invite.body)
    new_server(layer, other)
    assert len(layer) == 2


def test_rfc2543_matching_ignores_the_received_and_rport_the_server_adds(layer):
    invite = read_corpus("invalid/inv2543.dat")
    def stamped(port: int) -> Request:
        headers = tuple((n, f"{v};received=198.51.100.7;rport={port}" if n == "Via" else v)
                        for n, v in invite.headers)
        return Request(method="INVITE", uri=invite.uri, headers=headers, body=invite.body)
    new_server(layer, stamped(5060))
    layer.receive(stamped(40001), PEER, reliable=False, now=0.5)
    assert layer.events() == [] and len(layer) == 1


def test_rfc2543_cancel_finds_the_invite(layer):
    invite = read_corpus("invalid/inv2543.dat")
    tx = new_server(layer, invite)
    cancel = make_cancel(invite)
    layer.receive(cancel, PEER, reliable=False, now=0.1)
    assert layer.events() == [CancelReceived(tx, cancel)]
    assert [m.status for m in sent(layer)] == [200]


def test_a_bare_cookie_branch_falls_back_to_rfc2543_matching(layer):
    options = read_corpus("invalid/badbranch.dat")
    assert options.header("Via").endswith(";branch=z9hG4bK")
    tx = new_server(layer, options)
    ok = make_response(options, 200, "OK")
    layer.respond(tx, ok, now=0.0)
    layer.outgoing()
    layer.receive(read_corpus("invalid/badbranch.dat"), PEER, reliable=False, now=0.5)
    assert sent(layer) == [ok] and layer.events() == []
    # another request with the same bare "branch" is not taken for a retransmission
    headers = tuple((n, "another.call.id" if n == "Call-ID" else v) for n, v in options.headers)
    other = Request(method="OPTIONS", uri=options.uri, headers=headers)
    assert new_server(layer, other) != tx
    assert len(layer) == 2


# -- everything ends ---------------------------------------------------------------------------

def test_every_transaction_ends_and_the_layer_is_empty_afterwards(layer):
    invite_in = make_request("INVITE", "z9hG4bKin1")
    options_in = make_request("OPTIONS", "z9hG4bKin2")
    a = new_server(layer, invite_in)
    b = new_server(layer, options_in)
    inv2543 = read_corpus("invalid/inv2543.dat")
    c = new_server(layer, inv2543)
    layer.respond(a, make_response(invite_in, 200), now=0.0)
    layer.respond(b, make_response(options_in, 200), now=0.0)
    layer.respond(c, make_response(inv2543, 603), now=0.0)
    layer.send_request(make_invite(), PEER, reliable=False, now=0.0)
    layer.send_request(make_request("NOTIFY", "z9hG4bKout2"), PEER, reliable=False, now=0.0)
    layer.receive(make_cancel(make_request("INVITE", "z9hG4bKnone")), PEER, reliable=False, now=0.0)
    assert len(layer) == 6
    run_timers(layer, 1000.0)
    assert len(layer) == 0 and layer.next_deadline() is None
    assert layer._server == {} and layer._client == {} and layer._cancellable == {}
    assert layer._acks == {} and layer._index == {}


# -- counts read by the metrics ------------------------------------------------------------------

def test_retransmissions_are_counted_where_they_happen(layer):
    """Sent: every re-send on Timer E (here 10 before Timer F at 64*T1); received: a request
    absorbed by its transaction. Nothing else counts."""
    request = make_request("OPTIONS", "z9hG4bKcounted")
    layer.send_request(request, PEER, reliable=False, now=0.0)
    run_timers(layer, 40.0)
    assert len(sent(layer)) == 11 and layer.retransmissions_sent == 10
    assert len(layer) == 0 and isinstance(layer.events()[-1], TransactionTimedOut)
    incoming = make_request("REGISTER", "z9hG4bKincoming")
    tx = new_server(layer, incoming)
    layer.receive(incoming, PEER, reliable=False, now=0.1)
    layer.respond(tx, make_response(incoming, 200), 0.2)
    layer.receive(incoming, PEER, reliable=False, now=0.3)
    assert layer.retransmissions_received == 2 and layer.retransmissions_sent == 10
    assert len(layer) == 1


def test_a_non_invite_client_transaction_lets_its_request_go_once_answered():
    """In Completed it only absorbs response retransmissions until Timer K: a bulk check-sync
    holds about a thousand such transactions, which must not each keep their request."""
    layer = TransactionLayer(TimerConfig())
    request = make_request("NOTIFY", branch="z9hG4bKshed1")
    tx = layer.send_request(request, PEER, reliable=False, now=0.0)
    sent(layer)
    assert layer._txs[tx].request is request
    layer.receive(make_response(request, 200), PEER, reliable=False, now=0.1)
    layer.receive(make_response(request, 200), PEER, reliable=False, now=0.2)  # a retransmission
    assert layer.state(tx) is TxState.COMPLETED and layer._txs[tx].request is None
    assert [type(e) for e in layer.events()] == [ResponseReceived] and sent(layer) == []
    run_timers(layer, 0.1 + 5.0)
    assert layer.state(tx) is TxState.TERMINATED

    invite = make_request("INVITE", branch="z9hG4bKshed2")
    itx = layer.send_request(invite, PEER, reliable=False, now=10.0)
    layer.receive(make_response(invite, 486), PEER, reliable=False, now=10.1)
    assert layer._txs[itx].request is invite  # an INVITE's ACK is built from it
