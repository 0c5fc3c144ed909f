"""Spreading one peer's datagrams over the workers' UDP sockets (Linux SO_REUSEPORT + cBPF).

By default the kernel picks the SO_REUSEPORT socket by hashing the peer's address, so a busy
single peer (an edge proxy, an SBC, SIPp's one socket) lands on one worker while the others
idle. A classic BPF program attached to the group picks the socket instead from a hash of the
datagram's first bytes (the kernel runs it on the UDP payload). A retransmission is a
byte-for-byte copy of its original, so it reaches the worker holding its transaction; new
requests differ in their Via branch (within the first few hundred bytes), so they spread. No
state is shared: the next REGISTER of a phone may reach another worker, which is fine because
bindings and nonces live in Redis and nonces are stateless.

Where the option is missing (not Linux, an old kernel) the kernel's address hash stays in use.
"""

from __future__ import annotations

import ctypes
import logging
import socket
import struct

log = logging.getLogger("sipsvc.sip")

SO_ATTACH_REUSEPORT_CBPF = 51  # <asm-generic/socket.h>; Python's socket module does not name it
HASHED_BYTES = 512  # covers the start line and the top Via (branch) of any sane request

# Classic BPF opcodes (<linux/filter.h>)
_LD_W_ABS, _LD_W_LEN, _LDX_IMM = 0x20, 0x80, 0x01
_XOR_X, _MUL_K, _RSH_K, _MOD_K = 0xAC, 0x24, 0x74, 0x94
_TAX, _TXA, _JA, _JGE_K, _RET_A = 0x07, 0x87, 0x05, 0x35, 0x16


def payload_hash_program(sockets: int, hashed_bytes: int = HASHED_BYTES) -> list[tuple[int, int, int, int]]:
    """The program: an FNV-style hash of the payload's 32-bit words up to ``hashed_bytes``
    (fewer when the datagram is shorter), mixed, modulo ``sockets``. Instructions are
    (code, jt, jf, k); an index past the group makes the kernel fall back to its own hash."""
    words = hashed_bytes // 4
    body: list[tuple[int, int, int, int]] = [(_LDX_IMM, 0, 0, 2166136261)]
    finish = 1 + 7 * words  # index of the mixing tail
    for i in range(words):
        offset = 4 * i
        here = len(body)
        body += [
            (_LD_W_LEN, 0, 0, 0),
            (_JGE_K, 1, 0, offset + 4),  # the whole word is there: skip the jump out
            (_JA, 0, 0, finish - (here + 3)),
            (_LD_W_ABS, 0, 0, offset),
            (_XOR_X, 0, 0, 0),
            (_MUL_K, 0, 0, 16777619),
            (_TAX, 0, 0, 0),
        ]
    assert len(body) == finish
    body += [
        (_TXA, 0, 0, 0), (_RSH_K, 0, 0, 15), (_XOR_X, 0, 0, 0), (_MUL_K, 0, 0, 0x2C1B3C6D),
        (_TAX, 0, 0, 0), (_RSH_K, 0, 0, 12), (_XOR_X, 0, 0, 0), (_MOD_K, 0, 0, sockets),
        (_RET_A, 0, 0, 0),
    ]
    return body


def spread_by_payload(sock: socket.socket, sockets: int) -> bool:
    """Attach the program to ``sock``'s SO_REUSEPORT group of ``sockets`` sockets; False when
    the kernel refuses (the address hash then stays in use)."""
    program = payload_hash_program(sockets)
    code = b"".join(struct.pack("HBBI", *instruction) for instruction in program)
    buffer = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HL", len(program), ctypes.addressof(buffer))  # struct sock_fprog
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)
    except OSError as exc:
        log.warning("cannot spread SIP datagrams by payload (%s); the kernel's address hash is used", exc)
        return False
    return True
