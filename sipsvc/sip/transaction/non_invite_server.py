"""The non-INVITE server transaction: RFC 3261 §17.2.2 (Figure 8).

The request that creates the transaction is reported to the TU and the transaction starts in
Trying. A retransmitted request is discarded in Trying (nothing sent yet), answered with the last
provisional in Proceeding and with the final in Completed: the TU never sees it again. Once the
final is sent, Timer J (64*T1 unreliable, 0 reliable) keeps the transaction to absorb
retransmissions; further responses from the TU are discarded (§17.2.2).
"""

from __future__ import annotations

from .fsm import Action, Input, Transition, TxState, complete
from .timers import Timer

TRYING, PROCEEDING, COMPLETED, TERMINATED = (
    TxState.TRYING, TxState.PROCEEDING, TxState.COMPLETED, TxState.TERMINATED)
SEND, RESEND = Action.SEND_RESPONSE, Action.RESEND_RESPONSE

STATES = (TRYING, PROCEEDING, COMPLETED)
INPUTS = (Input.REQUEST, Input.SEND_1XX, Input.SEND_2XX, Input.SEND_FINAL, Input.TIMER_J)

INITIAL = Transition(TRYING, (Action.PASS_REQUEST,))

NON_INVITE_SERVER = complete({
    (TRYING, Input.SEND_1XX): Transition(PROCEEDING, (SEND,)),
    (TRYING, Input.SEND_2XX): Transition(COMPLETED, (SEND,), start=(Timer.J,)),
    (TRYING, Input.SEND_FINAL): Transition(COMPLETED, (SEND,), start=(Timer.J,)),
    (PROCEEDING, Input.REQUEST): Transition(PROCEEDING, (RESEND,)),
    (PROCEEDING, Input.SEND_1XX): Transition(PROCEEDING, (SEND,)),
    (PROCEEDING, Input.SEND_2XX): Transition(COMPLETED, (SEND,), start=(Timer.J,)),
    (PROCEEDING, Input.SEND_FINAL): Transition(COMPLETED, (SEND,), start=(Timer.J,)),
    (COMPLETED, Input.REQUEST): Transition(COMPLETED, (RESEND,)),
    (COMPLETED, Input.TIMER_J): Transition(TERMINATED),
}, STATES, INPUTS)
