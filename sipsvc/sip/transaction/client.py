"""Client transactions (RFC 3261 §17.1): the INVITE table of ``invite_client`` or the
non-INVITE table of ``non_invite_client``, and what their actions do with messages."""

from __future__ import annotations

from typing import Any

from ..message import Request, Response
from . import invite_client, non_invite_client
from .builders import build_ack
from .events import ResponseReceived, TransactionTimedOut
from .fsm import Action, Sink, Transaction


class ClientTransaction(Transaction):
    """A client transaction for ``request``, which is sent (and retransmitted) to ``target``,
    and so is the ACK for a non-2xx final (§17.1.1.3: to where the INVITE went)."""

    def __init__(self, tx: str, *, request: Request, target: Any, reliable: bool,
                 sink: Sink) -> None:
        self.is_invite = request.method == "INVITE"
        if self.is_invite:
            table, initial = invite_client.INVITE_CLIENT, invite_client.INITIAL
        else:
            table, initial = non_invite_client.NON_INVITE_CLIENT, non_invite_client.INITIAL
        super().__init__(tx, table, initial, request=request, target=target, reliable=reliable,
                         sink=sink)
        self.ack: Request | None = None

    def shed_request(self) -> None:
        """Let go of a non-INVITE request once its final response is in: in Completed the
        transaction only absorbs response retransmissions, for Timer K (5 s over UDP). A bulk
        check-sync keeps about a thousand such transactions; each held its request."""
        if not self.is_invite:
            self.request = None  # type: ignore[assignment]

    def do(self, action: Action, message: Request | Response | None, target: Any) -> None:
        if action is Action.SEND_REQUEST:
            self.send(self.request)
        elif action is Action.PASS_RESPONSE:
            assert isinstance(message, Response)
            self.report(ResponseReceived(self.id, message))
        elif action is Action.SEND_ACK:
            assert isinstance(message, Response)
            self.ack = build_ack(self.request, message)
            self.send(self.ack)
        elif action is Action.RESEND_ACK:
            if self.ack is not None:
                self.send(self.ack)
        elif action is Action.TIME_OUT:
            self.report(TransactionTimedOut(self.id))
        else:
            raise AssertionError(f"{action} is not a client action")
