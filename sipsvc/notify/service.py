"""check-sync: make registered phones re-read their configuration, and say what happened.

Each live binding of a device gets one out-of-dialog NOTIFY (``message.check_sync``) in a
non-INVITE client transaction of the SIP endpoint (RFC 3261 §17.1.2: Timer E retransmissions
over UDP, Timer F gives up). It goes where the phone registered from, since a phone behind NAT
accepts nothing else: over UDP to the REGISTER's source address (received/rport) from our SIP
port, over TCP on the phone's own connection while it is open. A 401/407 answer is retried once
with digest credentials from the device's ``sip.username``/``sip.password`` (RFC 7616).

A bulk sync of an account is paced at ``rate`` NOTIFYs per second and holds the account's lock
in the store (a key with a TTL, refreshed while it runs), so a second one on any node is refused.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from ..errors import NotFoundError, NotRegisteredError, SyncRunningError
from ..registrar.policy import Binding
from ..sip.message import Request, Response
from ..sip.transaction import TimerConfig
from ..sip.uac import authorize
from ..store.notify import BulkLock, RedisNotifyStore, SyncTarget
from ..transport.endpoint import SipEndpoint, Target
from . import message

log = logging.getLogger("sipsvc.notify")

TIMEOUT = "timeout"  # no final answer before Timer F
UNREACHABLE = "unreachable"  # a TCP binding whose connection is closed (or held by another process)
ERROR = "error"  # sipsvc failed while following the NOTIFY (logged)
LOCK_TTL = 30.0  # seconds; refreshed every third of it while a bulk sync runs
YIELD_EVERY = 64  # NOTIFYs sent in a row before a bulk sync lets other work run
# Devices read per round trip by a bulk sync: at 200 NOTIFYs/s that is a read every half second,
# and each read's documents are held only until their NOTIFYs are sent.
READ_BATCH = 100


@dataclass(frozen=True)
class Outcome:
    """What became of the NOTIFY to one binding."""

    contact: str
    transport: str
    status: int | str  # the final SIP status, TIMEOUT or UNREACHABLE
    elapsed_ms: int

    def as_dict(self) -> dict:
        return {"contact": self.contact, "transport": self.transport, "status": self.status,
                "elapsed_ms": self.elapsed_ms}


@dataclass(frozen=True)
class _Phone:
    """Who the NOTIFY is from and to, and how to answer the phone's challenge."""

    address_of_record: str
    username: str | None
    password: str | None
    device_event: object


def _phone(doc: dict, account_realm: str) -> _Phone:
    sip = doc.get("sip") if isinstance(doc.get("sip"), dict) else {}
    provision = doc.get("provision") if isinstance(doc.get("provision"), dict) else {}
    username = sip.get("username") if isinstance(sip.get("username"), str) else None
    password = sip.get("password") if isinstance(sip.get("password"), str) else None
    realm = sip.get("realm") if isinstance(sip.get("realm"), str) and sip.get("realm") else account_realm
    address = message.aor(username, realm) if username else f"sip:{realm}"
    return _Phone(address, username, password, provision.get("check_sync_event"))


def _address(source: str) -> tuple[str, int]:
    host, _, port = source.rpartition(":")
    return host.strip("[]"), int(port)


def _percentile(sorted_values: list[int], fraction: float) -> int | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, math.ceil(fraction * len(sorted_values)) - 1)]


class _Delivery:
    """The NOTIFY to one binding: sent when made, followed (challenge, answer) by a task."""

    def __init__(self, binding: Binding, task: asyncio.Task | None) -> None:
        self.binding = binding
        self.task = task  # None: nothing could be sent

    async def outcome(self) -> Outcome:
        if self.task is None:
            return Outcome(self.binding.contact, self.binding.transport, UNREACHABLE, 0)
        return await asyncio.shield(self.task)


