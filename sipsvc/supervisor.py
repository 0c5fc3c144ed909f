"""``sipsvc serve --workers N``: N worker processes, each a whole service (HTTP API and SIP), all
bound to the same addresses with SO_REUSEPORT so the kernel spreads peers over them.

For UDP the workers pick a socket by a hash of the datagram's first bytes (``transport/
spread.py``), so even one busy peer with one socket (a proxy, or SIPp's ``-t u1``) spreads over
every core while a retransmission still reaches the worker holding its transaction. TCP
connections and HTTP are spread by the kernel's address hash. Workers share nothing but Redis,
exactly like several nodes.

The parent starts the embedded Redis (when no URL is configured) and hands every worker the
resolved configuration through ``SIPSVC_*`` variables, forwards SIGTERM/SIGINT, and restarts a
worker that dies after start-up.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace

from prometheus_client.multiprocess import mark_process_dead

from .app import admin_token
from .config import SETTINGS, Config, ConfigError
from .store.connection import EmbeddedRedis

log = logging.getLogger("sipsvc")
STARTUP_GRACE = 5.0  # a worker dying sooner than this is a start-up failure, not a crash


def _environment(config: Config) -> dict[str, str]:
    env = {}
    for setting in SETTINGS:
        value = getattr(config, setting.attr)
        if value is None:
            continue
        env[setting.env] = ",".join(value) if isinstance(value, tuple) else str(value)
    env["SIPSVC_WORKERS"] = "1"
    return env


def _spawn(env: dict[str, str], workers: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sipsvc", "serve", "--reuse-port", str(workers)],
                            env={**os.environ, **env}, stdin=subprocess.DEVNULL)


def run_workers(config: Config) -> int:
    if config.http.port == 0 or config.sip.port == 0:
        raise ConfigError("workers: several workers need fixed http and sip ports (not 0)")
    embedded = None
    if not config.redis_url:
        embedded = EmbeddedRedis(config.data_dir)
        embedded.start()
        config = replace(config, redis_url=embedded.url)
    env = _environment(replace(config, admin_token=admin_token(config)))
    # prometheus-client's multiprocess mode: every worker writes its metrics to files here and
    # a scrape served by any worker reads them all (api/metrics.py).
    metrics_dir = tempfile.mkdtemp(prefix="sipsvc-metrics-")
    env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    stopping = False

    def stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers.values():
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)

    workers: dict[int, subprocess.Popen] = {}
    started: dict[int, float] = {}
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for _ in range(config.workers):
            worker = _spawn(env, config.workers)
            workers[worker.pid], started[worker.pid] = worker, time.monotonic()
        log.info("%d workers on http %s and sip %s", config.workers, config.http, config.sip)
        status = 0
        while workers:
            try:
                pid, code = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            worker = workers.pop(pid, None)
            if worker is None:
                continue  # not a worker (the embedded Redis is waited for by its owner)
            worker.returncode = os.waitstatus_to_exitcode(code)
            mark_process_dead(pid, metrics_dir)  # its gauges leave the sums; its counters stay
            if stopping:
                continue
            if time.monotonic() - started.pop(pid) < STARTUP_GRACE:
                log.error("a worker failed to start (exit %s); stopping", worker.returncode)
                status = 2
                stop(signal.SIGTERM, None)
                continue
            log.error("worker %d died (exit %s); starting another", pid, worker.returncode)
            replacement = _spawn(env, config.workers)
            workers[replacement.pid], started[replacement.pid] = replacement, time.monotonic()
        return status
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
        if embedded is not None:
            embedded.stop()
