"""Packing commands into the Redis protocol in one pass, for the connections of the store.

redis-py's packer runs every argument through its general encoder (about a microsecond each,
a fifth of the client's CPU per REGISTER in a profile), and the registrar's one script call has
18 arguments. Commands whose arguments are all text, bytes or integers, and that fit in one
buffer, are packed here with the same bytes; anything else goes to redis-py's packer.
"""

from __future__ import annotations

import functools


class QuickPacking:
    """A mixin before a redis-py asyncio connection class."""

    def pack_command(self, *args) -> list[bytes]:
        first = args[0] if args else None
        if type(first) is not str or " " in first:  # redis-py splits "CONFIG GET" and the like
            return super().pack_command(*args)  # type: ignore[misc]
        encoding, errors = self.encoder.encoding, self.encoder.encoding_errors  # type: ignore[attr-defined]
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            kind = type(arg)
            if kind is str:
                data = arg.encode(encoding, errors)
            elif kind is bytes:
                data = arg
            elif kind is int:
                data = b"%d" % arg
            else:  # floats, memoryviews, bools (refused): redis-py's rules
                return super().pack_command(*args)  # type: ignore[misc]
            parts += (b"$%d\r\n" % len(data), data, b"\r\n")
        packed = b"".join(parts)
        if len(packed) > self._buffer_cutoff:  # type: ignore[attr-defined] - large values: chunked
            return super().pack_command(*args)  # type: ignore[misc]
        return [packed]


@functools.cache
def quick(connection_class: type) -> type:
    """``connection_class`` with ``QuickPacking`` in front."""
    return type(f"Quick{connection_class.__name__}", (QuickPacking, connection_class), {})
