"""Password guessing and scanners over real SIP (UDP, loopback) against the running service and
a real Redis: failures are counted per source and per username, bans stop the guessing source
only, expire, can be lifted through the API, and hold across nodes sharing the Redis; scanner
User-Agents go unanswered. Each test guesses from loopback addresses of its own (127.x.y.z),
so bans never touch another test's phones."""

from __future__ import annotations

import asyncio
import dataclasses
import os

import pytest

from tests.sipclient import SipClient

PASSWORD = "right-password-123"
STRICT = {"max_failures_per_user": 3, "max_failures_per_source": 6}


def new_source() -> str:
    """A loopback address no other test uses (the whole 127/8 is loopback on Linux)."""
    a, b, c = os.urandom(3)
    return f"127.{100 + a % 150}.{b}.{1 + c % 250}"


async def phone(api, username: str = "alice"):
    account = await api.new_account()
    device = await api.new_device(account, {"name": username, "sip": {"username": username, "password": PASSWORD}})
    return account, device


async def register(api, account, user: str, password: str, source: str = "127.0.0.1", **kwargs):
    async with SipClient(api.sip_address, bind=source) as client:
        return await client.register(user, password, account["realm"], **kwargs)


async def bans(api, account=None):
    """The account's bans (with its token), or every ban (with the admin token)."""
    if account is None:
        response, body = await api.call("GET", "/v2/security/bans")
    else:
        response, body = await api.call("GET", f"/v2/accounts/{account['id']}/security/bans",
                                        token=account["token"])
    assert response.status == 200, body
    return body["data"]


def with_user_agent(request, agent: str):
    return dataclasses.replace(request, headers=tuple(
        (name, agent if name == "User-Agent" else value) for name, value in request.headers))


async def silent(api, request_bytes: bytes, source: str, wait: float = 0.6) -> bool:
    """True when nothing answers a request sent from ``source``."""
    async with SipClient(api.sip_address, bind=source) as client:
        client.send_bytes(request_bytes)
        try:
            await client.receive(timeout=wait)
        except asyncio.TimeoutError:
            return True
    return False


async def test_guessing_bans_the_guesser_while_the_phone_keeps_registering(make_api):
    api = await make_api(**STRICT)
    account, device = await phone(api)
    guesser = new_source()
    for attempt in range(3):
        assert (await register(api, account, "alice", f"guess-{attempt}", guesser)).status == 403
        # The real phone, from its own address, is never held up by the guessing.
        assert (await register(api, account, "alice", PASSWORD)).status == 200
    # The guesser is now banned from alice: even the right password gets 403 from there...
    assert (await register(api, account, "alice", PASSWORD, guesser)).status == 403
    # ...while alice registers from anywhere else.
    assert (await register(api, account, "alice", PASSWORD)).status == 200
    assert (await register(api, account, "alice", PASSWORD, new_source())).status == 200
    (ban,) = await bans(api, account)
    assert ban["scope"] == "user" and ban["username"] == "alice" and ban["source"] == guesser
    assert ban["failures"] == 3 and 890 <= ban["expires_in"] <= 900
    # Alice is counted across addresses for the operator (another guesser adds to her count).
    assert (await register(api, account, "ALICE", "guess-x", new_source())).status == 403
    response, body = await api.call("GET", f"/v2/accounts/{account['id']}/security/failures",
                                    token=account["token"])
    assert response.status == 200 and body["data"] == [{"username": "alice", "failures": 4}]
    # Three more failures (unknown users) from the same address ban it from every account.
    for name in ("bob", "carol", "dave"):
        assert (await register(api, account, name, "whatever", guesser)).status == 403
    async with SipClient(api.sip_address, bind=guesser) as client:
        # Not even challenged any more: refused before any work is done.
        assert (await client.send(client.register_request("alice", account["realm"]))).status == 403
    source_ban = next(b for b in await bans(api) if b["source"] == guesser and b["scope"] == "source")
    assert source_ban["failures"] == 6 and source_ban["username"] is None
    assert (await register(api, account, "alice", PASSWORD)).status == 200
    _, body = await api.call("GET", f"/v2/accounts/{account['id']}/devices/status", token=account["token"])
    assert body["data"] == [{"device_id": device["id"], "registered": True}]
    await api.call("DELETE", f"/v2/security/bans/{source_ban['id']}")


async def test_a_challenge_is_no_failure(make_api):
    api = await make_api(max_failures_per_user=1, max_failures_per_source=1)
    account, _ = await phone(api)
    source = new_source()
    async with SipClient(api.sip_address, bind=source) as client:
        for _ in range(5):
            assert (await client.send(client.register_request("alice", account["realm"]))).status == 401
    assert (await register(api, account, "alice", PASSWORD, source)).status == 200
    assert await bans(api, account) == []


