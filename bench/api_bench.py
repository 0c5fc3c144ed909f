#!/usr/bin/env python3
"""Devices API benchmark: seed 10,000 devices, then measure fetch and create latency under an
open-loop fixed offered rate, and the wall time of a full paginated listing.

This is a benchmark, not a test: it prints figures and a target table, and exits 0 whatever
they are (1 only if it could not run, e.g. the server did not start). See bench/README.md.

Open loop: request ``i`` of a phase is *scheduled* at ``start + i / rate`` and launched at that
time whether or not earlier requests have completed; its latency is measured from the scheduled
time, not from when the client got round to sending it. Time a request spends waiting for the
client (a late timer, a busy event loop, a free pooled connection) therefore counts against it,
and a server stall shows up in every request scheduled during the stall (no coordinated
omission).

Run from the project root:  .venv/bin/python bench/api_bench.py [--flush] [options]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import uvloop

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
CLK_TCK = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parent.parent


# -- arguments --------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Open-loop benchmark of the sipsvc devices HTTP API (starts its own server).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    store = p.add_mutually_exclusive_group()
    store.add_argument("--redis-url", default=DEFAULT_REDIS_URL,
                       help="Redis the server uses (a database the benchmark may fill)")
    store.add_argument("--embedded", action="store_true",
                       help="omit --redis-url: the server starts its embedded Redis in a temp dir")
    p.add_argument("--flush", action="store_true",
                   help="FLUSHDB the --redis-url database before the run (that database only)")
    p.add_argument("--sipsvc", default=str(ROOT / ".venv" / "bin" / "sipsvc"),
                   help="the sipsvc executable")
    p.add_argument("--devices", type=int, default=10_000, help="devices to seed in the one account")
    p.add_argument("--workers", type=int, default=1, help="sipsvc worker processes (sipsvc serve --workers)")
    p.add_argument("--seed-concurrency", type=int, default=32,
                   help="requests in flight while seeding (closed loop)")
    p.add_argument("--fetch-rate", type=float, default=1000.0, help="offered fetch requests/s")
    p.add_argument("--create-rate", type=float, default=300.0, help="offered create requests/s")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of each measured phase")
    p.add_argument("--warmup", type=float, default=1.0,
                   help="seconds at the phase's rate before each measured phase (not counted)")
    p.add_argument("--page-sizes", default="50,200,1000", help="listing page sizes, comma-separated")
    p.add_argument("--list-repeats", type=int, default=3,
                   help="full listings per page size (the median is judged)")
    p.add_argument("--connections", type=int, default=64,
                   help="size of the client's single connection pool")
    p.add_argument("--request-timeout", type=float, default=10.0,
                   help="a request not answered within this many seconds is an error")
    p.add_argument("--fetch-p99-ms", type=float, default=5.0, help="target p99 of a fetch")
    p.add_argument("--create-p99-ms", type=float, default=10.0, help="target p99 of a create")
    p.add_argument("--list-target-s", type=float, default=1.0, help="target full-listing wall time")
    p.add_argument("--profile-server", metavar="FILE",
                   help="run the server under cProfile and write its stats to FILE "
                        "(slows the server: figures from such a run are not comparable)")
    p.add_argument("--phases", default="fetch,create,list",
                   help="which measured phases to run (seeding always runs), comma-separated")
    p.add_argument("--seed", type=int, default=None, help="random seed for the fetch order")
    p.add_argument("--latency-csv", metavar="PREFIX",
                   help="write PREFIX-<phase>.csv: scheduled offset (s), latency (ms) or error")
    p.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    args = p.parse_args(argv)
    args.page_sizes = [int(x) for x in args.page_sizes.split(",") if x.strip()]
    args.phases = {x.strip() for x in args.phases.split(",") if x.strip()}
    if not args.phases <= {"fetch", "create", "list"}:
        p.error("--phases takes fetch, create and list")
    if args.embedded:
        args.redis_url = None
    if args.flush and args.redis_url is None:
        p.error("--flush needs a --redis-url (the embedded store lives in a fresh temp dir)")
    for name in ("devices", "seed_concurrency", "connections", "list_repeats"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if args.fetch_rate <= 0 or args.create_rate <= 0 or args.duration <= 0:
        p.error("rates and --duration must be positive")
    return args


# -- the server -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen
    base: str
    admin_token: str
    workdir: Path
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful: closes the store (and embedded Redis)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_server(args: argparse.Namespace) -> Server:
    workdir = Path(tempfile.mkdtemp(prefix="sipsvc-bench-"))
    port = free_port()
    token = secrets.token_urlsafe(24)
    if args.profile_server:
        python = Path(args.sipsvc).parent / "python"
        cmd = [str(python), "-m", "cProfile", "-o", str(Path(args.profile_server).resolve()),
               "-m", "sipsvc.cli"]
    else:
        cmd = [args.sipsvc]
    cmd += ["serve", "--http", f"127.0.0.1:{port}", "--sip", f"127.0.0.1:{free_port()}",
            "--data-dir", str(workdir / "data"), "--log-level", "warning",
            "--workers", str(args.workers)]
    if args.redis_url:
        cmd += ["--redis-url", args.redis_url]
    env = dict(os.environ, SIPSVC_ADMIN_TOKEN=token)
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                cwd=str(ROOT))
    return Server(proc, f"http://127.0.0.1:{port}", token, workdir, log_path)


async def wait_until_up(session: aiohttp.ClientSession, server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited with status {server.proc.returncode}:\n{server.log_tail()}")
        try:
            async with session.get(f"{server.base}/v2/accounts/none",
                                   headers={"X-Auth-Token": server.admin_token},
                                   timeout=aiohttp.ClientTimeout(total=1)) as resp:
                await resp.read()
                return  # any HTTP answer means it is serving (the store opens before it listens)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server did not answer within {timeout:.0f} s:\n{server.log_tail()}")
        await asyncio.sleep(0.05)


def flush_db(url: str) -> None:
    import redis  # the venv has redis-py (a dependency of sipsvc)

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


# -- CPU accounting (to see who is using the 2 cores) -----------------------------------------

def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of one process (not its children)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def child_pids(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine, all cores, from /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return float("nan"), float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK


class CpuMeter:
    """CPU used by the client (this process), the sipsvc server and Redis over an interval."""

    def __init__(self, server: Server, redis_url: str | None) -> None:
        self.server = server
        self.redis_url = redis_url
        self._redis = None
        if redis_url:
            import redis
            self._redis = redis.Redis.from_url(redis_url)

    def _redis_cpu(self) -> float:
        if self._redis is not None:
            try:
                info = self._redis.info("cpu")
                return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
            except Exception:  # noqa: BLE001 - accounting is best effort
                return float("nan")
        # Embedded: the redis-server is a child of the sipsvc process.
        return sum(proc_cpu_seconds(pid) for pid in child_pids(self.server.proc.pid))

    def sample(self) -> tuple[float, ...]:
        return (time.perf_counter(), time.process_time(),
                proc_cpu_seconds(self.server.proc.pid), self._redis_cpu(), *machine_cpu_seconds())

    @staticmethod
    def usage(before, after) -> dict[str, float]:
        """% of one core; ``other`` is every other process on the machine (background load
        skews the figures: check it is near 0), ``steal`` the hypervisor's share."""
        wall = after[0] - before[0]
        out = {name: 100.0 * (after[i] - before[i]) / wall
               for i, name in ((1, "client"), (2, "server"), (3, "redis"))}
        busy = 100.0 * (after[4] - before[4]) / wall
        out["other"] = max(0.0, busy - out["client"] - out["server"] - out["redis"])
        out["steal"] = 100.0 * (after[5] - before[5]) / wall
        return out

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()


