"""The registrar's quick answer (a challenge decided from memory, without a task) must be the
answer ``register`` gives, and must leave every other case to ``register`` (real Redis)."""

from __future__ import annotations

import os
import re

from sipsvc.api.keys import REGISTRAR
from sipsvc.registrar.policy import Source
from sipsvc.sip.message import Request, Response


def _register(realm: str, user: str = "alice", *, authorization: str | None = None,
              to_uri: str | None = None) -> Request:
    headers = [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5062;rport;branch=z9hG4bK-quick-1"),
        ("Max-Forwards", "70"),
        ("From", f"<sip:{user}@{realm}>;tag=quick"),
        ("To", to_uri or f"<sip:{user}@{realm}>"),
        ("Call-ID", f"{os.urandom(6).hex()}@test"),
        ("CSeq", "1 REGISTER"),
        ("Contact", "<sip:alice@127.0.0.1:5062>"),
    ]
    if authorization:
        headers.append(("Authorization", authorization))
    return Request(method="REGISTER", uri=f"sip:{realm}", headers=tuple(headers))


def _shape(response: Response) -> tuple:
    """A response without what differs by chance (the nonce, the To tag)."""
    return (response.status, response.reason,
            tuple((name, re.sub(r'nonce="[^"]*"', "nonce", re.sub(r";tag=\w+", "", value)))
                  for name, value in response.headers if name != "Call-ID"))


async def test_the_quick_challenge_is_the_one_register_gives(api):
    registrar = api.client.server.app[REGISTRAR]
    account = await api.new_account()
    await api.new_device(account, {"name": "alice", "sip": {"username": "alice", "password": "secret123"}})
    request, source = _register(account["realm"]), Source("127.0.0.1", 5062, "udp")

    assert registrar.answer_now(request, source) is None  # the realm is not known here yet
    full = await registrar.register(request, source)
    quick = registrar.answer_now(request, source)

    assert full.status == 401 and quick is not None
    assert _shape(quick) == _shape(full)


async def test_everything_else_is_left_to_register(api):
    registrar = api.client.server.app[REGISTRAR]
    account = await api.new_account()
    await api.new_device(account, {"name": "alice", "sip": {"username": "alice", "password": "secret123"}})
    await api.new_device(account, {"name": "trunk", "sip": {"method": "ip", "ip": "127.0.0.9"}})
    phone, trunk = Source("127.0.0.1", 5062, "udp"), Source("127.0.0.9", 5060, "udp")
    realm = account["realm"]
    for source in (phone, trunk):  # the realm and both addresses' IP claims are now in memory
        await registrar.register(_register(realm), source)
    assert registrar.answer_now(_register(realm), phone) is not None

    with_credentials = _register(realm, authorization=f'Digest username="alice",realm="{realm}",nonce="x",'
                                                      f'uri="sip:{realm}",response="0"')
    cases = {  # what register() answers instead
        "credentials (a nonce of no use)": (with_credentials, phone, 401),
        "an IP-authenticated device's address": (_register(realm), trunk, 200),
        "an unknown domain": (_register("nowhere.sip.test"), phone, 404),
        "a To that does not parse": (_register(realm, to_uri="<sip:alice@"), phone, 400),
        "a To that is no SIP URI": (_register(realm, to_uri="<tel:+15551234>"), phone, 400),
    }
    for case, (request, source, status) in cases.items():
        assert registrar.answer_now(request, source) is None, case
        assert (await registrar.register(request, source)).status == status, case
