"""The pooled random source: fresh bytes every call, and a forked child never repeats its
parent's."""

from __future__ import annotations

import os

from sipsvc.randomness import RandomPool


def test_values_are_fresh_and_of_the_asked_size():
    pool = RandomPool(size=64)
    values = [pool(16) for _ in range(200)]  # many refills of the small buffer
    assert all(len(v) == 16 for v in values)
    assert len(set(values)) == len(values)
    assert len(pool(100)) == 100  # more than the buffer holds: straight from the system
    assert len(pool.hex(8)) == 16


def test_a_forked_child_does_not_repeat_the_parent():
    pool = RandomPool()
    pool(1)  # the buffer is full of bytes the child must not reuse
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, pool(32))
        os._exit(0)
    os.close(write)
    child = os.read(read, 32)
    os.waitpid(pid, 0)
    assert len(child) == 32 and child != pool(32)