def fmt_cpu(usage: dict[str, float]) -> str:
    return "CPU (% of one core): " + ", ".join(f"{k} {v:.0f}%" for k, v in usage.items())


# -- statistics -------------------------------------------------------------------------------

def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil
    return sorted_values[int(rank) - 1]


@dataclass
class PhaseResult:
    name: str
    offered_rate: float
    scheduled: int
    ok: int
    errors: int
    error_kinds: dict[str, int]
    window: float  # seconds from the first scheduled send to the last completion
    latencies: list[float] = field(repr=False)  # seconds, successful requests
    send_lags: list[float] = field(repr=False)  # seconds from scheduled time to the client sending
    cpu: dict[str, float]

    @property
    def achieved_rate(self) -> float:
        return self.ok / self.window if self.window > 0 else 0.0

    def figures(self) -> dict:
        lat = sorted(self.latencies)
        lag = sorted(self.send_lags)
        return {
            "offered_rps": self.offered_rate, "scheduled": self.scheduled, "ok": self.ok,
            "errors": self.errors, "error_kinds": self.error_kinds,
            "achieved_rps": round(self.achieved_rate, 1),
            "p50_ms": percentile(lat, 50) * 1e3, "p90_ms": percentile(lat, 90) * 1e3,
            "p99_ms": percentile(lat, 99) * 1e3, "p999_ms": percentile(lat, 99.9) * 1e3,
            "max_ms": (lat[-1] if lat else float("nan")) * 1e3,
            "mean_ms": (statistics.fmean(lat) if lat else float("nan")) * 1e3,
            "send_lag_p99_ms": percentile(lag, 99) * 1e3,
            "send_lag_max_ms": (lag[-1] if lag else float("nan")) * 1e3,
            "cpu_percent": {k: round(v, 1) for k, v in self.cpu.items()},
        }


