"""Private Redis servers for the fault tests: plain, Sentinel and a small Cluster, each a real
``redis-server`` on loopback on free ports, stopped by the test that started it (by its pid).
The shared test Redis is never stopped or reconfigured."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from sipsvc.store.connection import redis_server_binary
from tests.conftest import free_port

START_TIMEOUT = 10.0


@dataclass
class Server:
    """One redis-server (or sentinel) process; ``restart`` brings it back on the same port and
    directory (with its append-only file when it has one)."""

    port: int
    directory: Path
    args: list[str]
    process: subprocess.Popen | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.directory / f"redis-{self.port}.log"

    def start(self) -> "Server":
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [redis_server_binary(), *self.args, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.directory), "--logfile", str(self.log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_ping(self.port, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(START_TIMEOUT)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def wait_for_ping(port: int, process: subprocess.Popen) -> None:
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            try:
                client.ping()
                return
            except (redis.AuthenticationError, redis.ResponseError):
                return  # it answers (and wants a password)
            except (redis.RedisError, OSError):
                assert process.poll() is None, f"redis-server on port {port} exited"
                assert time.monotonic() < deadline, f"redis-server on port {port} did not start"
                time.sleep(0.05)
    finally:
        client.close()


def plain(directory: Path, *, appendonly: bool = True) -> Server:
    args = ["--save", ""]
    if appendonly:
        args += ["--appendonly", "yes", "--appendfsync", "always"]
    return Server(free_port(), directory, args)


def sentinel(directory: Path, master_port: int, service: str) -> Server:
    """A Sentinel watching the master on ``master_port`` as ``service`` (quorum 1)."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = directory / f"sentinel-{port}.conf"
    conf.write_text(f"sentinel monitor {service} 127.0.0.1 {master_port} 1\n"
                    f"sentinel down-after-milliseconds {service} 1000\n"
                    f"sentinel failover-timeout {service} 5000\n")
    return Server(port, directory, [str(conf), "--sentinel"])


def _cluster_port() -> int:
    """A free port whose cluster bus port (10000 above it) is free too."""
    for _ in range(200):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise AssertionError("no free port pair for a cluster node")


def cluster(directory: Path, size: int = 3) -> list[Server]:
    """``size`` masters (no replicas) with the hash slots shared out among them."""
    servers = [Server(_cluster_port(), directory / f"node{i}",
                      ["--save", "", "--cluster-enabled", "yes", "--cluster-node-timeout", "2000",
                       "--cluster-config-file", "nodes.conf"]) for i in range(size)]
    try:
        for server in servers:
            server.start()
        # What ``redis-cli --cluster create`` does, without needing redis-cli: share the 16384
        # slots out in ranges, then introduce the nodes to each other.
        share = 16384 // size
        for i, server in enumerate(servers):
            with redis.Redis(port=server.port) as client:
                last = 16383 if i == size - 1 else (i + 1) * share - 1
                client.execute_command("CLUSTER", "ADDSLOTS", *range(i * share, last + 1))
        with redis.Redis(port=servers[0].port) as client:
            for server in servers[1:]:
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", server.port)
        deadline = time.monotonic() + START_TIMEOUT
        for server in servers:  # every node knows them all and serves every slot
            with redis.Redis(port=server.port, decode_responses=True) as client:
                while True:
                    info = client.cluster("info")
                    if info.get("cluster_state") == "ok" and int(info.get("cluster_known_nodes", 0)) == size:
                        break
                    assert time.monotonic() < deadline, f"the cluster did not come up: {info}"
                    time.sleep(0.1)
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers
