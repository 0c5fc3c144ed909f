"""The INVITE client transaction: RFC 3261 §17.1.1 (Figure 5) with the Accepted state of
RFC 6026 §7.2 and §8.4.

- Calling: the INVITE is sent; Timer A re-sends it (T1, doubling without a cap; unreliable
  only) and Timer B (64*T1) times the transaction out. A 1xx moves to Proceeding, where
  neither applies any more (§17.1.1.2: the TU cancels a call that rings too long).
- 300-699: passed up once, ACKed by the transaction (§17.1.1.3), then Completed with Timer D
  (at least 32 s unreliable, 0 reliable): each retransmitted final gets the same ACK again and
  is not passed up.
- 2xx: Accepted with Timer M (64*T1); every 2xx, retransmissions included, is passed up, for
  the TU (which ACKs a 2xx itself, §13.2.2.4) may see 2xx from several forks.
"""

from __future__ import annotations

from .fsm import Action, Input, Transition, TxState, complete
from .timers import Timer

CALLING, PROCEEDING, COMPLETED, ACCEPTED, TERMINATED = (
    TxState.CALLING, TxState.PROCEEDING, TxState.COMPLETED, TxState.ACCEPTED, TxState.TERMINATED)
PASS = Action.PASS_RESPONSE

STATES = (CALLING, PROCEEDING, COMPLETED, ACCEPTED)
INPUTS = (Input.RECV_1XX, Input.RECV_2XX, Input.RECV_FINAL,
          Input.TIMER_A, Input.TIMER_B, Input.TIMER_D, Input.TIMER_M)

INITIAL = Transition(CALLING, (Action.SEND_REQUEST,), start=(Timer.A, Timer.B))

_ANSWERED = (Timer.A, Timer.B)

INVITE_CLIENT = complete({
    (CALLING, Input.TIMER_A): Transition(CALLING, (Action.SEND_REQUEST,), start=(Timer.A,)),
    (CALLING, Input.TIMER_B): Transition(TERMINATED, (Action.TIME_OUT,)),
    (CALLING, Input.RECV_1XX): Transition(PROCEEDING, (PASS,), stop=_ANSWERED),
    (CALLING, Input.RECV_2XX): Transition(ACCEPTED, (PASS,), start=(Timer.M,), stop=_ANSWERED),
    (CALLING, Input.RECV_FINAL): Transition(
        COMPLETED, (PASS, Action.SEND_ACK), start=(Timer.D,), stop=_ANSWERED),
    (PROCEEDING, Input.RECV_1XX): Transition(PROCEEDING, (PASS,)),
    (PROCEEDING, Input.RECV_2XX): Transition(ACCEPTED, (PASS,), start=(Timer.M,)),
    (PROCEEDING, Input.RECV_FINAL): Transition(COMPLETED, (PASS, Action.SEND_ACK), start=(Timer.D,)),
    (COMPLETED, Input.RECV_FINAL): Transition(COMPLETED, (Action.RESEND_ACK,)),
    (COMPLETED, Input.TIMER_D): Transition(TERMINATED),
    (ACCEPTED, Input.RECV_2XX): Transition(ACCEPTED, (PASS,)),
    (ACCEPTED, Input.TIMER_M): Transition(TERMINATED),
}, STATES, INPUTS)
