"""In-process registrar cost (a benchmark, not a test): the real app (stores, registrar, SIP
endpoint) on one uvloop, with N devices, fed N REGISTERs straight into the endpoint (no
sockets, no SIPp), then the N authenticated REGISTERs answering the challenges. Prints the wall
time per REGISTER of each burst and the Redis commands the authenticated burst made;
``--profile`` adds a cProfile table of that burst.

    .venv/bin/python bench/register_inprocess.py [--devices 1000] [--redis-url redis://127.0.0.1:6379/11] [--profile]

The Redis database given is flushed first.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import gc
import pstats
import sys
import tempfile
import time
from pathlib import Path

import redis
import redis.asyncio.client as redis_client
import uvloop
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sipsvc.api.keys import ACCOUNTS, DEVICES  # noqa: E402
from sipsvc.app import SIP_ENDPOINT, create_app  # noqa: E402
from sipsvc.cli import GC_THRESHOLDS  # noqa: E402
from sipsvc.config import Config, HostPort  # noqa: E402
from sipsvc.devices.service import AccountRef  # noqa: E402
from sipsvc.sip import digest  # noqa: E402
from sipsvc.sip.parser import parse_datagram  # noqa: E402

REALM = "inprocess.sip.test"


class _Sink:
    def __init__(self) -> None:
        self.out: list[bytes] = []

    def sendto(self, data: bytes, address) -> None:
        self.out.append(data)


def register(i: int, cseq: int, authorization: str | None = None) -> bytes:
    auth = f"Authorization: {authorization}\r\n" if authorization else ""
    return (f"REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;rport;branch=z9hG4bK-{i}-{cseq}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:u{i:05d}@{REALM}>;tag=t{i}\r\nTo: <sip:u{i:05d}@{REALM}>\r\n"
            f"Call-ID: c{i}@bench\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:u{i:05d}@127.0.0.1:40000>\r\n"
            f"Expires: 3600\r\n{auth}Content-Length: 0\r\n\r\n").encode()


async def burst(endpoint, sink: _Sink, datagrams: list[bytes]) -> float:
    sink.out.clear()
    started = time.perf_counter()
    for data in datagrams:
        endpoint.datagram_received(data, ("127.0.0.1", 40000))
    deadline = started + 60
    while len(sink.out) < len(datagrams):  # one response per request; bounded in time
        if time.perf_counter() > deadline:
            raise TimeoutError(f"only {len(sink.out)} of {len(datagrams)} answers within 60 s")
        await asyncio.sleep(0)
    return (time.perf_counter() - started) / len(datagrams) * 1e6


async def main(args: argparse.Namespace) -> None:
    redis.Redis.from_url(args.redis_url).flushdb()
    config = Config(redis_url=args.redis_url, admin_token="bench", data_dir=Path(tempfile.mkdtemp()),
                    sip=HostPort("127.0.0.1", 0), digest_algorithms=("MD5", "SHA-256"))
    app = create_app(config)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        account = await app[ACCOUNTS].create({"name": "bench", "realm": REALM})
        ref = AccountRef(account.id, account.realm)
        for i in range(args.devices):
            await app[DEVICES].create(ref, {"name": f"u{i}", "sip": {"username": f"u{i:05d}",
                                                                     "password": f"pass{i:05d}"}}, is_admin=True)
        gc.freeze()  # as ``sipsvc serve`` does after start-up
        gc.set_threshold(*GC_THRESHOLDS)
        endpoint, sink = app[SIP_ENDPOINT], _Sink()
        endpoint.attach_udp(sink)

        async def answers_to(cseq: int) -> tuple[float, list[bytes]]:
            """A challenge burst, and the authenticated REGISTERs that answer it."""
            spent = await burst(endpoint, sink, [register(i, cseq) for i in range(args.devices)])
            challenges = {parse_datagram(d).header("Call-ID"): parse_datagram(d) for d in sink.out}
            answers = []
            for i in range(args.devices):
                offer = digest.parse_auth_params(challenges[f"c{i}@bench"].header_lines("WWW-Authenticate")[0])[1]
                authorization = digest.authorization_header(offer, "REGISTER", f"sip:{REALM}", f"u{i:05d}",
                                                            f"pass{i:05d}", "0a1b2c3d", 1)
                answers.append(register(i, cseq + 1, authorization))
            return spent, answers

        if args.warm:  # steady state: every record already in the process's replica
            _, answers = await answers_to(1)
            await burst(endpoint, sink, answers)
        challenge_us, answers = await answers_to(3)
        commands: collections.Counter[str] = collections.Counter()
        original = redis_client.Redis.execute_command

        async def counting(self, *command, **options):
            commands[command[0]] += 1
            return await original(self, *command, **options)

        original_pipeline = redis_client.Pipeline.execute

        async def counting_pipeline(self, *args, **options):
            for command, _ in self.command_stack:
                commands[command[0]] += 1
            return await original_pipeline(self, *args, **options)

        redis_client.Redis.execute_command = counting
        redis_client.Pipeline.execute = counting_pipeline
        profile = cProfile.Profile()
        if args.profile:
            profile.enable()
        auth_us = await burst(endpoint, sink, answers)
        profile.disable()
        redis_client.Redis.execute_command = original
        redis_client.Pipeline.execute = original_pipeline
        statuses = collections.Counter(parse_datagram(d).status for d in sink.out)
        print(f"{args.devices} devices: challenge burst {challenge_us:.0f} us per REGISTER, "
              f"authenticated burst {auth_us:.0f} us per REGISTER, answers {dict(statuses)}")
        print(f"Redis commands in the authenticated burst: {dict(commands)}")
        if args.profile:
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--warm", action="store_true", help="measure a second round, with warm caches")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as asyncio_runner:
        asyncio_runner.run(main(parser.parse_args()))
