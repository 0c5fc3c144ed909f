"""The transaction layer (RFC 3261 §17, with RFC 6026 for INVITE 2xx): routes each message to
its transaction (§17.1.3, §17.2.3), creates server transactions for new requests, answers
CANCEL (§9.2), and hands back what to send and what to tell the transaction user (TU).

Pure and synchronous, like aioquic's connection: the caller passes ``now`` in, drains
``outgoing()`` and ``events()`` after each call, and calls ``on_timer(now)`` when
``next_deadline()`` comes. A transaction is removed as soon as it terminates.

A non-INVITE request the TU can answer on arrival (a registrar's challenge) may skip the
server transaction: ``answer`` keeps only its final response, for retransmissions, until
Timer J would have ended the transaction (see there).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

from ..errors import SipParseError
from ..headers import parse_cseq
from ..message import Request, Response
from ..uas import make_response
from .builders import derived_tag
from .client import ClientTransaction
from .errors import TransactionError
from .events import AckReceived, CancelReceived, Event, Outgoing, RequestReceived
from .fsm import Input, Sink, Transaction, TxState, response_input, timer_input
from .keys import (BranchIdentity, Identity, ServerKey, client_key, identity, response_key,
                   response_tag, server_key, with_to_tag)
from .server import ServerTransaction
from .timers import Timer, TimerConfig, TimerQueue, duration

# Timers whose firing re-sends a message: the request (A, E) or the INVITE's response (G).
RETRANSMIT_TIMERS = frozenset({Timer.A, Timer.E, Timer.G})


class TransactionLayer:
    """All transactions of one SIP endpoint.

    Args:
        timers: T1, T2 and T4 (RFC 3261 §17.1.1.1).
        tag_factory: makes the To tag of the layer's own answer to a CANCEL that matches no
            transaction which already sent a tag (§8.2.6.2); by default one is derived from the
            CANCEL, so the core needs no randomness.
    """

    def __init__(self, timers: TimerConfig, *, tag_factory: Callable[[], str] | None = None) -> None:
        self._events: list[Event] = []
        self._outgoing: list[Outgoing] = []
        self._timers = TimerQueue()
        self._sink = Sink(self._events, self._outgoing, self._timers, timers, self._forget)
        self._tag = (lambda request: tag_factory()) if tag_factory else derived_tag
        self._ids = itertools.count(1)
        self._txs: dict[str, Transaction] = {}
        self._server: dict[ServerKey, str] = {}
        self._cancellable: dict[Identity, str] = {}  # §9.2: server transactions a CANCEL may name
        self._acks: dict[Identity, str] = {}  # RFC 2543 ACKs, by the To tag of the response sent
        self._client: dict[tuple[str, str], str] = {}
        self._index: dict[str, list[tuple[dict, Any]]] = {}
        # Requests answered on arrival (``answer``): the response each retransmission gets, and
        # when each is forgotten, in order (all live for Timer J, so a FIFO is sorted).
        self._answered: dict[ServerKey, Outgoing] = {}
        self._answered_until: deque[tuple[float, ServerKey, Outgoing]] = deque()
        self._answered_for = duration(Timer.J, timers, reliable=False)
        # Read by the metrics at scrape time; counted only where a retransmission happens.
        self.retransmissions_received = 0  # requests (and CANCELs) absorbed by their transaction
        self.retransmissions_sent = 0  # messages re-sent on Timer A, E or G

    # -- input from the network --------------------------------------------------------------

    def receive(self, message: Request | Response, target: Any, *, reliable: bool, now: float) -> None:
        """A message from the network; ``target`` comes back with every message sent for it.

        Raises:
            TransactionError: a request without a usable top Via or CSeq (``check_request``
                refuses those before they get here).
        """
        if isinstance(message, Response):
            self._receive_response(message, now)
        elif not isinstance(message, Request):
            raise TransactionError(f"not a SIP message: {type(message).__name__}")
        elif message.method == "ACK":
            self._receive_ack(message, target, now)
        elif message.method == "CANCEL":
            self._receive_cancel(message, target, reliable, now)
        else:
            self._receive_request(message, target, reliable, now)

    def _receive_request(self, request: Request, target: Any, reliable: bool, now: float) -> None:
        key = server_key(request)
        existing = self._txs.get(self._server.get(key, ""))
        if existing is not None:  # a retransmission: the transaction absorbs it (§17.2)
            self.retransmissions_received += 1
            existing.handle(Input.REQUEST, now, request, target)
            return
        answered = self._answered.get(key)
        if answered is not None:  # a retransmission of a request answered on arrival
            self.retransmissions_received += 1
            self._outgoing.append(answered)
            return
        tx = self._new_id("s")
        self._start_server(tx, key, request, target, reliable, now, RequestReceived(tx, request, target))

    def _receive_ack(self, ack: Request, target: Any, now: float) -> None:
        ident, method = server_key(ack)
        if isinstance(ident, BranchIdentity):
            tx_id = self._server.get((ident, method))
        else:  # §17.2.3: an RFC 2543 ACK carries the To tag of the response it acknowledges
            tx_id = self._acks.get(ident) or self._server.get((ident, method))
        tx = self._txs.get(tx_id or "")
        if tx is None:  # the ACK for a 2xx: the TU's (§17.2.3, RFC 6026 §8.7)
            self._events.append(AckReceived(ack, target))
            return
        tx.handle(Input.ACK, now, ack, target)

    def _receive_cancel(self, cancel: Request, target: Any, reliable: bool, now: float) -> None:
        """§9.2: answer the CANCEL through its own non-INVITE server transaction, 200 when it
        matches a server transaction (481 otherwise), and tell the TU if an INVITE still in
        Proceeding was cancelled (the TU then answers that INVITE 487)."""
        key = server_key(cancel)
        existing = self._txs.get(self._server.get(key, ""))
        if existing is not None:
            self.retransmissions_received += 1
            existing.handle(Input.REQUEST, now, cancel, target)
            return
        matched = self._txs.get(self._cancellable.get(key[0], ""))
        pending = (isinstance(matched, ServerTransaction) and matched.is_invite
                   and matched.state is TxState.PROCEEDING)
        tx = self._new_id("s")
        server = self._start_server(tx, key, cancel, target, reliable, now,
                                    CancelReceived(matched.id if pending else None, cancel))
        status = 200 if matched is not None else 481
        response = make_response(cancel, status, to_tag=self._cancel_tag(cancel, matched))
        server.handle(response_input(status, sending=True), now, response)

    def _cancel_tag(self, cancel: Request, matched: Transaction | None) -> str:
        """§9.2: the To tag of the CANCEL's response SHOULD be the one the INVITE's used."""
        if isinstance(matched, ServerTransaction) and matched.last_response is not None:
            tag = response_tag(matched.last_response)
            if tag:
                return tag
        return self._tag(cancel)

    def _receive_response(self, response: Response, now: float) -> None:
        key = response_key(response)
        tx = self._txs.get(self._client.get(key, "")) if key else None
        if tx is None:  # §17.1.3: matches no client transaction; a UA drops it (RFC 4475 §3.1.1.12)
            return
        tx.handle(response_input(response.status, sending=False), now, response)
        if response.status >= 200 and isinstance(tx, ClientTransaction) and not tx.is_invite:
            tx.shed_request()

    # -- input from the transaction user -----------------------------------------------------

    def respond(self, tx: str, response: Response, now: float) -> None:
        """Send ``response`` on the server transaction ``tx``.

        Raises:
            TransactionError: ``tx`` is no live server transaction, or ``response`` is not a
                response with a status from 100 to 699.
        """
        server = self._txs.get(tx)
        if not isinstance(server, ServerTransaction):
            raise TransactionError(f"no server transaction {tx!r} (unknown or terminated)")
        if not isinstance(response, Response) or not 100 <= response.status <= 699:
            raise TransactionError("respond() takes a Response with a status from 100 to 699")
        server.handle(response_input(response.status, sending=True), now, response)
        if server.alive and server.is_invite and server.last_response is response:
            self._index_ack(server, response)
        if response.status >= 200 and not server.is_invite:
            server.shed_request()

    def holds(self, request: Request) -> bool:
        """True when ``request`` is a retransmission of one the layer still holds (a live server
        transaction, or an answer on arrival): ``receive`` absorbs it."""
        key = server_key(request)
        return key in self._server or key in self._answered

    def answer(self, request: Request, response: Response, target: Any, *, reliable: bool, now: float) -> bool:
        """Answer a new non-INVITE request on its arrival (instead of ``receive``) with its
        final response, without a server transaction or an event for the TU.

        What the transaction would do from here on is keep that response and send it to every
        retransmission of the request until Timer J ends it (§17.2.2; at once over a reliable
        transport): that is all that is kept. RFC 3261 §8.2.7 lets a UAS answer a challenge with
        no state at all; keeping the response means a retransmission still gets the same one.
        A CANCEL for such a request finds nothing to cancel (481); §9.1 has UACs never send one
        for a non-INVITE request.

        Returns False, sending nothing, when ``request`` belongs to a request received before
        (a retransmission): it must go to ``receive``.

        Raises:
            TransactionError: an INVITE, ACK or CANCEL, or a provisional or malformed response.
        """
        if request.method in ("INVITE", "ACK", "CANCEL"):
            raise TransactionError(f"a {request.method} cannot be answered on arrival")
        if not isinstance(response, Response) or not 200 <= response.status <= 699:
            raise TransactionError("answer() takes a final response (200 to 699)")
        key = server_key(request)
        if key in self._server or key in self._answered:
            return False
        outgoing = Outgoing(response, target)
        self._outgoing.append(outgoing)
        if not reliable:
            self._answered[key] = outgoing
            self._answered_until.append((now + self._answered_for, key, outgoing))
        return True

    def send_request(self, request: Request, target: Any, *, reliable: bool, now: float) -> str:
        """Start a client transaction for ``request`` (sent to ``target``) and return its id.

        Raises:
            TransactionError: an ACK (never a transaction, §17.1), a top Via branch without the
                RFC 3261 cookie, a CSeq that does not name the method, or a branch in use.
        """
        if not isinstance(request, Request) or request.method == "ACK":
            raise TransactionError("an ACK is sent with send(), not in a transaction (§17.1)")
        key = client_key(request)
        try:
            cseq = parse_cseq(request.header("CSeq") or "")
        except SipParseError as exc:
            raise TransactionError("no usable CSeq") from exc
        if cseq.method != request.method:
            raise TransactionError("the CSeq method must be the request's (§8.1.1.5)")
        if key in self._client:
            raise TransactionError(f"branch {key[0]!r} already has a {key[1]} transaction")
        tx = self._new_id("c")
        client = ClientTransaction(tx, request=request, target=target, reliable=reliable, sink=self._sink)
        self._register(client, [(self._client, key)])
        client.begin(now)
        return tx

    def client_transaction(self, branch: str, method: str) -> str | None:
        """The live client transaction for ``method`` whose top Via has ``branch``, if any (a
        CANCEL's INVITE, §9.1)."""
        return self._client.get((branch, method))

    def send(self, message: Request | Response, target: Any) -> None:
        """Queue a message outside any transaction: the ACK for a 2xx and its retransmissions
        (§13.2.2.4), or a stateless response."""
        self._outgoing.append(Outgoing(message, target))

    def terminate(self, tx: str) -> None:
        """Destroy a transaction without telling anyone: for the TU that gives up on an INVITE
        that stays in Proceeding after its CANCEL (§9.1: 64*T1 without a final response).

        Raises:
            TransactionError: ``tx`` is unknown or already terminated.
        """
        transaction = self._txs.get(tx)
        if transaction is None:
            raise TransactionError(f"no transaction {tx!r}")
        transaction.state = TxState.TERMINATED
        self._timers.stop_all(tx)
        self._forget(tx)

    # -- output and timers -------------------------------------------------------------------

    def events(self) -> list[Event]:
        """The events for the TU since the last call, in order."""
        events = list(self._events)
        self._events.clear()
        return events

    def outgoing(self) -> list[Outgoing]:
        """The messages to send since the last call, in order."""
        outgoing = list(self._outgoing)
        self._outgoing.clear()
        return outgoing

    def next_deadline(self) -> float | None:
        """When ``on_timer`` must next be called, or None with no timer running."""
        deadline = self._timers.next_deadline()
        if self._answered_until:
            forget_at = self._answered_until[0][0]
            return forget_at if deadline is None or forget_at < deadline else deadline
        return deadline

    def on_timer(self, now: float) -> None:
        """Fire every timer due at or before ``now``, earliest first. A restarted timer runs
        from ``now``, the moment it fired (§17.1.1.2: "reset the timer with a value of 2*T1")."""
        while (due := self._timers.pop_due(now)) is not None:
            tx, timer = due
            transaction = self._txs.get(tx)
            if transaction is not None:
                if timer in RETRANSMIT_TIMERS:
                    self.retransmissions_sent += 1
                transaction.handle(timer_input(timer), now)
        answered, until = self._answered, self._answered_until
        while until and until[0][0] <= now:
            _, key, outgoing = until.popleft()
            if answered.get(key) is outgoing:
                del answered[key]

    def state(self, tx: str) -> TxState:
        """The state of ``tx``; TERMINATED once it is gone (or for an id never issued)."""
        transaction = self._txs.get(tx)
        return transaction.state if transaction is not None else TxState.TERMINATED

    def deadlines(self, tx: str) -> dict[Timer, float]:
        """The timers running on ``tx`` and when they fire."""
        return self._timers.deadlines(tx)

    def __len__(self) -> int:
        """Transactions alive, counting the requests answered on arrival still remembered."""
        return len(self._txs) + len(self._answered)

    # -- bookkeeping -------------------------------------------------------------------------

    def _new_id(self, kind: str) -> str:
        return f"{kind}{next(self._ids)}"

    def _start_server(self, tx: str, key: ServerKey, request: Request, target: Any, reliable: bool,
                      now: float, arrival: Event) -> ServerTransaction:
        server = ServerTransaction(tx, request=request, target=target, reliable=reliable,
                                   sink=self._sink, arrival=arrival)
        entries: list[tuple[dict, Any]] = [(self._server, key)]
        if request.method != "CANCEL":
            entries.append((self._cancellable, key[0]))
        self._register(server, entries)
        server.begin(now)
        return server

    def _index_ack(self, server: ServerTransaction, response: Response) -> None:
        """Remember the identity an RFC 2543 ACK for ``response`` will have (§17.2.3)."""
        tag = response_tag(response)
        ident = identity(server.request)
        if tag and not isinstance(ident, BranchIdentity):
            key = with_to_tag(ident, tag)
            if self._acks.get(key) != server.id:
                self._acks[key] = server.id
                self._index[server.id].append((self._acks, key))

    def _register(self, transaction: Transaction, entries: list[tuple[dict, Any]]) -> None:
        self._txs[transaction.id] = transaction
        self._index[transaction.id] = entries
        for table, key in entries:
            table[key] = transaction.id

    def _forget(self, tx: str) -> None:
        self._txs.pop(tx, None)
        for table, key in self._index.pop(tx, []):
            if table.get(key) == tx:
                del table[key]
