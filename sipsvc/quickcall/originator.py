"""Placing a quickcall over SIP: third-party call control (RFC 3725 §4.1, flow I).

1. Ring: an INVITE without a body to each registered contact of the device (RFC 3261 §8.1,
   sent where the phone registered from, as check-sync does); the first 2xx wins, the others
   are CANCELled (§9.1: once they have sent a provisional response; a 2xx that races the
   CANCEL is ACKed and hung up). Nobody answers within ``timeout`` seconds: CANCEL, no_answer.
2. Dial: the winner's 2xx carries its offer; an INVITE with it goes to the number at the
   configured gateway. Its 2xx carries the answer: ACK to the gateway, then the ACK to the phone
   with that answer (§13.2.2.4). The phone's 2xx retransmissions are not ACKed until then; the
   gateway must answer before the phone gives up waiting for its ACK (its 64*T1, 32 s with the
   default T1), else the phone hangs up (and the gateway leg is CANCELled). A refusal (or no
   answer within ``timeout``): the phone gets its ACK, then a BYE.
3. Talk: the legs stay connected until a BYE from either (answered 200; the other leg gets a
   BYE), a hang-up through the API (BYE to both), or ``MAX_CALL_SECONDS``.

Every ACK for a 2xx, and the repeat of it for each retransmitted 2xx (RFC 6026 §8.4), is the
TU's, i.e. ours. Calls live in this process; a record in the store (with the node holding the
call) lets any node report a call and refuse honestly to hang up one it does not hold.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import Callable

from ..errors import NotFoundError
from ..registrar.policy import Binding, Source
from ..sip.dialog import ack_for_2xx, next_request, request_dialog_id, uac_dialog
from ..sip.errors import SipParseError
from ..sip.message import Request, Response
from ..sip.transaction import TimerConfig
from ..sip.uac import make_cancel, via_value
from ..sip.uas import make_response
from ..sip.uri import parse_uri
from ..store.quickcall import RedisQuickcallStore
from ..transport.endpoint import SipEndpoint, Target
from . import invites
from .call import (ANSWERED, CANCELLED, CONNECTED, CONNECTING, ENDED, FAILED, NO_ANSWER, RINGING, Call, Leg,
                   Placement, failure)
from .errors import CallElsewhereError

log = logging.getLogger("sipsvc.quickcall")

MAX_CALL_SECONDS = 4 * 3600  # a call nobody hangs up (both legs gone silently) ends here
RECORD_TTL = 24 * 3600
HANG_UP_WAIT = 5.0  # seconds DELETE waits for the call to end here


def node_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Originator:
    def __init__(self, *, endpoint: SipEndpoint, store: RedisQuickcallStore, timers: TimerConfig,
                 gateway: str | None, random_bytes: Callable[[int], bytes],
                 clock: Callable[[], float] = time.time, node: str | None = None) -> None:
        self._endpoint = endpoint
        self._store = store
        self._linger = 64 * timers.t1 + 1  # how long cancelled legs may take to end (Timer B)
        self.gateway = gateway
        self._random = random_bytes
        self._clock = clock
        self.node = node or node_name()
        self._calls: dict[str, Call] = {}
        self._dialogs: dict[tuple[str, str, str], tuple[Call, Leg]] = {}
        self._tasks: set[asyncio.Task] = set()
        endpoint.add_handler("BYE", self.bye)

    async def bindings(self, account_id: str, device_id: str):
        return await self._store.target(account_id, device_id, self._clock())

    # -- placing a call --------------------------------------------------------------------

    def place(self, call_id: str, placement: Placement, bindings: list[Binding]) -> Call | None:
        """Ring every binding that can be reached now; None when none can (a TCP binding whose
        connection is closed)."""
        record = {
            "id": call_id, "device_id": placement.device_id, "number": placement.number,
            "node": self.node, "state": RINGING, "outcome": None, "status": None, "leg": None,
            "reason": None, "contact": None, "created_at": self._now(), "answered_at": None,
            "ended_at": None, "ended_by": None,
        }
        call = Call(call_id, placement.account_id, record)
        for binding in bindings:
            target = self._target(binding)
            if target is None:
                continue
            suffix = f"-{len(call.phones) + 1}" if call.phones else ""  # the first is the payload's
            invite = invites.phone_invite(
                binding.contact, address_of_record=placement.address_of_record, realm=placement.realm,
                caller_name=placement.caller_name, caller_number=placement.number,
                call_id=f"{call_id}-quickcall{suffix}", from_tag=self._endpoint.new_tag(),
                branch=self._endpoint.new_branch(), transport=binding.transport,
                local=self._endpoint.local_address(target), route=binding.path,
                auto_answer=placement.auto_answer,
            )
            call.phones.append(self._send_invite(call, Leg("phone", invite, target)))
        if not call.phones:
            return None
        self._calls[call_id] = call
        self._save(call)
        self._spawn(self._run(call, placement))
        return call

    async def settled(self, call: Call) -> dict:
        """The call's record once its outcome is known (answered, or why not)."""
        return await asyncio.shield(call.settled)

    def _send_invite(self, call: Call, leg: Leg) -> Leg:
        def seen(response: Response) -> None:
            call.queue.put_nowait(("response", leg, response))

        def finished(future: asyncio.Future) -> None:
            if not future.cancelled() and future.result() is None:
                call.queue.put_nowait(("timeout", leg, None))

        self._endpoint.send_request(leg.invite, leg.target, on_response=seen).add_done_callback(finished)
        return leg

    # -- the call's life -------------------------------------------------------------------

    async def _run(self, call: Call, placement: Placement) -> None:
        try:
            phone = await self._ring(call, placement.timeout)
            if phone is not None:
                gateway = await self._dial(call, phone, placement)
                if gateway is not None:
                    await self._talk(call, phone, gateway)
        except Exception:  # noqa: BLE001 - a bug here must end the call, not leave it half up
            log.exception("quickcall %s failed", call.id)
            self._settle(call, FAILED, reason="internal error")
            for leg in call.legs():
                self._drop(leg)
        finally:
            self._end(call, None)
            try:
                await self._wind_down(call)
            finally:
                for leg in call.legs():
                    if leg.dialog is not None:
                        self._dialogs.pop(leg.dialog.id, None)
                self._calls.pop(call.id, None)

    async def _ring(self, call: Call, timeout: int) -> Leg | None:
        """Phase 1: the first phone to answer, or None (the outcome is then settled)."""
        deadline = asyncio.get_running_loop().time() + timeout
        winner: Leg | None = None
        cancelled = late = False
        while winner is None and any(leg.state != "closed" for leg in call.phones):
            event = await self._next(call, deadline)
            if event is None:
                late = True
                break
            if self._absorb(event):
                continue
            kind, leg, response = event
            if kind == "hangup":
                cancelled = True
                break
            if kind == "response" and 200 <= response.status < 300:
                winner = leg
        for leg in call.phones:
            if leg is not winner:
                self._abandon(leg)
        if winner is None:
            if cancelled:
                self._settle(call, CANCELLED, leg="phone", reason="hung up through the API while ringing")
            else:
                self._settle_failure(call, "phone", call.phones, late=late)
            return None
        if not self._accept(call, winner):
            self._settle(call, FAILED, leg="phone", status=winner.answer.status,
                         reason="the phone's 2xx set up no usable dialog")
            return None
        call.record.update(state=CONNECTING, contact=winner.invite.uri)
        self._save(call)
        if not winner.answer.body:
            self._drop(winner)
            self._settle(call, FAILED, leg="phone", status=winner.answer.status,
                         reason="the phone answered without an SDP offer")
            return None
        return winner

    async def _dial(self, call: Call, phone: Leg, placement: Placement) -> Leg | None:
        """Phase 2: the number's leg, connected; or None (the phone leg is then dropped)."""
        try:
            address = await self._gateway_address()
        except (OSError, SipParseError) as exc:
            self._drop(phone)
            self._settle(call, FAILED, leg="gateway", reason=f"cannot resolve the gateway: {exc}")
            return None
        uri = invites.gateway_uri(self.gateway or "", placement.number)
        target = Target("udp", address)
        content_type = phone.answer.header("Content-Type") or "application/sdp"
        invite = invites.gateway_invite(
            uri, caller_name=placement.callee_name, caller_uri=placement.callee_uri,
            call_id=f"{call.id}-number", from_tag=self._endpoint.new_tag(), branch=self._endpoint.new_branch(),
            local=self._endpoint.local_address(target), offer=phone.answer.body, content_type=content_type,
        )
        gateway = call.gateway = self._send_invite(call, Leg("gateway", invite, target))
        deadline = asyncio.get_running_loop().time() + placement.timeout
        while True:
            event = await self._next(call, deadline)
            if event is None:
                self._abandon(gateway)
                self._drop(phone)
                self._settle(call, NO_ANSWER, leg="gateway",
                             reason=f"the number did not answer within {placement.timeout} s")
                return None
            if self._absorb(event):
                continue
            kind, leg, response = event
            if kind == "hangup" or (kind == "bye" and leg is phone):
                self._abandon(gateway)
                self._drop(phone)
                if kind == "hangup":
                    self._settle(call, CANCELLED, leg="gateway", reason="hung up through the API while dialling")
                else:
                    self._settle(call, FAILED, leg="phone", reason="the phone hung up before the number answered")
                return None
            if leg is not gateway:
                continue
            if kind == "response" and 200 <= response.status < 300:
                break
            if gateway.state == "closed":  # a refusal, or Timer B
                self._drop(phone)
                self._settle_failure(call, "gateway", [gateway], late=False)
                return None
        if not self._accept(call, gateway):
            self._drop(phone)
            self._settle(call, FAILED, leg="gateway", status=gateway.answer.status,
                         reason="the gateway's 2xx set up no usable dialog")
            return None
        self._ack(gateway)
        if not gateway.answer.body:
            self._drop(gateway)
            self._drop(phone)
            self._settle(call, FAILED, leg="gateway", status=gateway.answer.status,
                         reason="the number answered without an SDP answer")
            return None
        self._ack(phone, gateway.answer.body, gateway.answer.header("Content-Type") or "application/sdp")
        call.record.update(state=CONNECTED, answered_at=self._now())
        self._settle(call, ANSWERED, leg="gateway", status=gateway.answer.status)
        return gateway

    async def _talk(self, call: Call, phone: Leg, gateway: Leg) -> None:
        """Phase 3: connected until a BYE, a hang-up through the API, or the time limit."""
        deadline = asyncio.get_running_loop().time() + MAX_CALL_SECONDS
        while True:
            event = await self._next(call, deadline)
            if event is not None and self._absorb(event):
                continue
            kind, leg, _ = event or ("limit", None, None)
            if kind in ("hangup", "limit"):
                self._drop(phone)
                self._drop(gateway)
                self._end(call, "api" if kind == "hangup" else "limit")
                return
            if kind == "bye":
                self._drop(gateway if leg is phone else phone)
                self._end(call, leg.name)
                return

    async def _wind_down(self, call: Call) -> None:
        """Let abandoned legs end: a late 1xx gets its CANCEL, a late 2xx its ACK and BYE."""
        deadline = asyncio.get_running_loop().time() + self._linger
        while any(leg.state in ("calling", "early") for leg in call.legs()):
            event = await self._next(call, deadline)
            if event is None:
                return
            self._absorb(event)

    # -- what every phase does the same way --------------------------------------------------

    def _absorb(self, event: tuple) -> bool:
        """Handle what needs no decision of the phase; True when the event is done with."""
        kind, leg, response = event
        if kind == "timeout":
            leg.state, leg.timed_out = "closed", True
            return not leg.wanted
        if kind != "response":
            return False
        if response.status < 200:
            if leg.state == "calling":
                leg.state = "early"
            if not leg.wanted:
                self._cancel(leg)
            return True
        if response.status >= 300:
            leg.state, leg.final = "closed", response.status
            return not leg.wanted
        if leg.ack is not None:  # a retransmitted 2xx: ACK it again
            self._endpoint.send_ack(leg.ack, leg.target)
            return True
        if leg.dialog is not None:  # retransmitted while we wait for the answer to ACK with
            return True
        if not leg.wanted:  # answered after all: ACK, then hang up at once
            leg.answer = response
            try:
                leg.dialog = uac_dialog(leg.invite, response)
            except SipParseError:
                leg.state = "closed"
                return True
            self._drop(leg)
            return True
        leg.answer = response
        return False

    def _accept(self, call: Call, leg: Leg) -> bool:
        """The leg's 2xx sets up its dialog; False (and the leg closed) when it cannot."""
        try:
            leg.dialog = uac_dialog(leg.invite, leg.answer)
        except SipParseError as exc:
            log.info("quickcall %s: unusable 2xx from the %s: %s", call.id, leg.name, exc)
            leg.state = "closed"
            return False
        leg.state = "up"
        self._dialogs[leg.dialog.id] = (call, leg)
        return True

    def _abandon(self, leg: Leg) -> None:
        """We no longer want this leg: CANCEL it if it rings, hang it up if it is up."""
        leg.wanted = False
        if leg.state == "early":
            self._cancel(leg)
        elif leg.state == "up":
            self._drop(leg)

    def _cancel(self, leg: Leg) -> None:
        if not leg.cancel_sent and leg.state == "early":
            leg.cancel_sent = True
            self._endpoint.send_request(make_cancel(leg.invite), leg.target)

    def _drop(self, leg: Leg) -> None:
        """End a leg: CANCEL it while it rings; once answered, ACK it (if not done yet), then
        BYE, unless it hung up itself."""
        leg.wanted = False
        if leg.dialog is None:
            self._cancel(leg)
            return
        if leg.state == "closed":
            return
        if leg.ack is None:
            self._ack(leg)
        leg.dialog, bye = next_request(leg.dialog, "BYE", via=self._via(leg))
        leg.state = "closed"
        self._endpoint.send_request(bye, leg.target)

    def _ack(self, leg: Leg, body: bytes = b"", content_type: str | None = None) -> None:
        leg.ack = ack_for_2xx(leg.dialog, leg.invite, via=self._via(leg), body=body, content_type=content_type)
        self._endpoint.send_ack(leg.ack, leg.target)

    async def _next(self, call: Call, deadline: float) -> tuple | None:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return None
        try:
            return await asyncio.wait_for(call.queue.get(), remaining)
        except TimeoutError:
            return None

    # -- outcomes and records ----------------------------------------------------------------

    def _settle_failure(self, call: Call, name: str, legs: list[Leg], *, late: bool) -> None:
        outcome, status, reason = failure(name, legs, late=late)
        self._settle(call, outcome, leg=name, status=status, reason=reason)

    def _settle(self, call: Call, outcome: str, *, leg: str | None = None, status: int | None = None,
                reason: str | None = None) -> None:
        if call.settled.done():
            return
        call.record.update(outcome=outcome, leg=leg, status=status, reason=reason)
        if outcome != ANSWERED:
            self._end(call, None)  # which settles the call too
            return
        self._save(call)
        call.settled.set_result(dict(call.record))

    def _end(self, call: Call, ended_by: str | None) -> None:
        if call.ended.done():
            return
        call.record.update(state=ENDED, ended_at=self._now(), ended_by=ended_by)
        self._save(call)
        call.ended.set_result(dict(call.record))
        if not call.settled.done():
            call.settled.set_result(dict(call.record))

    def _save(self, call: Call) -> None:
        """Store the call's record; one writer per call, so the latest record is the one kept."""
        call.dirty = True
        if call.saver is None or call.saver.done():
            call.saver = self._spawn(self._write(call))

    async def _write(self, call: Call) -> None:
        while call.dirty:
            call.dirty = False
            try:
                await self._store.save_call(call.account_id, call.id, dict(call.record), RECORD_TTL)
            except Exception:  # noqa: BLE001 - the call goes on; only its report is stale
                log.warning("could not store the record of quickcall %s", call.id, exc_info=True)

    # -- the API's view ----------------------------------------------------------------------

    async def status(self, account_id: str, call_id: str) -> dict:
        """The call's record: from this process when it holds the call, else from the store.

        Raises NotFoundError (no such call in the account, or its record expired)."""
        call = self._calls.get(call_id)
        if call is not None and call.account_id == account_id:
            return dict(call.record)
        record = await self._store.load_call(account_id, call_id)
        if record is None:
            raise NotFoundError("quickcall", call_id)
        return record

    async def hang_up(self, account_id: str, call_id: str) -> dict:
        """Hang up a call this process holds (BYE to both legs, or CANCEL while ringing) and
        return its record; an ended call's record as it is.

        Raises NotFoundError, or CallElsewhereError for a live call another process holds."""
        call = self._calls.get(call_id)
        if call is not None and call.account_id == account_id:
            if not call.ended.done():
                call.queue.put_nowait(("hangup", None, None))
                try:
                    await asyncio.wait_for(asyncio.shield(call.ended), HANG_UP_WAIT)
                except TimeoutError:
                    pass
            return dict(call.record)
        record = await self.status(account_id, call_id)
        if record.get("state") == ENDED:
            return record
        raise CallElsewhereError(call_id, str(record.get("node")))

    # -- requests within our dialogs ---------------------------------------------------------

    async def bye(self, request: Request, source: Source) -> Response:
        """The endpoint's BYE handler: 200 for a leg of one of our calls (the call then hangs
        up the other leg), 481 for any other dialog (§15.1.2)."""
        found = self._dialogs.get(request_dialog_id(request) or ("", "", ""))
        if found is None:
            return make_response(request, 481)
        call, leg = found
        if leg.state != "closed":
            leg.state = "closed"
            call.queue.put_nowait(("bye", leg, None))
        return make_response(request, 200)

    # -- helpers -------------------------------------------------------------------------------

    def _target(self, binding: Binding) -> Target | None:
        host, _, port = binding.source.rpartition(":")
        address = (host.strip("[]"), int(port))
        if binding.transport != "tcp":
            return Target("udp", address)
        connection = self._endpoint.connection_for(binding.connection or "", address)
        return None if connection is None else Target("tcp", address, connection)

    async def _gateway_address(self) -> tuple[str, int]:
        uri = parse_uri(invites.gateway_uri(self.gateway or "", "0"))
        infos = await asyncio.get_running_loop().getaddrinfo(
            uri.host.strip("[]"), uri.port or 5060, type=socket.SOCK_DGRAM)
        return infos[0][4][0], infos[0][4][1]

    def _via(self, leg: Leg) -> str:
        host, port = self._endpoint.local_address(leg.target)
        return via_value(leg.target.transport, host, port, self._endpoint.new_branch())

    def _token(self, size: int) -> str:
        return self._random(size).hex()

    def _now(self) -> float:
        return round(self._clock(), 3)

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        """Hang up the calls this process holds, then stop."""
        for call in list(self._calls.values()):
            call.queue.put_nowait(("hangup", None, None))
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
        for task in list(self._tasks):
            task.cancel()
