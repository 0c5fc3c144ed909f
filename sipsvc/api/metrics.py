"""Prometheus metrics (the ``prometheus-client`` package), served at ``GET /metrics``.

The SIP hot path pays nothing per packet for them: the endpoint, the transaction layer, the
registrar and the NOTIFY sender keep plain ``collections.Counter``s and integers (most existed
before the metrics), and ``Metrics.sync`` copies their growth into the Prometheus counters, at
every scrape and on the event-loop lag tick. The HTTP side is measured by a middleware, labelled
by the route's canonical path (``/v2/accounts/{account_id}/devices``), never the raw URL, so the
number of series stays bounded. Registered devices are counted in Redis at scrape time.

With ``sipsvc serve --workers N`` the supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` for its
workers: every worker writes its metrics to files there (prometheus-client's multiprocess mode)
and a scrape, whichever worker the kernel hands it to, answers for all of them (counters and
histograms summed; gauges summed over live workers).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from typing import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
LAG_INTERVAL = 0.5  # seconds between two event-loop lag measurements (and counter copies)
_METHODS = frozenset({"GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_RESPONDED = re.compile(r"^responded_REGISTER_(\d{3})$")
_API_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

access_log = logging.getLogger("sipsvc.access")  # one DEBUG line per API request
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _RegisteredDevices:
    """A gauge whose value the /metrics view reads from Redis just before rendering."""

    def __init__(self) -> None:
        self.value: int | None = None

    def collect(self):
        if self.value is not None:
            family = GaugeMetricFamily(
                "sipsvc_registered_devices",
                "Devices with at least one live registration, over every account (read from Redis "
                "at scrape time: the same on every node and worker)")
            family.add_metric([], self.value)
            yield family


class _Mirror:
    """Copies the growth of a ``collections.Counter`` (or of named integers) into Prometheus
    counters; ``route`` picks the labelled counter for a key (None: not exported)."""

    def __init__(self, read: Callable[[], dict[str, int]], route: Callable[[str], Counter | None]) -> None:
        self._read = read
        self._route = route
        self._seen: dict[str, int] = {}
        self._children: dict[str, Counter | None] = {}

    def sync(self) -> None:
        for key, value in list(self._read().items()):
            delta = value - self._seen.get(key, 0)
            if delta <= 0:
                continue
            self._seen[key] = value
            if key not in self._children:
                self._children[key] = self._route(key)
            child = self._children[key]
            if child is not None:
                child.inc(delta)


class Metrics:
    """Every metric of one process, and the registry /metrics renders."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess = bool(multiprocess_dir)
        self.registry = CollectorRegistry()
        # In multiprocess mode the values live in files; the registry only reads them all back.
        owner = None if self.multiprocess else self.registry
        if self.multiprocess:
            MultiProcessCollector(self.registry, path=multiprocess_dir)
        self.registered_devices = _RegisteredDevices()
        self.registry.register(self.registered_devices)
        self.api_requests = Counter(
            "sipsvc_api_requests", "HTTP API requests answered, by method, route and status",
            ["method", "route", "status"], registry=owner)
        self.api_latency = Histogram(
            "sipsvc_api_request_duration_seconds", "HTTP API request latency, by method and route",
            ["method", "route"], buckets=_API_BUCKETS, registry=owner)
        self.loop_lag = Histogram(
            "sipsvc_event_loop_lag_seconds",
            f"How late a {LAG_INTERVAL} s timer of the event loop fires (time the loop was busy)",
            buckets=_LAG_BUCKETS, registry=owner)
        self.redis_errors = Counter(
            "sipsvc_redis_errors", "Redis commands that failed (unreachable, timeout), by who saw it",
            ["source"], registry=owner)
        self.register_responses = Counter(
            "sipsvc_sip_register_responses", "Final responses to REGISTER requests, by status",
            ["status"], registry=owner)
        self.auth_failures = Counter(
            "sipsvc_sip_auth_failures",
            "REGISTERs refused 403: wrong or unknown credentials, disabled device, another AOR",
            registry=owner)
        self.received = Counter(
            "sipsvc_sip_messages_received", "SIP messages received and parsed, by kind",
            ["kind"], registry=owner)
        self.dropped = Counter(
            "sipsvc_sip_messages_dropped", "SIP messages dropped unanswered, by reason",
            ["reason"], registry=owner)
        self.refused = Counter(
            "sipsvc_sip_requests_refused", "SIP requests that did not parse, answered 400 or 505",
            registry=owner)
        self.sip_events = Counter(
            "sipsvc_sip_events", "Other events of the SIP endpoint (ACKs, CANCELs, client transaction "
            "answers and timeouts, messages passed between workers)", ["event"], registry=owner)
        self.retransmissions = Counter(
            "sipsvc_sip_retransmissions",
            "SIP retransmissions: received (requests absorbed by their transaction) and sent "
            "(on Timer A, E or G)", ["direction"], registry=owner)
        self.transactions = Gauge(
            "sipsvc_sip_transactions_in_flight", "SIP transactions alive (server and client)",
            registry=owner, multiprocess_mode="livesum")
        self.notify_results = Counter(
            "sipsvc_notify_results", "check-sync NOTIFYs by final outcome: SIP status, timeout, "
            "unreachable or error", ["status"], registry=owner)
        self._mirrors: list[_Mirror] = []
        self._gauges: list[Callable[[], None]] = []
        self._routes: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    @classmethod
    def for_process(cls) -> "Metrics":
        """Multiprocess mode exactly when prometheus-client itself is in it (the variable is
        read once, when the package is imported)."""
        return cls(os.environ.get(MULTIPROCESS_DIR_ENV) or None)

    # -- sources ---------------------------------------------------------------------------

    def watch_endpoint(self, endpoint) -> None:
        """The SIP endpoint's counters, and its transaction layer's."""
        self._mirrors.append(_Mirror(lambda: endpoint.counters, self._endpoint_counter))
        layer = endpoint.layer
        self._mirrors.append(_Mirror(
            lambda: {"received": layer.retransmissions_received, "sent": layer.retransmissions_sent},
            lambda key: self.retransmissions.labels(key)))
        self._gauges.append(lambda: self.transactions.set(len(layer)))

    def watch_registrar(self, registrar) -> None:
        routes = {"auth_failures": self.auth_failures, "store_errors": self.redis_errors.labels("registrar")}
        self._mirrors.append(_Mirror(lambda: registrar.counters, routes.get))

    def watch_guard(self, guard) -> None:
        """Scanners dropped, banned requests and bans set (``security_*`` SIP events)."""
        self._mirrors.append(_Mirror(lambda: guard.counters, lambda key: self.sip_events.labels(f"security_{key}")))

    def watch_notifier(self, notifier) -> None:
        self._mirrors.append(_Mirror(lambda: notifier.results, lambda key: self.notify_results.labels(key)))

    def watch_relay(self, relay) -> None:
        """Messages published to other nodes (``relayed``, ``relay_unheard``: no node listened,
        ``relay_failed``: Redis failed), as SIP endpoint events."""
        self._mirrors.append(_Mirror(lambda: relay.counters, lambda key: self.sip_events.labels(key)))

    def _endpoint_counter(self, key: str) -> Counter | None:
        responded = _RESPONDED.match(key)
        if responded:  # final responses of the registrar (BYE and others are sip_events)
            return self.register_responses.labels(responded.group(1))
        if key in ("received_request", "received_response"):
            return self.received.labels(key.removeprefix("received_"))
        if key == "dropped":
            return self.dropped.labels("unusable")
        if key.startswith("dropped_"):
            return self.dropped.labels(key.removeprefix("dropped_"))
        if key == "refused":
            return self.refused
        return self.sip_events.labels(key)

    def sync(self) -> None:
        """Copy what the services counted since the last call."""
        for mirror in self._mirrors:
            mirror.sync()
        for update in self._gauges:
            update()

    # -- the HTTP side -----------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self._observe(request, status, time.perf_counter() - started)

    def _observe(self, request: web.Request, status: int, elapsed: float) -> None:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        key = (method, route, status)
        children = self._routes.get(key)
        if children is None:
            children = self._routes[key] = (self.api_requests.labels(method, route, str(status)),
                                            self.api_latency.labels(method, route))
        children[0].inc()
        children[1].observe(elapsed)
        if access_log.isEnabledFor(logging.DEBUG):
            access_log.debug("%s %s %d %.1f ms", request.method, request.path, status, elapsed * 1000,
                             extra={"route": route, "status": status})

    def render(self, registered_devices: int | None) -> bytes:
        self.sync()
        self.registered_devices.value = registered_devices
        return generate_latest(self.registry)


CONTENT_TYPE = CONTENT_TYPE_LATEST


async def measure_loop_lag(metrics: Metrics, interval: float = LAG_INTERVAL) -> None:
    """Forever: sleep ``interval`` and record how late the wake-up came (the time callbacks
    held the loop); copy the services' counters on the way."""
    loop = asyncio.get_running_loop()
    while True:
        start = loop.time()
        await asyncio.sleep(interval)
        metrics.loop_lag.observe(max(loop.time() - start - interval, 0.0))
        metrics.sync()
