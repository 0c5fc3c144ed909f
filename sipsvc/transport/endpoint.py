"""The SIP endpoint: joins the UDP and TCP adapters, the pure transaction layer and the request
handlers (the registrar), on one asyncio loop with one timer.

Bytes come in from an adapter; the core parses and matches them; new requests that the UAS
rules let through (RFC 3261 §8.2) go to their handler; its response goes back through the
transaction, which re-sends it to retransmissions without calling the handler again. A request
that does not parse is answered 400 (505 for another SIP version) to a usable Via; anything else
unusable is dropped and counted.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import secrets
import socket
from collections import Counter
from dataclasses import dataclass
from typing import Awaitable, Callable

from ..randomness import random_bytes
from ..registrar.policy import Source
from ..sip.errors import SipParseError
from ..sip.message import Request, Response
from ..sip.parser import DEFAULT_LIMITS, Limits, check_request, check_response, parse_datagram
from ..sip.headers import name_addr_of, top_via
from ..sip.transaction import (
    MAGIC_COOKIE, AckReceived, CancelReceived, RequestReceived, ResponseReceived, TimerConfig, TransactionLayer,
    TransactionError, TransactionTimedOut, TxState,
)
from ..sip.uas import make_response, preflight, response_address, stamp_via
from .siblings import SiblingConnection, Siblings

log = logging.getLogger("sipsvc.sip")

Handler = Callable[[Request, Source], Awaitable[Response | None]]  # None: leave unanswered
# A handler's answer without awaiting anything, when it has one (a registrar's challenge);
# None: the request goes to the handler.
QuickHandler = Callable[[Request, Source], Response | None]
# Looks at each new request before anything else: None lets it through, (status, reason) answers
# it with that status at once, or drops it silently when the status is 0 (bans, scanners).
Screen = Callable[[Request, Source], "tuple[int, str] | None"]
Observer = Callable[[Response], None]
ALLOWED_METHODS = frozenset({"REGISTER", "OPTIONS"})
# Requests handled at once; more wait their turn instead of flooding Redis with connections.
MAX_IN_FLIGHT = 256
# Requests waiting for (or in) their handler; past this a flood gets 503 at once instead of a
# queue that grows without bound.
MAX_PENDING = 4096
# Transactions alive (some 2.4 KB each); past this new requests are dropped and counted.
MAX_TRANSACTIONS = 200_000
SUPPORTED_EXTENSIONS = frozenset({"path", "outbound", "gruu"})
# The loop timer fires on a grid of this many seconds. Every REGISTER leaves a transaction whose
# Timer J ends it 32 s later; firing for each one cost a loop wake-up per REGISTER (2,000 a second
# at 2,000 REGISTERs/s), on the grid it is at most 200 a second, each ending a batch. No timer of
# RFC 3261 needs better: the shortest is T1 (500 ms) apart from the reliable transports' zero ones.
TIMER_GRID = 0.005


@dataclass(frozen=True)
class Target:
    """Where a message goes: a UDP address, or a TCP connection (``connection`` set)."""

    transport: str
    address: tuple[str, int]
    connection: object | None = None

    # Written out for speed (see "Written-out __init__" at the top of sip/message.py).
    def __init__(self, transport: str, address: tuple[str, int], connection: object | None = None) -> None:
        fields = self.__dict__
        fields["transport"] = transport
        fields["address"] = address
        fields["connection"] = connection


class SipEndpoint:
    def __init__(self, *, timers: TimerConfig, handlers: dict[str, Handler],
                 quick_handlers: dict[str, QuickHandler] | None = None,
                 loop: asyncio.AbstractEventLoop | None = None, limits: Limits = DEFAULT_LIMITS,
                 max_pending: int = MAX_PENDING, max_transactions: int = MAX_TRANSACTIONS) -> None:
        self.layer = TransactionLayer(timers)
        self._t1 = timers.t1
        self.limits = limits  # what a message may hold (sip/parser.py), for every transport
        self.max_pending = max_pending
        self.max_transactions = max_transactions
        self.handlers = handlers
        self.quick_handlers = quick_handlers or {}
        self.counters: Counter[str] = Counter()
        self._loop = loop or asyncio.get_running_loop()
        self._udp: asyncio.DatagramTransport | None = None
        # Datagrams answered in this turn of the loop, sent together when it ends (see _send).
        self._udp_out: list[tuple[bytes, tuple[str, int]]] = []
        # The loop's handle for the next timer, and the deadline it was set for (uvloop hands
        # back a plain Handle, without ``when()``, for a deadline less than 1 ms away).
        self._timer: asyncio.Handle | None = None
        self._timer_deadline: float | None = None
        self._tasks: set[asyncio.Task] = set()
        self.connections: dict[str, object] = {}  # TCP connection id -> connection
        self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._waiting: dict[str, asyncio.Future] = {}  # client transaction id -> final response
        self._observers: dict[str, Observer] = {}  # client transaction id -> sees every response
        self.allowed = ALLOWED_METHODS | frozenset(handlers)
        # Who we are among sibling workers and other nodes: named in our branches, dialog tags
        # and TCP connection ids (the pid, and a random part that keeps it unique across hosts).
        self.node = f"{os.getpid()}.{secrets.token_hex(4)}"
        self.siblings: Siblings | None = None
        self.screen: Screen | None = None
        self._alive: Callable[[str], bool] = lambda node: True

    # -- inbound ---------------------------------------------------------------------------

    def attach_udp(self, transport: asyncio.DatagramTransport) -> None:
        self._udp = transport

    def datagram_received(self, data: bytes, address: tuple) -> None:
        source = (address[0], address[1])
        try:
            message = parse_datagram(data, self.limits)
        except SipParseError as exc:
            self.refuse(exc, Target("udp", source))
            return
        self.message_received(message, Source(source[0], source[1], "udp"), Target("udp", source))

    def message_received(self, message: Request | Response, source: Source, target: Target) -> None:
        """A parsed message from any transport; ``target`` is where the peer can be reached."""
        now = self._loop.time()
        try:
            if isinstance(message, Request):
                check_request(message, self.limits)
                if self.siblings is not None and self._to_sibling(message, source):
                    return
                message = stamp_via(message, source.ip, source.port)
                if target.transport == "udp":
                    target = Target("udp", response_address(message, target.address))
            else:
                check_response(message)
                owner = _branch_node(top_via(message).branch)
                if owner is not None and owner != self.node and self.siblings is not None:
                    # The answer to a sibling's request: its transaction is there.
                    self.siblings.forward_response(owner, message.to_bytes(), source.transport,
                                                   (source.ip, source.port))
                    return
        except SipParseError as exc:
            self.refuse(exc, target)
            return
        if len(self.layer) >= self.max_transactions and isinstance(message, Request):
            # Each transaction lives up to 32 s (Timer J): a flood must not hold memory without
            # bound. Responses still reach our own transactions.
            self.counters["dropped_overload"] += 1
            return
        self.counters[f"received_{'request' if isinstance(message, Request) else 'response'}"] += 1
        reliable = target.transport != "udp"
        if isinstance(message, Request):
            quick = self.quick_handlers.get(message.method)
            if quick is not None and self._answer_on_arrival(message, source, target, reliable, now, quick):
                return
        self.layer.receive(message, (target, source), reliable=reliable, now=now)
        self._process()

    def _to_sibling(self, request: Request, source: Source) -> bool:
        """Pass a request within a sibling's dialog (its To tag names the sibling) to it."""
        owner = _tag_node(name_addr_of(request, "To").param("tag"))
        if owner is None or owner == self.node:
            return False
        if not (self.siblings.is_local(owner) or self._alive(owner)):
            return False  # its node is gone: answered here (481, no such dialog)
        self.siblings.forward_request(owner, request.to_bytes(), source.transport, (source.ip, source.port),
                                      source.connection)
        return True

    def refuse(self, error: SipParseError, target: Target) -> None:
        """Answer a request that cannot be processed, if it has a Via to answer to (§8.2; RFC 4475
        asks for the packet's source when the Via itself is broken); drop anything else."""
        headers = error.headers or ()
        if not error.is_request or not any(name == "Via" for name, _ in headers):
            self.counters["dropped"] += 1
            return
        self.counters["refused"] += 1
        response = make_response(Request(method="", uri="", headers=headers), error.status, error.reason)
        self._send(response, target)

    # -- the transaction user --------------------------------------------------------------

    def _process(self) -> None:
        for event in self.layer.events():
            if isinstance(event, RequestReceived):
                self._dispatch(event)
            elif isinstance(event, (AckReceived, CancelReceived)):
                self.counters[type(event).__name__] += 1
            elif isinstance(event, (ResponseReceived, TransactionTimedOut)):
                self.counters[type(event).__name__] += 1  # client transactions arrive with check-sync
                self._settle(event)
        self._flush()

    def _settle(self, event: ResponseReceived | TransactionTimedOut) -> None:
        """A final response (or the timeout) of a client transaction goes to its waiter."""
        if self._observers:
            self._observe(event)
        if isinstance(event, ResponseReceived) and event.response.status < 200:
            return
        future = self._waiting.pop(event.tx, None)
        if future is not None and not future.done():
            future.set_result(event.response if isinstance(event, ResponseReceived) else None)

    def _observe(self, event: ResponseReceived | TransactionTimedOut) -> None:
        """Every response of an observed transaction (1xx, and INVITE 2xx retransmissions in
        Accepted, RFC 6026) goes to its observer while the transaction lives."""
        observer = self._observers.get(event.tx)
        if observer is not None and isinstance(event, ResponseReceived):
            try:
                observer(event.response)
            except Exception:  # noqa: BLE001 - an observer bug must not stop the endpoint
                log.exception("response observer failed")
        if self.layer.state(event.tx) is TxState.TERMINATED:
            self._observers.pop(event.tx, None)

    # -- requests of our own (client transactions) -------------------------------------------

    def send_request(self, request: Request, target: Target, *,
                     on_response: Observer | None = None) -> "asyncio.Future[Response | None]":
        """Send ``request`` now in a new client transaction (RFC 3261 §17.1) to ``target``; the
        future gets its final response, or None when Timer F (B) fired first. Cancelling the
        future only stops waiting: the transaction runs to its end. ``on_response`` sees every
        response the transaction passes up, provisional ones and an INVITE's 2xx
        retransmissions included (which the TU must ACK again, RFC 6026 §8.4).

        Raises:
            TransactionError: the request cannot start a transaction (see ``send_request``).
        """
        future: asyncio.Future[Response | None] = self._loop.create_future()
        tx = self.layer.send_request(request, target, reliable=target.transport != "udp",
                                     now=self._loop.time())
        self._waiting[tx] = future
        if on_response is not None:
            self._observers[tx] = on_response
        if request.method == "CANCEL":
            branch = top_via(request).branch
            self._loop.call_later(64 * self._t1, self._abandon_invite, branch)
        self._flush()
        return future

    def _abandon_invite(self, branch: str) -> None:
        """§9.1: an INVITE still without a final response 64*T1 after its CANCEL is given up.
        An INVITE client transaction has no timer of its own in Proceeding, so a callee that
        rings and never answers would otherwise hold it (and its waiter) for ever."""
        tx = self.layer.client_transaction(branch, "INVITE")
        if tx is None or self.layer.state(tx) is not TxState.PROCEEDING:
            return
        self.layer.terminate(tx)
        self.counters["invite_abandoned"] += 1
        self._observers.pop(tx, None)
        future = self._waiting.pop(tx, None)
        if future is not None and not future.done():
            future.set_result(None)
        self._flush()

    def send_ack(self, ack: Request, target: Target) -> None:
        """Send the ACK for a 2xx, which is no transaction (§13.2.2.4, §17.1.1.3)."""
        self.layer.send(ack, target)
        self._flush()

    def add_handler(self, method: str, handler: Handler) -> None:
        """Handle requests of ``method`` too (e.g. BYE within quickcall dialogs)."""
        self.handlers[method] = handler
        self.allowed = self.allowed | {method}

    def new_tag(self) -> str:
        """A From tag for a dialog of ours; it names this worker, so a sibling that gets a
        request within the dialog (a BYE) passes it here."""
        return f"{self.node}-{secrets.token_hex(6)}"

    def new_branch(self) -> str:
        """A Via branch for a request of ours; it names this worker, so a sibling that gets
        the response passes it here."""
        return f"{MAGIC_COOKIE}-{self.node}-{secrets.token_hex(10)}"

    def connection_for(self, connection_id: str, peer: tuple[str, int]) -> object | None:
        """The TCP connection ``connection_id`` to ``peer``, held here, by a sibling worker or by
        another node that is alive; None when it is closed or its node is dead (unreachable)."""
        connection = self.connections.get(connection_id)
        if connection is not None:
            return connection if getattr(connection, "peer", None) == peer else None
        owner = _connection_node(connection_id)
        if (owner is not None and owner != self.node and self.siblings is not None
                and (self.siblings.is_local(owner) or self._alive(owner))):
            return SiblingConnection(self.siblings, owner, connection_id)
        return None

    async def join_siblings(self, data_dir: str, *, remote: Callable[[str, bytes], None] | None = None,
                            alive: Callable[[str], bool] | None = None) -> None:
        """Exchange messages with the other workers serving ``data_dir`` and, through
        ``remote``, with other nodes (see siblings.py); ``alive`` tells which nodes are up."""
        siblings = Siblings(data_dir, me=self.node, on_response=self.sibling_response,
                            on_request=self.sibling_request, on_send=self.send_on_connection,
                            counters=self.counters, remote=remote)
        await siblings.start()
        self.siblings = siblings
        if alive is not None:
            self._alive = alive

    def sibling_response(self, data: bytes, transport: str, source: tuple[str, int]) -> None:
        """A response a sibling received for one of our requests."""
        try:
            message = parse_datagram(data)
        except SipParseError:
            return
        self.message_received(message, Source(source[0], source[1], transport), Target(transport, source))

    def sibling_request(self, data: bytes, transport: str, source: tuple[str, int], sender: str,
                        connection_id: str | None) -> None:
        """A request within one of our dialogs that reached a sibling; answers go back the way
        it came (through the sibling's connection when it came over TCP)."""
        try:
            message = parse_datagram(data)
        except SipParseError:
            return
        if connection_id is not None and self.siblings is not None:
            target = Target(transport, source, SiblingConnection(self.siblings, sender, connection_id))
        else:
            target = Target(transport, source)
        self.message_received(message, Source(source[0], source[1], transport, connection_id), target)

    def send_on_connection(self, connection_id: str, data: bytes) -> None:
        """Bytes a sibling wants written on one of our TCP connections."""
        connection = self.connections.get(connection_id)
        if connection is None:
            self.counters["sibling_send_dropped"] += 1
            return
        connection.send(data)

    def local_address(self, target: Target) -> tuple[str, int]:
        """The address our messages to ``target`` come from: the SIP port, and the interface
        that reaches the peer when we listen on every address."""
        host, port = ("127.0.0.1", 5060)
        if self._udp is not None:
            host, port = self._udp.get_extra_info("sockname")[:2]
        if host in ("0.0.0.0", "::"):
            family = socket.AF_INET6 if ":" in target.address[0] else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                try:  # connect() on UDP sends nothing: it only picks the route
                    probe.connect(target.address)
                    host = probe.getsockname()[0]
                except OSError:
                    pass
        return host, port

    def _dispatch(self, event: RequestReceived) -> None:
        request = event.request
        target, source = event.target
        # §8.2.6.2: a final response carries a To tag of ours (the registrar makes its own).
        to_tag = random_bytes.hex(8)
        early = self._refusal(request, source, to_tag)
        if isinstance(early, str):
            self._drop(event.tx, early)
            return
        if early is None and request.method == "OPTIONS":
            early = make_response(request, 200, to_tag=to_tag, headers=(
                ("Allow", ", ".join(sorted(self.allowed))), ("Accept", "application/sdp"),
                ("Supported", ", ".join(sorted(SUPPORTED_EXTENSIONS))),
            ))
        if early is None and len(self._tasks) >= self.max_pending:
            # A flood faster than the handlers: refused now (§21.5.4) rather than queued.
            self.counters["overloaded"] += 1
            early = make_response(request, 503, headers=(("Retry-After", "5"),), to_tag=to_tag)
        if early is not None:
            self.layer.respond(event.tx, early, self._loop.time())
            return
        task = self._loop.create_task(self._handle(event.tx, request, source))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _answer_on_arrival(self, request: Request, source: Source, target: Target, reliable: bool, now: float,
                           quick: QuickHandler) -> bool:
        """Answer with the handler's quick answer, if it has one, on the request's arrival: no
        server transaction, no task, no awaits (the layer keeps the response for
        retransmissions, see ``TransactionLayer.answer``). Half of all REGISTERs are first
        attempts without credentials, challenged this way. False: the request takes the usual
        way (a retransmission, or the handler must look further)."""
        if self.layer.holds(request):
            return False  # a retransmission: the answer kept for it, not a fresh challenge
        try:
            response = quick(request, source)
        except Exception:  # noqa: BLE001 - a bug in the shortcut: the handler still answers
            log.exception("quick answer to %s failed", request.method)
            return False
        if response is None:
            return False
        # The refusals come after the quick answer: when there is none, ``_dispatch`` meets
        # them, and they are checked once either way.
        refusal = self._refusal(request, source, random_bytes.hex(8))
        if isinstance(refusal, str):
            self.counters[f"dropped_{refusal}"] += 1
            return True
        response = refusal or response
        if not self.layer.answer(request, response, (target, source), reliable=reliable, now=now):
            return False
        self.counters[f"responded_{request.method}_{response.status}"] += 1
        self._flush()
        return True

    def _refusal(self, request: Request, source: Source, to_tag: str) -> Response | str | None:
        """What every new request meets before its handler: the screen's verdict (a response,
        or the reason to leave it unanswered) or the UAS checks' response (§8.2); None lets the
        request through."""
        if self.screen is not None:
            verdict = self.screen(request, source)
            if verdict is not None:
                status, reason = verdict
                return make_response(request, status, to_tag=to_tag) if status else reason
        return preflight(request, self.allowed, SUPPORTED_EXTENSIONS, to_tag=to_tag)

    def _drop(self, tx: str, reason: str) -> None:
        """Leave a request unanswered: its transaction ends silently (a retransmission starts
        a new one, which meets the same fate)."""
        self.counters[f"dropped_{reason}"] += 1
        try:
            self.layer.terminate(tx)
        except TransactionError:  # already ended (its transport closed)
            pass
        self._flush()

    async def _handle(self, tx: str, request: Request, source: Source) -> None:
        try:
            async with self._in_flight:
                response = await self.handlers[request.method](request, source)
        except Exception:  # noqa: BLE001 - a handler bug must still answer the phone
            log.exception("handler for %s failed", request.method)
            response = make_response(request, 500)
        if response is None:  # the handler chose silence (the registrar, for a banned source)
            self._drop(tx, "banned")
            return
        self.counters[f"responded_{request.method}_{response.status}"] += 1
        try:
            self.layer.respond(tx, response, self._loop.time())
        except Exception:  # noqa: BLE001 - the transaction ended (e.g. transport closed)
            log.debug("transaction %s gone before its response", tx)
        self._flush()

    # -- outbound and timers -----------------------------------------------------------------

    def _flush(self) -> None:
        for outgoing in self.layer.outgoing():
            target = outgoing.target[0] if isinstance(outgoing.target, tuple) else outgoing.target
            self._send(outgoing.message, target)
        self._schedule()

    def _send(self, message: Request | Response, target: Target) -> None:
        data = message.to_bytes()
        if target.connection is not None:
            target.connection.send(data)
        elif self._udp is not None:
            # Held to the end of this loop turn, then sent back to back: a datagram that wakes
            # its sleeping receiver costs 15-25 us of CPU on a virtual machine (the wake-up of
            # another CPU), the ones right behind it about 5 us. A turn that answers a batch of
            # REGISTERs (one Redis reply) pays the wake-up once, not once per response.
            if not self._udp_out:
                self._loop.call_soon(self._send_udp)
            self._udp_out.append((data, target.address))

    def _send_udp(self) -> None:
        out, self._udp_out = self._udp_out, []
        if self._udp is None:
            return
        sendto = self._udp.sendto
        for data, address in out:
            sendto(data, address)

    def _schedule(self) -> None:
        deadline = self.layer.next_deadline()
        if deadline is not None:
            deadline = math.ceil(deadline / TIMER_GRID) * TIMER_GRID
        if self._timer is not None:
            if deadline is not None and self._timer_deadline == deadline:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)
            self._timer_deadline = deadline

    def _on_timer(self) -> None:
        self._timer = None
        self.layer.on_timer(self._loop.time())
        self._process()
        if self._observers:  # INVITE transactions leave Accepted silently (Timer M)
            for tx in [tx for tx in self._observers if self.layer.state(tx) is TxState.TERMINATED]:
                del self._observers[tx]

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait (at most ``timeout`` seconds) for the requests being handled to be answered."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        if self._udp_out:  # their answers, before the caller closes the socket
            self._send_udp()

    def close_connections(self) -> None:
        """Close every TCP connection this process holds (at shutdown)."""
        for connection in list(self.connections.values()):
            connection.close()

    async def close(self) -> None:
        """Let requests in progress answer, then stop the timer; our own requests still
        waiting get None."""
        await self.drain()
        if self._timer is not None:
            self._timer.cancel()
        if self.siblings is not None:
            self.siblings.close()
        for future in self._waiting.values():
            if not future.done():
                future.set_result(None)
        self._waiting.clear()
        self._observers.clear()


_NODE = re.compile(r"[0-9]+\.[0-9a-f]{8}")  # SipEndpoint.node: pid "." random


def _node(text: str) -> str | None:
    return text if _NODE.fullmatch(text) else None


def _tag_node(tag: str | None) -> str | None:
    """The worker named in a tag made by ``new_tag``."""
    if not tag or "-" not in tag:
        return None
    return _node(tag.split("-", 1)[0])


def _branch_node(branch: str | None) -> str | None:
    """The worker named in a branch made by ``new_branch``, if it is one of ours."""
    if not branch or not branch.startswith(MAGIC_COOKIE + "-"):
        return None
    parts = branch.split("-")
    return _node(parts[1]) if len(parts) == 3 else None


def _connection_node(connection_id: str) -> str | None:
    """The worker named in a TCP connection id (``tcp-<node>-<n>``, see tcp.py)."""
    parts = connection_id.split("-")
    return _node(parts[1]) if len(parts) == 3 and parts[0] == "tcp" else None
