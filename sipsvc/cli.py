"""The command line: ``sipsvc serve``, and the operator commands (``sipsvc.opcli``), which talk
to a running service's HTTP API."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys

import uvloop
from aiohttp import web

from . import logs, opcli
from .app import SIP_LISTENERS, STORES, create_app
from .config import ConfigError, load_config, summarize
from .store.errors import StoreUnavailableError
from .supervisor import run_workers

log = logging.getLogger("sipsvc")
GC_THRESHOLDS = (50_000, 50, 1000)
FREEZE_EVERY = 1.0  # seconds between two moves of every live object out of the collector's reach
FULL_COLLECTION_EVERY = 600.0  # seconds between two collections of everything (frozen included)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sipsvc", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the service")
    serve.add_argument("--config", metavar="FILE", help="TOML configuration file")
    serve.add_argument("--http", metavar="HOST:PORT", help="HTTP API address (default 127.0.0.1:8000)")
    serve.add_argument("--sip", metavar="HOST:PORT", help="SIP address (default 127.0.0.1:5060)")
    serve.add_argument("--redis-url", metavar="URL", help="Redis URL (default: embedded Redis)")
    serve.add_argument("--data-dir", metavar="DIR", help="data directory (default ./var)")
    serve.add_argument("--log-level", metavar="LEVEL", help="debug, info, warning or error")
    serve.add_argument("--log-format", metavar="FORMAT", help="text (default) or json")
    serve.add_argument("--sip-trace", action="store_const", const=True,
                       help="log every SIP message sent and received (Authorization redacted)")
    serve.add_argument("--workers", metavar="N", help="worker processes (default 1; one per core)")
    # Set by the supervisor for its workers: bind with SO_REUSEPORT beside the others (N in all).
    serve.add_argument("--reuse-port", metavar="N", type=int, default=0, help=argparse.SUPPRESS)
    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser(
        "check", help="validate a TOML configuration file: exit 0 and a summary, or 2 and the error")
    check.add_argument("file", metavar="FILE")
    check.add_argument("--with-env", action="store_true",
                       help="apply the SIPSVC_* environment variables too, as serve would")
    opcli.add_commands(commands)
    return parser


def _config_check(args: argparse.Namespace) -> int:
    config = load_config(args.file, env=None if args.with_env else {})
    print(f"{args.file}: valid")
    for line in summarize(config):
        print(f"  {line}")
    return 0


async def _run(config, reuse_port: int) -> None:
    """Open the store and services, bind the listeners, log where, run until SIGTERM/SIGINT."""
    app = create_app(config, reuse_port=reuse_port)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()  # opens the store (cleanup_ctx)
    try:
        site = web.TCPSite(runner, config.http.host, config.http.port, reuse_port=reuse_port or None)
        await site.start()
        # Everything allocated at start-up lives as long as the process: keep it out of the
        # collector's generations; and collect young objects in bigger, rarer batches. A full
        # collection pauses the loop for tens of milliseconds, which showed as the whole
        # p99 of the API benchmark (bench/README.md).
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        tending = asyncio.get_running_loop().create_task(_tend_the_collector())
        sip = app[SIP_LISTENERS].address
        log.info("store: %s; HTTP API on http://%s; SIP on udp+tcp %s:%d",
                 app[STORES].description, config.http, sip[0], sip[1])
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("stopping")
        tending.cancel()
    finally:
        await runner.cleanup()


async def _tend_the_collector() -> None:
    """Keep long-lived objects out of the garbage collector's way.

    A busy registrar holds tens of thousands of finished transactions for 32 s each (Timer J);
    the collector walks every live object it tracks in each older-generation pass, which paused
    the loop for 100 ms and more under load (the p99 of bench/register_load.sh doubled). Once a
    second every object then alive is frozen: reference counting still frees it when it dies,
    but the collector no longer walks it. What could leak that way is a reference cycle that
    became garbage after it was frozen, so every ten minutes everything is thawed and collected
    once (one longer pause, then a clean slate)."""
    loop = asyncio.get_running_loop()
    last_full = loop.time()
    while True:
        await asyncio.sleep(FREEZE_EVERY)
        if loop.time() - last_full >= FULL_COLLECTION_EVERY:
            gc.unfreeze()
            gc.collect()
            last_full = loop.time()
        gc.freeze()


def _serve(args: argparse.Namespace) -> int:
    config = load_config(args.config, overrides={
        "http": args.http, "sip": args.sip, "redis_url": args.redis_url,
        "data_dir": args.data_dir, "log_level": args.log_level, "workers": args.workers,
        "log_format": args.log_format, "sip_trace": args.sip_trace,
    })
    logs.configure(config.log_level, config.log_format, sip_trace=config.sip_trace)
    if config.workers > 1:
        return run_workers(config)
    # uvloop: several times less CPU per datagram than the default loop (perf-notes.md).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_run(config, args.reuse_port))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "operate", None) is not None:
        return opcli.run(args)
    try:
        if args.command == "config":
            return _config_check(args)
        return _serve(args)
    except ConfigError as exc:
        print(f"sipsvc: error: {exc}", file=sys.stderr)
    except StoreUnavailableError as exc:
        print(f"sipsvc: error: {exc.setting}: {exc}", file=sys.stderr)
    except OSError as exc:  # e.g. the HTTP address is in use or cannot be bound
        print(f"sipsvc: error: http: {exc.strerror or exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
