"""The SIP transaction layer (RFC 3261 §17, RFC 6026): pure, no clock, no sockets.

``TransactionLayer`` is the entry point; each of the four state machines is a table in its own
module (``invite_server``, ``non_invite_server``, ``invite_client``, ``non_invite_client``).
"""

from .errors import TransactionError
from .events import (AckReceived, CancelReceived, Event, Outgoing, RequestReceived,
                     ResponseReceived, TransactionTimedOut)
from .fsm import Action, Input, Transition, TxState
from .keys import MAGIC_COOKIE
from .layer import TransactionLayer
from .timers import Timer, TimerConfig

__all__ = [
    "AckReceived", "Action", "CancelReceived", "Event", "Input", "MAGIC_COOKIE", "Outgoing",
    "RequestReceived", "ResponseReceived", "Timer", "TimerConfig", "TransactionError",
    "TransactionLayer", "TransactionTimedOut", "Transition", "TxState",
]
