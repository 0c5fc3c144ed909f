"""The floor: the least a Python digest registrar can do per registration (a benchmark tool,
not part of sipsvc and not a registrar anyone should run).

Issue 3's target (4,000 registrations/s) was set beside a minimal registrar measured on the
reference machine (``../shared/reference/perf-notes.md``: 401, digest check, one Lua script,
200; two uvloop processes reading one UDP socket; 7,000/s at p99 28 ms there). Machines differ
by a factor of two and more from session to session, so ``register_load.sh`` runs this floor in
the same invocation as sipsvc and Kamailio: sipsvc's rate over the floor's says what sipsvc's
features cost, whatever the machine.

What it leaves out is what sipsvc is for: no transactions (a retransmission is processed
again), no RFC checks beyond finding the headers (full header names only, as SIPp sends),
one fixed password rule ("pw" + user, as the ladder's users.csv), no accounts, no nonce counts,
no binding list, no events, no bans, no metrics.

    python bench/floor_registrar.py PORT WORKERS REALM REDIS_URL
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import hmac
import os
import re
import socket
import sys
import time

import redis.asyncio as redis
import uvloop

KEY = os.urandom(32)  # shared by the workers: forked after this line
STORE = "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]); redis.call('EXPIRE', KEYS[1], ARGV[3]); return 1"
AUTH_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,]+))')
MAC_CHARS = 24


def split_headers(data: bytes) -> tuple[str, dict[str, list[str]]]:
    lines = data.decode().partition("\r\n\r\n")[0].split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return lines[0], headers


def response(status: str, headers: dict[str, list[str]], extra: list[str]) -> bytes:
    lines = [f"SIP/2.0 {status}"]
    lines += [f"Via: {via};received=127.0.0.1" for via in headers["via"]]
    lines += [f"From: {headers['from'][0]}", f"To: {headers['to'][0]};tag=f100r",
              f"Call-ID: {headers['call-id'][0]}", f"CSeq: {headers['cseq'][0]}", *extra, "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def mac(stamp: str) -> str:
    return hmac.new(KEY, stamp.encode(), "sha256").hexdigest()[:MAC_CHARS]


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class FloorRegistrar(asyncio.DatagramProtocol):
    def __init__(self, store: redis.Redis, script: str, realm: str) -> None:
        self.store, self.script, self.realm = store, script, realm
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, address) -> None:
        try:
            start, headers = split_headers(data)
            if not start.startswith("REGISTER "):
                return
            authorization = headers.get("authorization")
            if not authorization:
                stamp = format(int(time.time()), "x")
                challenge = (f'WWW-Authenticate: Digest realm="{self.realm}", nonce="{stamp}{mac(stamp)}", '
                             'algorithm=MD5, qop="auth"')
                self.transport.sendto(response("401 Unauthorized", headers, [challenge]), address)
                return
            params = {m[0].lower(): m[1] or m[2] for m in AUTH_PARAM.findall(authorization[0])}
            user, nonce = params.get("username", ""), params.get("nonce", "")
            ha1 = md5(f"{user}:{self.realm}:pw{user}")
            ha2 = md5(f"REGISTER:{params.get('uri', '')}")
            expected = md5(f"{ha1}:{nonce}:{params.get('nc', '')}:{params.get('cnonce', '')}:"
                           f"{params.get('qop', '')}:{ha2}")
            if not (hmac.compare_digest(nonce[-MAC_CHARS:], mac(nonce[:-MAC_CHARS]))
                    and hmac.compare_digest(expected, params.get("response", ""))):
                self.transport.sendto(response("403 Forbidden", headers, []), address)
                return
            contact = headers["contact"][0]
        except (UnicodeDecodeError, KeyError, IndexError):
            return
        asyncio.ensure_future(self.bind(headers, user, contact, address))

    async def bind(self, headers: dict[str, list[str]], user: str, contact: str, address) -> None:
        await self.store.evalsha(self.script, 1, f"floor:{user}", contact, f"{address[0]}:{address[1]}", 3600)
        extra = [f"Contact: {contact};expires=3600", f"Date: {email.utils.formatdate(usegmt=True)}"]
        self.transport.sendto(response("200 OK", headers, extra), address)


async def serve(sock: socket.socket, realm: str, redis_url: str) -> None:
    pool = redis.BlockingConnectionPool.from_url(redis_url, max_connections=64)
    store = redis.Redis(connection_pool=pool)
    script = await store.script_load(STORE)
    await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: FloorRegistrar(store, script, realm), sock=sock)
    await asyncio.Event().wait()


def main() -> None:
    port, workers, realm, redis_url = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    # One socket bound before the fork, read by every worker: the kernel spreads one peer's
    # datagrams over them (perf-notes finding 2).
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", port))
    sock.setblocking(False)
    for _ in range(workers - 1):
        if os.fork() == 0:
            break
    uvloop.run(serve(sock, realm, redis_url))


if __name__ == "__main__":
    main()