def print_phase(result: PhaseResult) -> None:
    f = result.figures()
    print(f"  offered {f['offered_rps']:.0f}/s for {result.scheduled} requests; "
          f"achieved {f['achieved_rps']:.1f}/s ok, errors {f['errors']}"
          + (f" {f['error_kinds']}" if f["errors"] else ""))
    print(f"  latency ms: p50 {f['p50_ms']:.2f}  p90 {f['p90_ms']:.2f}  p99 {f['p99_ms']:.2f}  "
          f"p99.9 {f['p999_ms']:.2f}  max {f['max_ms']:.2f}  mean {f['mean_ms']:.2f}")
    print(f"  client send lag ms (scheduled -> sent): p99 {f['send_lag_p99_ms']:.2f}  "
          f"max {f['send_lag_max_ms']:.2f}")
    print(f"  {fmt_cpu(result.cpu)}")


class _RawConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time, minimal parsing."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None:
            return
        head = bytes(self.buffer[:end]).lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15:head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None]) if at >= 0 else 0
        if len(self.buffer) < end + 4 + length:
            return
        status = int(self.buffer[9:12])
        del self.buffer[:end + 4 + length]
        waiter, self.waiter = self.waiter, None
        if not waiter.done():
            waiter.set_result(status)


class RawHttpPool:
    """A lean HTTP client for the open-loop phases: pre-encoded requests on keep-alive
    connections, parsing only the status and Content-Length, so the load generator takes
    little of the CPU it shares with the server (aiohttp's client took about half a core)."""

    def __init__(self, base: str, limit: int) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.idle: list[_RawConnection] = []
        self.limit = asyncio.Semaphore(limit)

    async def request(self, data: bytes, timeout: float) -> int:
        async with self.limit:
            connection = self.idle.pop() if self.idle else None
            if connection is None or connection.closed:
                loop = asyncio.get_running_loop()
                _, connection = await loop.create_connection(_RawConnection, self.host, self.port)
            connection.waiter = asyncio.get_running_loop().create_future()
            connection.transport.write(data)
            try:
                async with asyncio.timeout(timeout):
                    status = await connection.waiter
            except BaseException:
                connection.transport.close()
                raise
            self.idle.append(connection)
            return status

    def close(self) -> None:
        for connection in self.idle:
            connection.transport.close()


