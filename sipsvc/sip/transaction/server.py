"""Server transactions (RFC 3261 §17.2): the INVITE table of ``invite_server`` or the
non-INVITE table of ``non_invite_server``, and what their actions do with messages."""

from __future__ import annotations

from typing import Any

from ..message import Request, Response
from . import invite_server, non_invite_server
from .events import AckReceived, Event, TransactionTimedOut
from .fsm import Action, Sink, Transaction


class ServerTransaction(Transaction):
    """A server transaction. ``arrival`` is what the TU is told about the request that created
    it: a ``RequestReceived``, or a ``CancelReceived`` for a CANCEL the layer answers itself."""

    def __init__(self, tx: str, *, request: Request, target: Any, reliable: bool, sink: Sink,
                 arrival: Event) -> None:
        self.is_invite = request.method == "INVITE"
        if self.is_invite:
            table, initial = invite_server.INVITE_SERVER, invite_server.INITIAL
        else:
            table, initial = non_invite_server.NON_INVITE_SERVER, non_invite_server.INITIAL
        super().__init__(tx, table, initial, request=request, target=target, reliable=reliable,
                         sink=sink)
        self.last_response: Response | None = None
        self._arrival = arrival

    def shed_request(self) -> None:
        """Let go of the request once the final response is sent: from then on the transaction
        only re-sends that response, yet it lives on for Timer J (32 s over UDP). A busy
        registrar holds tens of thousands of such transactions; without this each keeps the
        parsed request (about 20 objects the garbage collector walks on every full pass)."""
        self.request = None  # type: ignore[assignment]
        self._arrival = None  # type: ignore[assignment]

    def do(self, action: Action, message: Request | Response | None, target: Any) -> None:
        if action is Action.PASS_REQUEST:
            self.report(self._arrival)
        elif action is Action.SEND_RESPONSE:
            assert isinstance(message, Response)
            self.last_response = message
            self.send(message)
        elif action is Action.RESEND_RESPONSE:
            if self.last_response is not None:  # a retransmission before any response: absorbed
                self.send(self.last_response)
        elif action is Action.PASS_ACK:
            assert isinstance(message, Request)
            self.report(AckReceived(message, target))
        elif action is Action.TIME_OUT:
            self.report(TransactionTimedOut(self.id))
        else:
            raise AssertionError(f"{action} is not a server action")