async def test_a_ban_expires(make_api):
    api = await make_api(max_failures_per_user=2, max_failures_per_source=100, ban_seconds=1)
    account, _ = await phone(api)
    guesser = new_source()
    for attempt in range(2):
        assert (await register(api, account, "alice", f"guess-{attempt}", guesser)).status == 403
    assert (await register(api, account, "alice", PASSWORD, guesser)).status == 403
    await asyncio.sleep(1.3)
    assert (await register(api, account, "alice", PASSWORD, guesser)).status == 200
    assert await bans(api, account) == []


async def test_delete_lifts_a_ban_and_an_account_may_not_lift_a_source_ban(make_api):
    api = await make_api(**STRICT)
    account, _ = await phone(api)
    other, _ = await phone(api, "zed")
    guesser = new_source()
    for attempt in range(3):
        await register(api, account, "alice", f"guess-{attempt}", guesser)
    (ban,) = await bans(api, account)
    assert await bans(api, other) == []  # another account sees nothing of it
    response, _ = await api.call("DELETE", f"/v2/accounts/{other['id']}/security/bans/{ban['id']}",
                                 token=other["token"])
    assert response.status == 404
    response, body = await api.call("DELETE", f"/v2/accounts/{account['id']}/security/bans/{ban['id']}",
                                    token=account["token"])
    assert response.status == 200 and body["data"]["id"] == ban["id"]
    assert await bans(api, account) == []
    assert (await register(api, account, "alice", PASSWORD, guesser)).status == 200
    # The failures were forgotten with the ban: one more is not a new ban.
    assert (await register(api, account, "alice", "wrong", guesser)).status == 403
    assert await bans(api, account) == []
    # A whole source's ban shows on the account, but only the admin lifts it.
    for name in ("u1", "u2", "u3", "u4", "u5"):
        await register(api, account, name, "x", guesser)
    (source_ban,) = [b for b in await bans(api, account) if b["scope"] == "source"]
    response, body = await api.call("DELETE", f"/v2/accounts/{account['id']}/security/bans/{source_ban['id']}",
                                    token=account["token"])
    assert response.status == 403, body
    response, _ = await api.call("GET", "/v2/security/bans", token=account["token"])
    assert response.status == 403
    response, _ = await api.call("DELETE", f"/v2/security/bans/{source_ban['id']}")
    assert response.status == 200
    response, _ = await api.call("DELETE", f"/v2/security/bans/{source_ban['id']}")
    assert response.status == 404
    async with SipClient(api.sip_address, bind=guesser) as client:
        assert (await client.send(client.register_request("alice", account["realm"]))).status == 401


async def test_failures_and_bans_are_shared_by_nodes_on_one_redis(make_api):
    node_a = await make_api(**STRICT)
    node_b = await make_api(**STRICT)
    account, _ = await phone(node_a)
    guesser = new_source()
    # Two failures on node A and one on node B make three: the ban.
    assert (await register(node_a, account, "alice", "g1", guesser)).status == 403
    assert (await register(node_a, account, "alice", "g2", guesser)).status == 403
    assert (await register(node_b, account, "alice", "g3", guesser)).status == 403
    assert (await register(node_a, account, "alice", PASSWORD, guesser)).status == 403
    assert [b["source"] for b in await bans(node_a, account)] == [guesser]
    for name in ("u1", "u2", "u3"):
        await register(node_b, account, name, "x", guesser)
    # Node B set the source ban; node A's in-memory copy learns it over pub/sub.
    for _ in range(40):
        async with SipClient(node_a.sip_address, bind=guesser) as client:
            status = (await client.send(client.register_request("alice", account["realm"]))).status
        if status == 403:
            break
        await asyncio.sleep(0.05)
    assert status == 403
    (source_ban,) = [b for b in await bans(node_a) if b["source"] == guesser and b["scope"] == "source"]
    # Lifted through node A, it is gone on node B too.
    response, _ = await node_a.call("DELETE", f"/v2/security/bans/{source_ban['id']}")
    assert response.status == 200
    for _ in range(40):
        async with SipClient(node_b.sip_address, bind=guesser) as client:
            status = (await client.send(client.register_request("alice", account["realm"]))).status
        if status == 401:
            break
        await asyncio.sleep(0.05)
    assert status == 401
    assert (await register(node_b, account, "alice", PASSWORD)).status == 200