def raw_request(method: str, path: str, host: str, token: str, body: bytes = b"") -> bytes:
    head = (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


# -- the benchmark ----------------------------------------------------------------------------

class Bench:
    def __init__(self, args: argparse.Namespace, session: aiohttp.ClientSession, server: Server) -> None:
        self.args = args
        self.session = session
        self.server = server
        self.base = server.base
        self.account_id = ""
        self.headers: dict[str, str] = {}
        self.device_ids: list[str] = []
        self.created_ok = 0  # every 201 from a device create, seeding included
        self.next_device = 0
        self.run_tag = secrets.token_hex(4)
        self.timeout = aiohttp.ClientTimeout(total=args.request_timeout)

    async def setup_account(self) -> None:
        admin = {"X-Auth-Token": self.server.admin_token}
        realm = f"bench-{self.run_tag}.sip.test"  # unique per run: realms are unique in the store
        async with self.session.put(f"{self.base}/v2/accounts", headers=admin,
                                    json={"data": {"name": "Bench", "realm": realm}}) as resp:
            body = await resp.json(content_type=None)
            if resp.status != 201:
                raise RuntimeError(f"account create: {resp.status} {body}")
        self.account_id = body["data"]["id"]
        api_key = body["data"]["api_key"]
        async with self.session.put(f"{self.base}/v2/api_auth",
                                    json={"data": {"api_key": api_key}}) as resp:
            body = await resp.json(content_type=None)
            if resp.status != 201:
                raise RuntimeError(f"api_auth: {resp.status} {body}")
        self.headers = {"X-Auth-Token": body["auth_token"], "Content-Type": "application/json"}
        print(f"account {self.account_id} (realm {realm}) and its auth token ready")

    def new_device_body(self) -> bytes:
        """A distinct device: unique name, SIP username and MAC within the account."""
        n = self.next_device
        self.next_device += 1
        mac = ":".join(f"{b:02x}" for b in (0x02, 0x00, *n.to_bytes(4, "big")))
        return json.dumps({"data": {
            "name": f"bench device {n}",
            "sip": {"username": f"u{self.run_tag}{n:07d}", "password": f"pw-{self.run_tag}-{n}"},
            "mac_address": mac,
        }}, separators=(",", ":")).encode()

    # seeding: closed loop with bounded concurrency, as fast as the server takes them

    async def seed(self) -> dict:
        total = self.args.devices
        url = f"{self.base}/v2/accounts/{self.account_id}/devices"
        remaining = iter(range(total))
        errors: dict[str, int] = {}

        async def worker() -> None:
            for _ in remaining:
                body = self.new_device_body()
                try:
                    async with self.session.put(url, data=body, headers=self.headers,
                                                timeout=self.timeout) as resp:
                        raw = await resp.read()
                        if resp.status == 201:
                            self.device_ids.append(json.loads(raw)["data"]["id"])
                            self.created_ok += 1
                        else:
                            errors[str(resp.status)] = errors.get(str(resp.status), 0) + 1
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1

        print(f"seeding {total} devices, {self.args.seed_concurrency} in flight ...", flush=True)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(min(self.args.seed_concurrency, total))))
        elapsed = time.perf_counter() - t0
        rate = len(self.device_ids) / elapsed
        print(f"  created {len(self.device_ids)} in {elapsed:.2f} s = {rate:.0f} devices/s; "
              f"errors {sum(errors.values())}" + (f" {errors}" if errors else ""))
        if len(self.device_ids) != total:
            raise RuntimeError("seeding failed; not measuring on an incomplete data set")
        return {"devices": total, "seconds": round(elapsed, 3), "rate_per_s": round(rate, 1),
                "errors": sum(errors.values())}

    # open-loop phases

    async def open_loop(self, name: str, rate: float, duration: float, make_request,
                        measure: bool = True) -> PhaseResult | None:
        """Launch ``rate * duration`` requests on a fixed schedule. ``make_request()`` sends one
        request and returns None on success or the error kind; latency runs from the schedule."""
        n = max(1, int(round(rate * duration)))
        interval = 1.0 / rate
        latencies: list[float] = []
        send_lags: list[float] = []
        timeline: list[tuple[float, float | str]] = []  # (scheduled, latency s | error kind)
        errors: dict[str, int] = {}
        last_done = [0.0]
        tasks: set[asyncio.Task] = set()
        loop = asyncio.get_running_loop()

        async def one(scheduled: float) -> None:
            sent = time.perf_counter()
            send_lags.append(sent - scheduled)
            try:
                kind = await make_request()
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                kind = type(exc).__name__
            done = time.perf_counter()
            last_done[0] = max(last_done[0], done)
            if kind is None:
                latencies.append(done - scheduled)
                timeline.append((scheduled, done - scheduled))
            else:
                errors[kind] = errors.get(kind, 0) + 1
                timeline.append((scheduled, kind))

        meter = CpuMeter(self.server, self.args.redis_url) if measure else None
        before = meter.sample() if meter else None
        start = time.perf_counter() + 0.01
        i = 0
        while i < n:
            now = time.perf_counter()
            due = start + i * interval
            if due > now:
                await asyncio.sleep(due - now)
                continue
            # Launch everything that is due (a late wake-up launches a burst; the lateness is
            # charged to those requests because latency runs from the scheduled time).
            while i < n and start + i * interval <= now:
                task = loop.create_task(one(start + i * interval))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
        if tasks:  # bounded: every request has its own timeout
            await asyncio.wait(set(tasks), timeout=self.args.request_timeout + 5)
        for task in list(tasks):
            task.cancel()
            errors["unfinished"] = errors.get("unfinished", 0) + 1
        if not measure:
            return None
        after = meter.sample()
        meter.close()
        if self.args.latency_csv:
            with open(f"{self.args.latency_csv}-{name}.csv", "w") as out:
                out.write("scheduled_s,latency_ms\n")
                for at, value in sorted(timeline, key=lambda x: x[0]):
                    cell = f"{value * 1e3:.3f}" if isinstance(value, float) else value
                    out.write(f"{at - start:.4f},{cell}\n")
        return PhaseResult(
            name=name, offered_rate=rate, scheduled=n, ok=len(latencies),
            errors=sum(errors.values()), error_kinds=errors,
            window=max(last_done[0], start) - start, latencies=latencies, send_lags=send_lags,
            cpu=CpuMeter.usage(before, after),
        )

    async def phase(self, name: str, rate: float, make_request) -> PhaseResult:
        print(f"{name}: open loop at {rate:.0f}/s for {self.args.duration:g} s "
              f"(after {self.args.warmup:g} s warm-up) ...", flush=True)
        if self.args.warmup > 0:
            await self.open_loop(name, rate, self.args.warmup, make_request, measure=False)
        result = await self.open_loop(name, rate, self.args.duration, make_request)
        print_phase(result)
        return result

    async def fetch_phase(self) -> PhaseResult:
        rng = random.Random(self.args.seed)
        path = f"/v2/accounts/{self.account_id}/devices/"
        ids = self.device_ids[: self.args.devices]  # only the seeded, known-existing devices
        host, token = urlsplit(self.base).netloc, self.headers["X-Auth-Token"]
        requests = [raw_request("GET", path + device_id, host, token) for device_id in ids]
        pool = RawHttpPool(self.base, self.args.connections)

        async def fetch() -> str | None:
            status = await pool.request(rng.choice(requests), self.args.request_timeout)
            return None if status == 200 else str(status)

        try:
            return await self.phase("fetch", self.args.fetch_rate, fetch)
        finally:
            pool.close()

    async def create_phase(self) -> PhaseResult:
        path = f"/v2/accounts/{self.account_id}/devices"
        host, token = urlsplit(self.base).netloc, self.headers["X-Auth-Token"]
        pool = RawHttpPool(self.base, self.args.connections)

        async def create() -> str | None:
            status = await pool.request(raw_request("PUT", path, host, token, self.new_device_body()),
                                        self.args.request_timeout)
            if status != 201:
                return str(status)
            self.created_ok += 1
            return None

        try:
            return await self.phase("create", self.args.create_rate, create)
        finally:
            pool.close()

    # listing

    async def full_listing(self, page_size: int) -> tuple[float, int, int, int]:
        """(wall seconds, rows, distinct ids, pages) of one listing followed to its end."""
        url = f"{self.base}/v2/accounts/{self.account_id}/devices"
        headers = {"X-Auth-Token": self.headers["X-Auth-Token"]}
        ids: set[str] = set()
        rows = pages = 0
        start_key = None
        limit = self.created_ok // page_size + 10  # bounded even if paging never ends
        t0 = time.perf_counter()
        while pages < limit:
            params = {"page_size": str(page_size)}
            if start_key is not None:
                params["start_key"] = start_key
            async with self.session.get(url, params=params, headers=headers,
                                        timeout=self.timeout) as resp:
                raw = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"listing page {pages}: {resp.status} {raw[:300]!r}")
            body = json.loads(raw)
            pages += 1
            rows += len(body["data"])
            ids.update(row["id"] for row in body["data"])
            start_key = body.get("next_start_key")
            if start_key is None:
                break
        elapsed = time.perf_counter() - t0
        if start_key is not None:
            raise RuntimeError(f"listing did not end after {pages} pages")
        return elapsed, rows, len(ids), pages

    async def listing_phase(self) -> list[dict]:
        expected = self.created_ok
        print(f"full listing ({self.args.list_repeats}x per page size), expecting {expected} rows ...",
              flush=True)
        out = []
        for size in self.args.page_sizes:
            meter = CpuMeter(self.server, self.args.redis_url)
            before = meter.sample()
            runs = [await self.full_listing(size) for _ in range(self.args.list_repeats)]
            cpu = CpuMeter.usage(before, meter.sample())
            meter.close()
            times = [r[0] for r in runs]
            rows, distinct, pages = runs[-1][1], runs[-1][2], runs[-1][3]
            count_ok = all(r[1] == expected and r[2] == expected for r in runs)
            median = statistics.median(times)
            print(f"  page_size {size}: {pages} pages, {rows} rows ({distinct} distinct), "
                  f"count {'OK' if count_ok else f'WRONG (expected {expected})'}; wall s: "
                  + ", ".join(f"{t:.3f}" for t in times) + f" (median {median:.3f}); {fmt_cpu(cpu)}")
            out.append({"page_size": size, "pages": pages, "rows": rows, "distinct": distinct,
                        "expected": expected, "count_ok": count_ok,
                        "seconds": [round(t, 4) for t in times], "median_s": round(median, 4),
                        "cpu_percent": {k: round(v, 1) for k, v in cpu.items()}})
        return out


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_summary(args, seed: dict, fetch: PhaseResult | None, create: PhaseResult | None,
                  listing: list[dict]) -> None:
    rows = []
    for result, target_ms in ((fetch, args.fetch_p99_ms), (create, args.create_p99_ms)):
        if result is None:
            continue
        f = result.figures()
        ok = f["p99_ms"] <= target_ms and f["errors"] == 0
        rows.append((f"{result.name} @ {result.offered_rate:.0f}/s: p99",
                     f"<= {target_ms:g} ms",
                     f"{f['p99_ms']:.2f} ms (p50 {f['p50_ms']:.2f}, max {f['max_ms']:.1f}; "
                     f"{f['achieved_rps']:.0f}/s, {f['errors']} err)", verdict(ok)))
    for entry in listing:
        ok = entry["median_s"] <= args.list_target_s and entry["count_ok"]
        rows.append((f"full listing, page_size {entry['page_size']}",
                     f"<= {args.list_target_s:g} s",
                     f"{entry['median_s']:.3f} s ({entry['rows']} rows, "
                     f"count {'ok' if entry['count_ok'] else 'WRONG'})", verdict(ok)))
    widths = [max(len(r[i]) for r in rows + [("what", "target", "measured", "result")]) for i in range(4)]
    line = "  ".join("-" * w for w in widths)
    print()
    print(f"summary (seeded {seed['devices']} devices at {seed['rate_per_s']:.0f}/s)")
    print(line)
    for r in [("what", "target", "measured", "result")] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print(line)


