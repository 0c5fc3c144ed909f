"""A placed quickcall's state: its legs (one INVITE of ours each, and the dialog it may set
up), the call with its record and event queue, and how an unanswered call's outcome is named.
The call's life is run by ``originator``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ..sip.dialog import Dialog
from ..sip.message import Request, Response
from ..transport.endpoint import Target

ANSWERED, NO_ANSWER, BUSY, FAILED, CANCELLED = "answered", "no_answer", "busy", "failed", "cancelled"
RINGING, CONNECTING, CONNECTED, ENDED = "ringing", "connecting", "connected", "ended"
BUSY_STATUSES = frozenset({486, 600})
NO_ANSWER_STATUSES = frozenset({408, 480, 487})


@dataclass(eq=False)
class Leg:
    """One INVITE of ours and the dialog it may set up."""

    name: str  # "phone" or "gateway"
    invite: Request
    target: Target
    state: str = "calling"  # calling, early (1xx seen), up (2xx accepted), closed
    wanted: bool = True  # False once we decided to cancel or drop it
    cancel_sent: bool = False
    final: int | None = None  # the final status when it was not a 2xx
    timed_out: bool = False  # Timer B: no final answer at all
    dialog: Dialog | None = None
    answer: Response | None = None  # its 2xx
    ack: Request | None = None


@dataclass(eq=False)
class Call:
    id: str
    account_id: str
    record: dict
    phones: list[Leg] = field(default_factory=list)
    gateway: Leg | None = None
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    settled: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    ended: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    saver: asyncio.Task | None = None  # the task writing the record to the store
    dirty: bool = False  # the record changed since the saver last read it

    def legs(self) -> list[Leg]:
        return self.phones + ([self.gateway] if self.gateway else [])


@dataclass(frozen=True)
class Placement:
    """What ``place`` needs to know about the call, from the device and the payload."""

    account_id: str
    device_id: str
    number: str  # as dialled (filtered)
    realm: str
    address_of_record: str
    caller_name: str  # what the phone shows
    callee_name: str | None  # what the far end sees
    callee_uri: str
    auto_answer: bool
    timeout: int


def failure(name: str, legs: list[Leg], *, late: bool) -> tuple[str, int | None, str | None]:
    """(outcome, status, reason) when no leg answered; ``late``: our timeout ended the ringing.
    Busy wins over no answer, which wins over failed."""
    finals = [leg.final for leg in legs if leg.final is not None]
    if busy := [status for status in finals if status in BUSY_STATUSES]:
        return BUSY, busy[0], None
    if late:
        return NO_ANSWER, None, "not answered within the timeout"
    if quiet := [status for status in finals if status in NO_ANSWER_STATUSES]:
        return NO_ANSWER, quiet[0], None
    if finals:
        return FAILED, finals[0], None
    return FAILED, None, f"no response from the {name} (Timer B)"
