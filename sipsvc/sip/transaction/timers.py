"""Transaction timers: RFC 3261 §17.1.1.1 and Table 4 (Appendix A), with Timers L and M of
RFC 6026 §8.11.

``TimerConfig`` carries T1, T2 and T4 (never module globals); ``duration`` says how long each
timer runs; ``TimerQueue`` keeps every running timer of every transaction in one queue, so the caller
needs a single wake-up (``next_deadline``), as aioquic's ``get_timer`` does.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class TimerConfig:
    """RFC 3261 §17.1.1.1: T1 is the RTT estimate, T2 the cap on non-INVITE request and INVITE
    response retransmit intervals, T4 how long a message may stay in the network."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.t1 <= self.t2 or self.t4 <= 0:
            raise ValueError("timers need 0 < T1 <= T2 and T4 > 0")


class IdentityEnum(Enum):
    """An enum hashed by identity, in C, instead of by Enum's Python-level hash of the name: its
    members are singletons compared by identity, and the transaction enums key every table and
    timer lookup of the layer."""

    __hash__ = object.__hash__


class Timer(IdentityEnum):
    """The timers of RFC 3261 Table 4 and RFC 6026 §8.11, named as there."""

    A = "A"  # INVITE client: request retransmit interval, unreliable only (§17.1.1.2)
    B = "B"  # INVITE client: transaction timeout in Calling
    C = "C"  # proxy INVITE timeout (§16.6 step 11): a user agent never starts it
    D = "D"  # INVITE client: wait for response retransmits in Completed
    E = "E"  # non-INVITE client: request retransmit interval, unreliable only (§17.1.2.2)
    F = "F"  # non-INVITE client: transaction timeout
    G = "G"  # INVITE server: response retransmit interval, unreliable only (§17.2.1)
    H = "H"  # INVITE server: wait for the ACK
    I = "I"  # noqa: E741 - INVITE server: wait for ACK retransmits in Confirmed
    J = "J"  # non-INVITE server: wait for request retransmits in Completed (§17.2.2)
    K = "K"  # non-INVITE client: wait for response retransmits in Completed
    L = "L"  # INVITE server: wait for INVITE retransmits in Accepted (RFC 6026 §8.7)
    M = "M"  # INVITE client: wait for 2xx retransmits in Accepted (RFC 6026 §8.4)


# Timer D: "at least 32 seconds" for unreliable transports (§17.1.1.2), and never shorter than
# the server's Timer H, which bounds its retransmissions of the final response.
TIMER_D_MINIMUM = 32.0


def duration(timer: Timer, config: TimerConfig, *, reliable: bool,
             previous: float | None = None, proceeding: bool = False) -> float | None:
    """How long ``timer`` runs, or None when it is not used on this transport.

    ``previous`` is the interval the timer ran last time (for the doubling timers A, E and G),
    ``proceeding`` whether a non-INVITE client transaction is in Proceeding (Timer E is then T2).
    """
    t1, t2, t4 = config.t1, config.t2, config.t4
    if timer in (Timer.A, Timer.E, Timer.G):
        if reliable:
            return None  # reliable transports never retransmit (§17.1.1.2, §17.1.2.2, §17.2.1)
        if timer is Timer.E and proceeding:
            return t2
        if previous is None:
            return t1
        return 2 * previous if timer is Timer.A else min(2 * previous, t2)
    if timer is Timer.D:
        return 0.0 if reliable else max(TIMER_D_MINIMUM, 64 * t1)
    if timer in (Timer.I, Timer.K):
        return 0.0 if reliable else t4
    if timer is Timer.J:
        return 0.0 if reliable else 64 * t1
    if timer is Timer.C:
        raise ValueError("Timer C belongs to proxies (§16.6 step 11)")
    return 64 * t1  # B, F, H, L, M


class TimerQueue:
    """Running timers of all transactions, in lanes of one duration each, stale entries skipped
    lazily.

    Timers of one duration started as time goes on are due in the order they started, so each
    lane is a FIFO: starting a timer appends to its lane, the next one due is the earliest head
    among a handful of lanes. (A heap of every deadline cost a log-depth sift per timer, over
    some 64,000 Timer J entries in a busy worker.) A deadline earlier than its lane's last one
    (a clock that went back, or a caller without a duration) is inserted in order instead.

    Each (transaction, timer) has at most one live deadline; restarting a timer replaces it.
    The live deadlines are kept per transaction, so ending one forgets its timers in one step
    (every transaction ends, most after starting a single timer).
    """

    def __init__(self) -> None:
        self._lanes: dict[float | None, deque[tuple[float, int, str, Timer]]] = {}
        self._live: dict[str, dict[Timer, tuple[int, float]]] = {}
        self._sequence = itertools.count()

    def start(self, tx: str, timer: Timer, deadline: float, length: float | None = None) -> None:
        """Run ``timer`` of ``tx`` until ``deadline``; ``length`` is its duration (its lane)."""
        sequence = next(self._sequence)
        running = self._live.get(tx)
        if running is None:
            running = self._live[tx] = {}
        running[timer] = (sequence, deadline)
        lane = self._lanes.get(length)
        if lane is None:
            lane = self._lanes[length] = deque()
        entry = (deadline, sequence, tx, timer)
        if not lane or lane[-1][0] <= deadline:
            lane.append(entry)
            return
        index = len(lane)
        while index > 0 and lane[index - 1][0] > deadline:
            index -= 1
        lane.insert(index, entry)

    def stop(self, tx: str, timer: Timer) -> None:
        running = self._live.get(tx)
        if running is not None:
            running.pop(timer, None)
            if not running:
                del self._live[tx]

    def stop_all(self, tx: str) -> None:
        self._live.pop(tx, None)

    def deadlines(self, tx: str) -> dict[Timer, float]:
        """The running timers of one transaction and when they fire."""
        running = self._live.get(tx, {})
        return {timer: running[timer][1] for timer in Timer if timer in running}

    def next_deadline(self) -> float | None:
        lane = self._earliest()
        return lane[0][0] if lane is not None else None

    def pop_due(self, now: float) -> tuple[str, Timer] | None:
        """The earliest timer due at or before ``now`` (it stops running), or None."""
        lane = self._earliest()
        if lane is None or lane[0][0] > now:
            return None
        _, _, tx, timer = lane.popleft()
        self.stop(tx, timer)
        return tx, timer

    def _earliest(self) -> deque[tuple[float, int, str, Timer]] | None:
        """The lane whose first live timer is due first (by deadline, then start order)."""
        best = None
        live = self._live
        for lane in self._lanes.values():
            while lane:  # drop the stopped and restarted timers at the head
                _, sequence, tx, timer = lane[0]
                running = live.get(tx)
                if running is not None and running.get(timer, (None,))[0] == sequence:
                    break
                lane.popleft()
            if lane and (best is None or lane[0] < best[0]):
                best = lane
        return best
