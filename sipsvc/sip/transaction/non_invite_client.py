"""The non-INVITE client transaction: RFC 3261 §17.1.2 (Figure 6).

- Trying: the request is sent; Timer E re-sends it (T1, doubling, capped at T2; unreliable
  only) and Timer F (64*T1) times the transaction out.
- A 1xx moves to Proceeding, where Timer E keeps firing, every T2 (§17.1.2.2), and F still
  applies.
- A final (200-699) is passed up once; Completed then absorbs its retransmissions for Timer K
  (T4 unreliable, 0 reliable).
"""

from __future__ import annotations

from .fsm import Action, Input, Transition, TxState, complete
from .timers import Timer

TRYING, PROCEEDING, COMPLETED, TERMINATED = (
    TxState.TRYING, TxState.PROCEEDING, TxState.COMPLETED, TxState.TERMINATED)
PASS, RETRANSMIT, TIME_OUT = Action.PASS_RESPONSE, Action.SEND_REQUEST, Action.TIME_OUT

STATES = (TRYING, PROCEEDING, COMPLETED)
INPUTS = (Input.RECV_1XX, Input.RECV_2XX, Input.RECV_FINAL,
          Input.TIMER_E, Input.TIMER_F, Input.TIMER_K)

INITIAL = Transition(TRYING, (Action.SEND_REQUEST,), start=(Timer.E, Timer.F))

_FINAL = Transition(COMPLETED, (PASS,), start=(Timer.K,), stop=(Timer.E, Timer.F))

NON_INVITE_CLIENT = complete({
    (TRYING, Input.TIMER_E): Transition(TRYING, (RETRANSMIT,), start=(Timer.E,)),
    (TRYING, Input.TIMER_F): Transition(TERMINATED, (TIME_OUT,)),
    (TRYING, Input.RECV_1XX): Transition(PROCEEDING, (PASS,)),
    (TRYING, Input.RECV_2XX): _FINAL,
    (TRYING, Input.RECV_FINAL): _FINAL,
    (PROCEEDING, Input.TIMER_E): Transition(PROCEEDING, (RETRANSMIT,), start=(Timer.E,)),
    (PROCEEDING, Input.TIMER_F): Transition(TERMINATED, (TIME_OUT,)),
    (PROCEEDING, Input.RECV_1XX): Transition(PROCEEDING, (PASS,)),
    (PROCEEDING, Input.RECV_2XX): _FINAL,
    (PROCEEDING, Input.RECV_FINAL): _FINAL,
    (COMPLETED, Input.TIMER_K): Transition(TERMINATED),
}, STATES, INPUTS)
