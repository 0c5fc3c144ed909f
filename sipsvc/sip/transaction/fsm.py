"""What the four transaction state machines of RFC 3261 §17 share: their states, inputs and
actions, the ``Transition`` a table maps each (state, input) pair to, and ``Transaction``, which
runs one table (as h11's ``_state.py`` keeps transitions as data and code apart).

Every table is total over its live states: ``complete`` fills the pairs a module does not list
with "stay, do nothing", which is what RFC 3261 asks for a timer that no longer applies and a
message to absorb. The Terminated state has no entries: a terminated transaction is removed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..message import Request, Response
from .events import Event, Outgoing
from .timers import IdentityEnum, Timer, TimerConfig, TimerQueue, duration


class TxState(IdentityEnum):
    """The states of RFC 3261 Figures 5–8, with Accepted from RFC 6026 §7."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class Input(IdentityEnum):
    """What can happen to a transaction after it was created."""

    REQUEST = "request retransmission"  # server, from the network
    ACK = "ACK"  # INVITE server, from the network
    SEND_1XX = "TU sends 1xx"
    SEND_2XX = "TU sends 2xx"
    SEND_FINAL = "TU sends 300-699"
    RECV_1XX = "1xx received"
    RECV_2XX = "2xx received"
    RECV_FINAL = "300-699 received"
    TIMER_A = "Timer A"
    TIMER_B = "Timer B"
    TIMER_D = "Timer D"
    TIMER_E = "Timer E"
    TIMER_F = "Timer F"
    TIMER_G = "Timer G"
    TIMER_H = "Timer H"
    TIMER_I = "Timer I"
    TIMER_J = "Timer J"
    TIMER_K = "Timer K"
    TIMER_L = "Timer L"
    TIMER_M = "Timer M"


TIMER_INPUTS = {Timer[member.name[-1]]: member for member in Input if member.name.startswith("TIMER_")}


def timer_input(timer: Timer) -> Input:
    return TIMER_INPUTS[timer]


def response_input(status: int, *, sending: bool) -> Input:
    """The input a response is: its class, sent by the TU or received from the network."""
    if status < 200:
        return Input.SEND_1XX if sending else Input.RECV_1XX
    if status < 300:
        return Input.SEND_2XX if sending else Input.RECV_2XX
    return Input.SEND_FINAL if sending else Input.RECV_FINAL


class Action(IdentityEnum):
    """What a transition does with the message that caused it."""

    PASS_REQUEST = "report the new request to the TU"  # RequestReceived / CancelReceived
    SEND_REQUEST = "send (or retransmit) the request"
    SEND_RESPONSE = "send the response the TU passed"
    RESEND_RESPONSE = "re-send the last response sent, if any"
    PASS_RESPONSE = "report the response to the TU"  # ResponseReceived
    SEND_ACK = "build the §17.1.1.3 ACK for the final response and send it"
    RESEND_ACK = "re-send that ACK"
    PASS_ACK = "report the ACK to the TU"  # AckReceived
    TIME_OUT = "report a timeout to the TU"  # TransactionTimedOut


@dataclass(frozen=True)
class Transition:
    """Go to ``target``, stop the ``stop`` timers, do the ``actions``, then start ``start``."""

    target: TxState
    actions: tuple[Action, ...] = ()
    start: tuple[Timer, ...] = ()
    stop: tuple[Timer, ...] = ()


Table = Mapping[tuple[TxState, Input], Transition]


def complete(entries: Table, states: Iterable[TxState], inputs: Iterable[Input]) -> Table:
    """``entries`` made total over ``states`` x ``inputs``: unlisted pairs stay and do nothing."""
    inputs = tuple(inputs)
    table = {(state, each): Transition(state) for state in states for each in inputs}
    unknown = set(entries) - set(table)
    if unknown:
        raise ValueError(f"entries outside the machine: {unknown}")
    table.update(entries)
    return table


@dataclass
class Sink:
    """Where transactions put their effects: the layer's queues and its timer heap."""

    events: list[Event]
    outgoing: list[Outgoing]
    timers: TimerQueue
    config: TimerConfig
    terminated: Callable[[str], None]


class Transaction:
    """One transaction running one table. Subclasses do the message actions."""

    def __init__(self, tx: str, table: Table, initial: Transition, *, request: Request,
                 target: Any, reliable: bool, sink: Sink) -> None:
        self.id = tx
        self.table = table
        self.initial = initial
        self.state = initial.target
        self.request = request
        self.target = target
        self.reliable = reliable
        self._sink = sink
        self._intervals: dict[Timer, float] = {}

    @property
    def alive(self) -> bool:
        return self.state is not TxState.TERMINATED

    def begin(self, now: float) -> None:
        """Run the initial transition (send the request, or report it to the TU)."""
        self.apply(self.initial, now)

    def handle(self, event: Input, now: float, message: Request | Response | None = None,
               target: Any = None) -> None:
        """Feed one input; ``message`` (and its ``target``) is the message that is the input."""
        if self.alive:
            self.apply(self.table[(self.state, event)], now, message, target)

    def apply(self, transition: Transition, now: float, message: Request | Response | None = None,
              target: Any = None) -> None:
        self.state = transition.target
        for timer in transition.stop:
            self._sink.timers.stop(self.id, timer)
        for action in transition.actions:
            self.do(action, message, target)
        expired = [timer for timer in transition.start if self._start(timer, now)]
        if not self.alive:
            self._sink.timers.stop_all(self.id)
            self._sink.terminated(self.id)
            return
        for timer in expired:  # a zero-length timer (reliable transports) fires at once
            self.handle(timer_input(timer), now)

    def _start(self, timer: Timer, now: float) -> bool:
        """Start ``timer``; True when its duration is zero, so that it has already expired."""
        length = duration(timer, self._sink.config, reliable=self.reliable,
                          previous=self._intervals.get(timer),
                          proceeding=self.state is TxState.PROCEEDING)
        if length is None:
            return False
        self._intervals[timer] = length
        if length <= 0:
            return True
        self._sink.timers.start(self.id, timer, now + length, length)
        return False

    def do(self, action: Action, message: Request | Response | None, target: Any) -> None:
        raise NotImplementedError

    def send(self, message: Request | Response) -> None:
        self._sink.outgoing.append(Outgoing(message, self.target))

    def report(self, event: Event) -> None:
        self._sink.events.append(event)
