"""The RFC 4475 torture messages sent over UDP to the running registrar, answered as the corpus
manifest's "registrar-only server" column says (tests/data/rfc4475/MANIFEST.md).

The messages carry no rport, so the answers go to the source address and the Via's port
(RFC 3261 §18.2.2): the test sends from 127.0.0.2:5060. The account owns the corpus domain
example.com and has a device authenticated by that address, so REGISTERs need no challenge.
Several messages share a top Via branch and sent-by (the RFC means them to be sent one at a
time), which makes them retransmissions of each other (§17.2.3) while a transaction lives: the
service runs with a short T1 and the test waits for the earlier transaction to end.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from sipsvc.sip.parser import parse_datagram

CORPUS = Path(__file__).resolve().parents[1] / "data" / "rfc4475"
PEER = ("127.0.0.2", 5060)
DROP = None

# file -> the status the registrar answers, or DROP (no answer at all).
EXPECTED = {
    "valid/wsinv.dat": 405, "valid/intmeth.dat": 501, "valid/esc01.dat": 405, "valid/escnull.dat": 200,
    "valid/esc02.dat": 501, "valid/lwsdisp.dat": 200, "valid/longreq.dat": 405, "valid/dblreq.dat": 200,
    "valid/semiuri.dat": 200, "valid/transports.dat": 200, "valid/mpart01.dat": 405,
    "valid/unreason.dat": DROP, "valid/noreason.dat": DROP,
    "invalid/badinv01.dat": 400, "invalid/clerr.dat": 400, "invalid/ncl.dat": 400,
    "invalid/scalar02.dat": 400, "invalid/scalarlg.dat": DROP, "invalid/quotbal.dat": 400,
    "invalid/ltgtruri.dat": 400, "invalid/lwsruri.dat": 400, "invalid/lwsstart.dat": 400,
    "invalid/trws.dat": 400, "invalid/escruri.dat": 400, "invalid/baddate.dat": 405,
    "invalid/regbadct.dat": 400, "invalid/badaspec.dat": 400, "invalid/baddn.dat": 400,
    "invalid/badvers.dat": 505, "invalid/mismatch01.dat": 400, "invalid/mismatch02.dat": 400,
    "invalid/bigcode.dat": DROP, "invalid/badbranch.dat": 200, "invalid/insuf.dat": 400,
    "invalid/unkscm.dat": 416, "invalid/novelsc.dat": 416, "invalid/unksm2.dat": 400,
    "invalid/bext01.dat": 420, "invalid/invut.dat": 405, "invalid/regaut01.dat": 200,
    "invalid/multi01.dat": 400, "invalid/mcl01.dat": 400, "invalid/bcast.dat": DROP,
    "invalid/zeromf.dat": 200, "invalid/cparam01.dat": 200, "invalid/cparam02.dat": 200,
    "invalid/regescrt.dat": 200, "invalid/sdp01.dat": 405, "invalid/inv2543.dat": 405,
}


class _Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data, addr) -> None:
        self.queue.put_nowait(data)


def _call_id(data: bytes) -> bytes | None:
    match = re.search(rb"^(?:Call-ID|i)[ \t]*:[ \t]*(\S+)", data, re.M | re.I)
    return match.group(1) if match else None


async def _answer(transport, peer: _Peer, data: bytes, server, wait: float) -> int | None:
    """The status of the answer to ``data``; earlier transactions' retransmissions (an INVITE's
    405 is re-sent until an ACK that never comes) are told apart by Call-ID."""
    transport.sendto(data, server)
    call_id = _call_id(data)
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        try:
            answer = await asyncio.wait_for(peer.queue.get(), deadline - asyncio.get_running_loop().time())
        except asyncio.TimeoutError:
            return None
        if call_id is None or _call_id(answer) == call_id:
            return parse_datagram(answer).status


def _transaction_key(data: bytes) -> bytes | None:
    match = re.search(rb"^(?:Via|v)[ \t]*:[^\r\n]*?([^ \t;,\r\n]+;branch=[^ \t;,\r\n]+)", data, re.M | re.I)
    return match.group(1) if match else None


async def test_every_torture_message_gets_the_registrar_answer(make_api):
    api = await make_api(t1=0.01, t2=0.04)  # transactions end 64*T1 = 0.64 s after their answer
    account = await api.new_account(realm="example.com")
    device = await api.new_device(account, {"name": "corpus", "sip": {"method": "ip", "ip": PEER[0]}})
    loop = asyncio.get_running_loop()
    try:
        transport, peer = await loop.create_datagram_endpoint(_Peer, local_addr=PEER)
    except OSError as exc:
        pytest.fail(f"cannot bind {PEER}: {exc}")
    try:
        outcomes, used = {}, set()
        for name, expected in EXPECTED.items():
            data = (CORPUS / name).read_bytes()
            key = _transaction_key(data)
            if key in used:
                await asyncio.sleep(0.8)
            used.add(key)
            outcomes[name] = await _answer(transport, peer, data, api.sip_address, 0.4 if expected is DROP else 3.0)
        assert outcomes == EXPECTED
        # What the REGISTERs bound, as the manifest says.
        _, bindings = await api.call("GET", f"/v2/accounts/{account['id']}/devices/{device['id']}/registrations",
                                     token=account["token"])
        contacts = {b["contact"] for b in bindings["data"]}
        assert {"sip:%00@host5.example.com", "sip:%00%00@host5.example.com",  # escnull: two, NUL-safe
                "sip:j.user@host.example.com",  # dblreq
                "sip:+19725552222@gw1.example.net",  # cparam01: the param is the contact's
                "sip:+19725552222@gw1.example.net;unknownparam",  # cparam02: the param is the URI's
                "sip:user@example.com?Route=%3Csip:sip.example.com%3E"} <= contacts  # regescrt, verbatim
    finally:
        transport.close()
        await api.call("DELETE", f"/v2/accounts/{account['id']}/devices/{device['id']}", token=account["token"])


def test_the_table_covers_the_whole_corpus():
    files = {str(p.relative_to(CORPUS)) for p in CORPUS.glob("*/*.dat")}
    assert files == set(EXPECTED)