class NotifyService:
    def __init__(self, *, endpoint: SipEndpoint, store: RedisNotifyStore, timers: TimerConfig,
                 rate: float, random_bytes: Callable[[int], bytes],
                 clock: Callable[[], float] = time.time) -> None:
        self._endpoint = endpoint
        self._store = store
        self._timer_f = 64 * timers.t1  # RFC 3261 Table 4
        self._rate = rate
        self._random = random_bytes
        self._clock = clock
        self._tasks: set[asyncio.Task] = set()
        # Final outcome of every NOTIFY: the SIP status, "timeout", "unreachable" or "error"
        # (read by the metrics at scrape time).
        self.results: Counter[str] = Counter()

    # -- one device --------------------------------------------------------------------------

    async def sync_device(self, account_id: str, account_realm: str, device_id: str, *,
                          reboot: bool | None = None, wait: bool = False) -> list[Outcome] | None:
        """NOTIFY every live binding of the device. Returns once they are sent (None), or with
        ``wait`` once each has its final answer or timed out (one Outcome per binding).

        Raises NotFoundError (no such device) or NotRegisteredError (nothing could be sent).
        """
        target = await self._store.target(account_id, device_id, self._clock())
        if target is None:
            raise NotFoundError("device", device_id)
        if not target.bindings:
            raise NotRegisteredError(device_id, "the device has no current registration; nothing was sent")
        deliveries = self._send_all(target, account_realm, reboot)
        if all(d.task is None for d in deliveries):
            raise NotRegisteredError(
                device_id, "the device is registered only over TCP connections that are closed; "
                           "nothing was sent")
        if not wait:
            return None
        return [await d.outcome() for d in deliveries]

    async def notify_dropped(self, account_realm: str, old_doc: dict, bindings: list[Binding]) -> None:
        """Tell phones whose registrations a credentials change just dropped: the NOTIFY goes to
        the old bindings, from and to the old address of record, with the old password."""
        if bindings:
            self._send_all(SyncTarget(str(old_doc.get("id", "")), old_doc, bindings), account_realm, None)

    async def after_write(self, account_id: str, account_realm: str, device_id: str, *, sync: bool,
                          old_doc: dict | None, dropped: list[Binding]) -> None:
        """After a device write: the phones whose registrations a credentials change dropped are
        told at their old bindings; otherwise ``sync`` ("sync": true in the data) syncs the
        device if it is registered (the save itself never fails for an unregistered one)."""
        if old_doc is not None and dropped:
            await self.notify_dropped(account_realm, old_doc, dropped)
        elif sync:
            try:
                await self.sync_device(account_id, account_realm, device_id)
            except (NotRegisteredError, NotFoundError):
                pass

    # -- a whole account ---------------------------------------------------------------------

    async def sync_account(self, account_id: str, account_realm: str, *,
                           reboot: bool | None = None) -> dict:
        """NOTIFY every live binding of every registered device of the account, ``rate`` per
        second, then wait for the answers; returns a summary. Raises SyncRunningError while
        another bulk sync of the account runs."""
        lock = self._store.bulk_lock(account_id, LOCK_TTL)
        if not await lock.acquire():
            raise SyncRunningError("a sync of this account's devices is already running; "
                                   "try again when it has finished")
        done = asyncio.Event()
        keeper = asyncio.get_running_loop().create_task(self._keep(lock, done))
        try:
            return await self._sync_account(account_id, account_realm, reboot)
        finally:
            # The event, not only the cancellation, ends the keeper: a cancellation that lands
            # inside a Redis call can be swallowed there, and a keeper left running extended a
            # released lock every 10 s for ever (seen in the soak).
            done.set()
            keeper.cancel()
            await lock.release()

    async def _sync_account(self, account_id: str, account_realm: str, reboot: bool | None) -> dict:
        loop = asyncio.get_running_loop()
        ids = await self._store.registered(account_id, self._clock())
        tally = _Tally()
        started = last_sent = loop.time()
        for start in range(0, len(ids), READ_BATCH):
            for target in await self._store.targets(account_id, ids[start:start + READ_BATCH], self._clock()):
                tally.devices += 1 if target.bindings else 0
                for binding in target.bindings:
                    ahead = started + tally.sent / self._rate - loop.time()
                    if ahead > 0.002:
                        await asyncio.sleep(ahead)
                    elif tally.sent % YIELD_EVERY == 0:
                        await asyncio.sleep(0)
                    delivery = self._send(binding, _phone(target.doc, account_realm), reboot)
                    tally.follow(delivery)
                    if delivery.task is not None:
                        last_sent = loop.time()
        sending = last_sent - started
        await tally.drained()
        return tally.summary(sending, loop.time() - started)

    async def _keep(self, lock: BulkLock, done: asyncio.Event) -> None:
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), LOCK_TTL / 3)
                return
            except TimeoutError:
                pass
            try:
                await lock.refresh()
            except Exception:  # noqa: BLE001 - the lock is lost: the TTL bounds the overlap
                log.warning("could not extend the bulk sync lock", exc_info=True)

    # -- sending -------------------------------------------------------------------------------

    def _send_all(self, target: SyncTarget, account_realm: str, reboot: bool | None) -> list[_Delivery]:
        phone = _phone(target.doc, account_realm)
        return [self._send(binding, phone, reboot) for binding in target.bindings]

    def _send(self, binding: Binding, phone: _Phone, reboot: bool | None) -> _Delivery:
        """Send the NOTIFY for ``binding`` now; a task follows it to its final answer."""
        where = self._target(binding)
        if where is None:
            self.results[UNREACHABLE] += 1
            return _Delivery(binding, None)
        request = message.check_sync(
            binding.contact, address_of_record=phone.address_of_record,
            event=message.event_value(phone.device_event, reboot),
            call_id=f"{self._token(12)}@sipsvc", from_tag=self._token(8), branch=self._endpoint.new_branch(),
            transport=binding.transport, local=self._endpoint.local_address(where),
            route=binding.path,
        )
        started = asyncio.get_running_loop().time()
        first = self._endpoint.send_request(request, where)
        task = asyncio.get_running_loop().create_task(
            self._follow(binding, phone, request, where, first, started))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return _Delivery(binding, task)

    async def _follow(self, binding: Binding, phone: _Phone, request: Request, where: Target,
                      answer: "asyncio.Future[Response | None]", started: float) -> Outcome:
        """The final answer, after answering one challenge; the whole wait ends at Timer F."""
        try:
            outcome = await self._final(binding, phone, request, where, answer, started)
        except Exception:  # noqa: BLE001 - a bug here must not leave an unretrieved task error
            log.exception("following the check-sync NOTIFY to %s failed", binding.contact,
                          extra={"call_id": request.header("Call-ID")})
            outcome = Outcome(binding.contact, binding.transport, ERROR, 0)
        self.results[str(outcome.status)] += 1
        return outcome

    async def _final(self, binding: Binding, phone: _Phone, request: Request, where: Target,
                     answer: "asyncio.Future[Response | None]", started: float) -> Outcome:
        loop = asyncio.get_running_loop()
        response = await answer
        if response is not None and response.status in (401, 407) and phone.password is not None:
            retry = authorize(request, response, username=phone.username or "",
                              password=phone.password, cnonce=self._token(8), branch=self._endpoint.new_branch())
            if retry is not None:
                second = self._endpoint.send_request(retry, where)
                try:
                    response = await asyncio.wait_for(second, max(started + self._timer_f - loop.time(), 0))
                except TimeoutError:
                    response = None
        status: int | str = response.status if response is not None else TIMEOUT
        elapsed = int(round((loop.time() - started) * 1000))
        if response is None:
            log.info("check-sync to %s timed out", binding.contact, extra={"call_id": request.header("Call-ID")})
        return Outcome(binding.contact, binding.transport, status, elapsed)

    def _target(self, binding: Binding) -> Target | None:
        """Where the phone can be reached: its UDP source, or its TCP connection if still open."""
        address = _address(binding.source)
        if binding.transport != "tcp":
            return Target("udp", address)
        connection = self._endpoint.connection_for(binding.connection or "", address)
        if connection is None:
            return None
        return Target("tcp", address, connection)

    def reachable(self, binding: Binding) -> bool:
        """Whether a NOTIFY to ``binding`` could be sent now (not ``unreachable``)."""
        return self._target(binding) is not None

    def _token(self, size: int) -> str:
        return self._random(size).hex()

    async def close(self) -> None:
        """Stop following NOTIFYs still waiting for an answer."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)


class _Tally:
    """A bulk sync's running summary. Each outcome is counted when its NOTIFY finishes and then
    let go, so a sync of 10,000 phones holds only the NOTIFYs still in flight: holding every
    delivery to the end raised a worker's memory high-water mark by about 33 MiB in the soak."""

    def __init__(self) -> None:
        self.devices = 0
        self.sent = 0
        self.statuses: Counter[int] = Counter()
        self.timed_out = 0
        self.unreachable = 0
        self.answer_ms = array("q")  # of the NOTIFYs with a final status: 8 bytes each
        self._pending: set[asyncio.Task] = set()

    def follow(self, delivery: _Delivery) -> None:
        if delivery.task is None:
            self.unreachable += 1
            return
        self.sent += 1
        self._pending.add(delivery.task)
        delivery.task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self._pending.discard(task)
        if task.cancelled():  # the service is closing
            return
        outcome: Outcome = task.result()  # _follow turns its own failures into ERROR
        if isinstance(outcome.status, int):
            self.statuses[outcome.status] += 1
            self.answer_ms.append(outcome.elapsed_ms)
        elif outcome.status == TIMEOUT:
            self.timed_out += 1

    async def drained(self) -> None:
        while self._pending:
            await asyncio.wait(set(self._pending))

    def summary(self, sending: float, elapsed: float) -> dict:
        answer_ms = sorted(self.answer_ms)
        return {
            "devices": self.devices,
            "sent": self.sent,
            "answered": {str(status): count for status, count in sorted(self.statuses.items())},
            "timed_out": self.timed_out,
            "unreachable": self.unreachable,
            "rate": round(self.sent / sending, 1) if self.sent > 1 and sending > 0 else None,
            "answer_ms": {"p50": _percentile(answer_ms, 0.50), "p99": _percentile(answer_ms, 0.99),
                          "max": answer_ms[-1] if answer_ms else None},
            "elapsed_ms": int(round(elapsed * 1000)),
        }
