"""Random bytes for protocol values (tags, nonces' salt, branches) without a system call each.

``secrets.token_bytes`` makes one getrandom() call per value, and every REGISTER needs two or
three values (a To tag, a nonce's salt). ``RandomPool`` hands out the same operating-system
randomness from a buffer refilled 4 KiB at a time. A forked child starts with an empty buffer,
so two processes never hand out the same bytes.
"""

from __future__ import annotations

import os
import weakref

_POOLS: "weakref.WeakSet[RandomPool]" = weakref.WeakSet()


class RandomPool:
    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._buffer = b""
        self._offset = 0
        _POOLS.add(self)

    def __call__(self, count: int) -> bytes:
        """``count`` fresh random bytes (os.urandom's), never handed out before."""
        end = self._offset + count
        if end > len(self._buffer):
            if count > self._size:
                return os.urandom(count)
            self._buffer, self._offset, end = os.urandom(self._size), 0, count
        out = self._buffer[self._offset:end]
        self._offset = end
        return out

    def hex(self, count: int) -> str:
        """``count`` random bytes as hex, like ``secrets.token_hex(count)``."""
        return self(count).hex()

    def _forget(self) -> None:
        self._buffer, self._offset = b"", 0


def _after_fork() -> None:
    for pool in list(_POOLS):
        pool._forget()


os.register_at_fork(after_in_child=_after_fork)

# One pool per process serves every hot path.
random_bytes = RandomPool()