async def run(args: argparse.Namespace, server: Server) -> dict:
    connector = aiohttp.TCPConnector(limit=args.connections, limit_per_host=args.connections,
                                     ttl_dns_cache=None, use_dns_cache=True)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        await wait_until_up(session, server)
        bench = Bench(args, session, server)
        await bench.setup_account()
        seed = await bench.seed()
        fetch = await bench.fetch_phase() if "fetch" in args.phases else None
        create = await bench.create_phase() if "create" in args.phases else None
        listing = await bench.listing_phase() if "list" in args.phases else []
        print_summary(args, seed, fetch, create, listing)
        return {"seed": seed, "fetch": fetch and fetch.figures(),
                "create": create and create.figures(), "listing": listing}


def code_version() -> str:
    """The commit measured, and whether sipsvc/ had uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "sipsvc"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head or 'unknown'}{' + uncommitted changes in sipsvc/' if dirty else ''}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    store = args.redis_url or "embedded Redis"
    print(f"sipsvc devices API benchmark - {time.strftime('%Y-%m-%d %H:%M:%S %z')} - "
          f"{os.cpu_count()} CPUs - Python {sys.version.split()[0]} - aiohttp {aiohttp.__version__}")
    print(f"code: {code_version()}; store: {store}" + ("  (flushing it first)" if args.flush else ""))
    if args.flush:
        flush_db(args.redis_url)
    server = start_server(args)
    try:
        # uvloop keeps the load generator's CPU (it shares the 2 cores with the server) low.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            figures = runner.run(run(args, server))
    except (RuntimeError, aiohttp.ClientError, OSError) as exc:
        print(f"api_bench: error: {exc}", file=sys.stderr)
        if server.proc.poll() is not None:
            print(f"the server exited with status {server.proc.returncode}; its log ends:\n"
                  f"{server.log_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)
    if args.json:
        figures["args"] = {k: v for k, v in vars(args).items()}
        figures["date"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        figures["cpus"] = os.cpu_count()
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
