"""The INVITE server transaction: RFC 3261 §17.2.1 (Figure 7) with the Accepted state of
RFC 6026 §7.1 and §8.5–§8.7.

The request that creates the transaction is reported to the TU and the transaction starts in
Proceeding. The layer does not send 100 (Trying) on its own: §17.2.1 lets it leave that out when
the TU answers within 200 ms, and a TU that needs longer sends a 100 itself.

- A retransmitted INVITE re-sends the most recent response (none yet: nothing to send); in
  Confirmed and Accepted it is absorbed (RFC 6026 §8.7: never passed up).
- A 300-699 final goes to Completed: Timer G re-sends it (T1 doubling to T2, unreliable only)
  until the ACK arrives; Timer H (64*T1) gives up and tells the TU.
- The ACK moves Completed to Confirmed, where Timer I (T4; 0 reliable) absorbs ACK retransmits.
- A 2xx goes to Accepted (RFC 6026): the TU retransmits its 2xx itself (§13.3.1.4) and the
  transaction sends each one; ACKs reaching it are the TU's (§13.3.2.5); Timer L (64*T1) ends it.
- Responses the TU passes once a final was sent are discarded (as §17.2.2 says for non-INVITE),
  except 2xx retransmissions in Accepted.
"""

from __future__ import annotations

from .fsm import Action, Input, Transition, TxState, complete
from .timers import Timer

PROCEEDING, COMPLETED, CONFIRMED, ACCEPTED, TERMINATED = (
    TxState.PROCEEDING, TxState.COMPLETED, TxState.CONFIRMED, TxState.ACCEPTED, TxState.TERMINATED)
SEND, RESEND = Action.SEND_RESPONSE, Action.RESEND_RESPONSE

STATES = (PROCEEDING, COMPLETED, CONFIRMED, ACCEPTED)
INPUTS = (Input.REQUEST, Input.ACK, Input.SEND_1XX, Input.SEND_2XX, Input.SEND_FINAL,
          Input.TIMER_G, Input.TIMER_H, Input.TIMER_I, Input.TIMER_L)

INITIAL = Transition(PROCEEDING, (Action.PASS_REQUEST,))

INVITE_SERVER = complete({
    (PROCEEDING, Input.REQUEST): Transition(PROCEEDING, (RESEND,)),
    (PROCEEDING, Input.SEND_1XX): Transition(PROCEEDING, (SEND,)),
    (PROCEEDING, Input.SEND_2XX): Transition(ACCEPTED, (SEND,), start=(Timer.L,)),
    (PROCEEDING, Input.SEND_FINAL): Transition(COMPLETED, (SEND,), start=(Timer.G, Timer.H)),
    (COMPLETED, Input.REQUEST): Transition(COMPLETED, (RESEND,)),
    (COMPLETED, Input.TIMER_G): Transition(COMPLETED, (RESEND,), start=(Timer.G,)),
    (COMPLETED, Input.TIMER_H): Transition(TERMINATED, (Action.TIME_OUT,)),
    (COMPLETED, Input.ACK): Transition(CONFIRMED, start=(Timer.I,), stop=(Timer.G, Timer.H)),
    (CONFIRMED, Input.TIMER_I): Transition(TERMINATED),
    (ACCEPTED, Input.ACK): Transition(ACCEPTED, (Action.PASS_ACK,)),
    (ACCEPTED, Input.SEND_2XX): Transition(ACCEPTED, (SEND,)),
    (ACCEPTED, Input.TIMER_L): Transition(TERMINATED),
}, STATES, INPUTS)
