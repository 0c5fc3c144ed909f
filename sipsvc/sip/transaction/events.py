"""What the transaction layer hands back (RFC 3261 §17): messages to put on the wire, and events
for the transaction user (TU). Frozen dataclasses, as h11 does with its events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..message import Request, Response


@dataclass(frozen=True)
class Outgoing:
    """Something to send. ``target`` is exactly what the caller passed with the request the
    message belongs to (``receive`` for server transactions, ``send_request`` for client ones)."""

    message: Request | Response
    target: Any

    # Written out for speed (see "Written-out __init__" at the top of sip/message.py).
    def __init__(self, message: Request | Response, target: Any) -> None:
        fields = self.__dict__
        fields["message"] = message
        fields["target"] = target


@dataclass(frozen=True)
class RequestReceived:
    """A request that created a new server transaction; answer it with ``respond(tx, ...)``.
    Retransmissions are absorbed by the transaction and never reported again."""

    tx: str
    request: Request
    target: Any

    # Written out for speed (see "Written-out __init__" at the top of sip/message.py).
    def __init__(self, tx: str, request: Request, target: Any) -> None:
        fields = self.__dict__
        fields["tx"] = tx
        fields["request"] = request
        fields["target"] = target


@dataclass(frozen=True)
class ResponseReceived:
    """A response for a client transaction. Retransmitted final responses are absorbed, except
    INVITE 2xx retransmissions in the Accepted state, which the TU needs (RFC 6026 §8.4)."""

    tx: str
    response: Response


@dataclass(frozen=True)
class TransactionTimedOut:
    """Timer B or F fired (client, §17.1.1.2 / §17.1.2.2), or Timer H fired on an INVITE server
    transaction that never got its ACK (§17.2.1). The transaction has terminated."""

    tx: str


@dataclass(frozen=True)
class AckReceived:
    """An ACK that no server transaction absorbs: the ACK for a 2xx (§13.3.1.4, §17.1.1.3), which
    belongs to the TU, including one matching an INVITE server transaction in Accepted
    (RFC 6026 §8.7)."""

    request: Request
    target: Any


@dataclass(frozen=True)
class CancelReceived:
    """A CANCEL, already answered by the layer (§9.2). ``tx`` is the INVITE server transaction it
    cancels (it was still in Proceeding: the TU should now answer it 487), or None."""

    tx: str | None
    request: Request


Event = RequestReceived | ResponseReceived | TransactionTimedOut | AckReceived | CancelReceived