async def test_drop_mode_leaves_a_banned_source_unanswered(make_api):
    api = await make_api(max_failures_per_user=2, max_failures_per_source=4, ban_action="drop")
    account, _ = await phone(api)
    guesser = new_source()
    for attempt in range(2):
        assert (await register(api, account, "alice", f"guess-{attempt}", guesser)).status == 403
    # Banned from alice: the answer to the right password never comes (the challenge still does).
    async with SipClient(api.sip_address, bind=guesser) as client:
        challenge = await client.send(client.register_request("alice", account["realm"]))
        assert challenge.status == 401
        answer = client.register_request("alice", account["realm"], authorization=client.answer(
            challenge, "alice", PASSWORD, f"sip:{account['realm']}")).to_bytes()
    assert await silent(api, answer, guesser)
    for name in ("u1", "u2"):
        assert (await register(api, account, name, "x", guesser)).status == 403
    # Banned as a whole: nothing at all, not even a challenge.
    async with SipClient(api.sip_address, bind=guesser) as client:
        request = client.register_request("alice", account["realm"]).to_bytes()
    assert await silent(api, request, guesser)
    assert (await register(api, account, "alice", PASSWORD)).status == 200
    text = await (await api.client.get("/metrics")).text()
    assert 'sipsvc_sip_messages_dropped_total{reason="banned"} 2.0' in text
    for ban in [b for b in await bans(api) if b["source"] == guesser]:
        await api.call("DELETE", f"/v2/security/bans/{ban['id']}")


@pytest.mark.parametrize("agent", ["friendly-scanner", "sipvicious 0.3.4", "SIPCLI/v1.8"])
async def test_scanner_user_agents_are_dropped(make_api, agent):
    api = await make_api()
    account, _ = await phone(api)
    async with SipClient(api.sip_address) as client:
        register = with_user_agent(client.register_request("alice", account["realm"]), agent)
        options = dataclasses.replace(register, method="OPTIONS", headers=tuple(
            (n, "1 OPTIONS" if n == "CSeq" else v) for n, v in register.headers))
    assert await silent(api, register.to_bytes(), "127.0.0.1")
    assert await silent(api, options.to_bytes(), "127.0.0.1")
    text = await (await api.client.get("/metrics")).text()
    assert 'event="security_scanner_dropped"' in text


async def test_scanners_are_answered_when_dropping_is_off(make_api):
    api = await make_api(drop_scanners=False)
    account, _ = await phone(api)
    async with SipClient(api.sip_address) as client:
        request = with_user_agent(client.register_request("alice", account["realm"]), "friendly-scanner")
        assert (await client.send(request)).status == 401


async def test_a_nonce_of_another_realm_is_challenged_again(api):
    account, _ = await phone(api)
    other = await api.new_account()
    await api.new_device(other, {"name": "alice", "sip": {"username": "alice", "password": PASSWORD}})
    async with SipClient(api.sip_address) as client:
        challenge = await client.send(client.register_request("alice", account["realm"]))
        # Answer the other realm with this realm's nonce (and the other realm's name in it).
        authorization = client.answer(challenge, "alice", PASSWORD, f"sip:{other['realm']}")
        authorization = authorization.replace(f'realm="{account["realm"]}"', f'realm="{other["realm"]}"')
        response = await client.send(client.register_request("alice", other["realm"], authorization=authorization))
    assert response.status == 401


async def test_a_sipp_guesser_is_banned_while_the_phone_keeps_registering(make_api, tmp_path):
    """SIPp, a real SIP implementation, guesses alice's password 30 times from its own address
    while alice's phone re-registers from 127.0.0.1 the whole time."""
    from tests.conftest import free_port
    from tests.integration.test_sipp import SCENARIOS, sipp_binary

    api = await make_api(digest_algorithms=("MD5", "SHA-256"), **STRICT)
    account, _ = await phone(api)
    guesser = new_source()
    guesses = tmp_path / "guesses.csv"
    guesses.write_text("SEQUENTIAL\n" + "".join(
        f"alice;[authentication username=alice password=guess{n}];\n" for n in range(30)))
    host, port = api.sip_address
    sipp = await asyncio.create_subprocess_exec(
        sipp_binary(), f"{host}:{port}", "-sf", str(SCENARIOS / "uac-register-wrong-password-expect-403.xml"),
        "-inf", str(guesses), "-key", "domain", account["realm"], "-i", guesser, "-p", str(free_port()),
        "-t", "u1", "-m", "30", "-r", "30", "-recv_timeout", "5000", "-timeout", "20s", "-timeout_error",
        "-nostdin", stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    answers = []
    async with SipClient(api.sip_address) as client:
        while sipp.returncode is None and len(answers) < 400:
            answers.append((await client.register("alice", PASSWORD, account["realm"])).status)
            await asyncio.sleep(0.02)
            try:
                await asyncio.wait_for(asyncio.shield(sipp.wait()), 0.001)
            except asyncio.TimeoutError:
                pass
    _, stderr = await asyncio.wait_for(sipp.communicate(), 30)
    assert sipp.returncode == 0, stderr.decode(errors="replace")  # every guess answered 403
    assert len(answers) >= 5 and set(answers) == {200}
    (ban,) = await bans(api, account)
    assert ban["source"] == guesser and ban["username"] == "alice" and ban["failures"] == 3
