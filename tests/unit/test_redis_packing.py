"""The one-pass packer writes exactly what redis-py's packer writes, and leaves it the cases it
does not handle."""

from __future__ import annotations

import redis.asyncio as aioredis
from hypothesis import given, strategies as st

from sipsvc.store.packing import QuickPacking, quick

ARGUMENT = st.one_of(st.text(max_size=40), st.binary(max_size=40), st.integers(-2**63, 2**63),
                     st.floats(allow_nan=False, allow_infinity=False))


def _pair() -> tuple[aioredis.Connection, aioredis.Connection]:
    return aioredis.Connection(), quick(aioredis.Connection)()


@given(st.sampled_from(["EVALSHA", "GET", "CONFIG GET", "HSET"]), st.lists(ARGUMENT, max_size=20))
def test_packed_bytes_are_redis_pys(command, args):
    plain, fast = _pair()
    assert b"".join(fast.pack_command(command, *args)) == b"".join(plain.pack_command(command, *args))


def test_a_large_value_is_left_to_redis_py_and_packed_alike():
    plain, fast = _pair()
    big = "x" * 100_000
    assert fast.pack_command("SET", "k", big) == plain.pack_command("SET", "k", big)


def test_the_stores_connections_pack_in_one_pass_whatever_the_scheme():
    from sipsvc.store.connection import _client

    for url, base in (("redis://127.0.0.1:6379/0", aioredis.Connection),
                      ("rediss://127.0.0.1:6380/0", aioredis.SSLConnection),
                      ("unix:///tmp/redis.sock", aioredis.UnixDomainSocketConnection)):
        connection_class = _client(url).connection_pool.connection_class
        assert issubclass(connection_class, QuickPacking) and issubclass(connection_class, base), url
