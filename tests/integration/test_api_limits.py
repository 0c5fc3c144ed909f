"""Limits of the HTTP API against abuse, over real HTTP: the per-token rate limit (429 with
Retry-After), the JSON nesting limit, no CORS headers, and no secret in any log record."""

from __future__ import annotations

import asyncio
import logging

from tests.conftest import ADMIN_TOKEN
from tests.sipclient import SipClient


def nested(depth: int) -> dict:
    value: object = 1
    for _ in range(depth - 1):
        value = {"a": value}
    return value


async def test_a_token_past_its_rate_gets_429_with_retry_after(make_api):
    api = await make_api(rate_limit=5.0, rate_burst=5)
    account = await api.new_account()  # admin: 2 requests (account, api_auth is anonymous)
    path = f"/v2/accounts/{account['id']}"
    statuses = [(await api.call("GET", path, token=account["token"]))[0].status for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    response, body = await api.call("GET", path, token=account["token"])
    assert response.status == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert body["status"] == "error" and body["message"] == "rate_limited"
    assert "5 requests per second" in body["data"]["message"]
    assert response.headers["X-Request-ID"]
    # Another token has its own allowance; requests without a token are not limited here.
    assert (await api.call("GET", path, token=ADMIN_TOKEN))[0].status == 200
    assert (await api.client.get("/healthz")).status == 200
    # The bucket refills at the rate: a fifth of a second gives one request back.
    await asyncio.sleep(0.25)
    assert (await api.call("GET", path, token=account["token"]))[0].status == 200
    assert (await api.call("GET", path, token=account["token"]))[0].status == 429


async def test_the_default_rate_lets_a_benchmark_burst_through(api):
    account = await api.new_account()
    path = f"/v2/accounts/{account['id']}"
    results = await asyncio.gather(*(api.call("GET", path, token=account["token"]) for _ in range(500)))
    assert {response.status for response, _ in results} == {200}


async def test_a_body_nested_too_deeply_gets_400_naming_the_limit(make_api):
    api = await make_api(max_json_depth=8)
    account = await api.new_account()
    for depth in (9, 50, 100_000):
        response, body = await api.call("PUT", f"/v2/accounts/{account['id']}/devices", token=account["token"],
                                        data=f'{{"data": {"[" * depth}{"]" * depth}}}')
        assert response.status == 400, depth
        assert body["data"]["message"] == \
            "request body nests objects and arrays deeper than the limit of 8 levels", depth
    # Within the limit, the body is taken (and validated as usual).
    response, body = await api.call("PUT", f"/v2/accounts/{account['id']}/devices", token=account["token"],
                                    json={"data": {"name": "deep", "provision": nested(6)}})
    assert response.status == 201, body


async def test_no_cors_headers_are_sent(api):
    account = await api.new_account()
    origin = {"Origin": "https://evil.example"}
    response, _ = await api.call("GET", f"/v2/accounts/{account['id']}", token=account["token"], headers=origin)
    preflight = await api.client.options(f"/v2/accounts/{account['id']}/devices", headers={
        **origin, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "X-Auth-Token"})
    assert response.status == 200
    assert preflight.status in (403, 404, 405)
    for answer in (response, preflight):
        assert not [name for name in answer.headers if name.lower().startswith("access-control-")]


async def test_no_token_key_or_sip_password_is_ever_logged(make_api, caplog):
    caplog.set_level(logging.DEBUG)
    api = await make_api(sip_trace=True, max_failures_per_user=2,
                         max_failures_per_source=1_000_000)  # 127.0.0.1 is every test's address
    account = await api.new_account()
    password, other_password = "pw-Zq8Lrt5Xk2", "pw-Vb7Nqe3Hy9"
    device = await api.new_device(account, {"name": "alice", "sip": {"username": "alice", "password": password}})
    await api.call("PATCH", f"/v2/accounts/{account['id']}/devices/{device['id']}", token=account["token"],
                   json={"data": {"sip": {"password": other_password}}})
    await api.call("GET", f"/v2/accounts/{account['id']}/devices/{device['id']}", token=account["token"])
    await api.call("GET", f"/v2/accounts/{account['id']}/devices", token="not-a-real-token-Jx4")
    await api.call("PUT", f"/v2/accounts/{account['id']}/devices", token=account["token"], data="{bad json")
    async with SipClient(api.sip_address) as client:
        assert (await client.register("alice", other_password, account["realm"])).status == 200
        for attempt in range(3):  # a wrong password, and the ban it leads to, are logged
            assert (await client.register("alice", f"{password}-{attempt}", account["realm"])).status == 403
    text = caplog.text + "".join(str(record.__dict__) for record in caplog.records)
    assert "banned 127.0.0.1" in text and "SIP" in text  # the logs did see all this
    for secret in (password, other_password, account["token"], account["api_key"], ADMIN_TOKEN,
                   "not-a-real-token-Jx4"):
        assert secret not in text
    (ban,) = (await api.call("GET", f"/v2/accounts/{account['id']}/security/bans", token=account["token"]))[1]["data"]
    await api.call("DELETE", f"/v2/security/bans/{ban['id']}")


async def test_cors_answers_only_the_configured_origins(make_api):
    api = await make_api(cors_origins=("https://admin.example.com",))
    account = await api.new_account()
    path = f"/v2/accounts/{account['id']}"
    good, evil = {"Origin": "https://admin.example.com"}, {"Origin": "https://evil.example"}
    response, _ = await api.call("GET", path, token=account["token"], headers=good)
    assert response.headers["Access-Control-Allow-Origin"] == "https://admin.example.com"
    assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]
    assert "Origin" in response.headers.getall("Vary")
    assert "Access-Control-Allow-Credentials" not in response.headers
    preflight = await api.client.options(f"{path}/devices", headers={
        **good, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "X-Auth-Token"})
    assert preflight.status == 204
    assert "PUT" in preflight.headers["Access-Control-Allow-Methods"]
    assert "X-Auth-Token" in preflight.headers["Access-Control-Allow-Headers"]
    # An origin not listed gets nothing, and its preflight is not answered as one.
    response, _ = await api.call("GET", path, token=account["token"], headers=evil)
    preflight = await api.client.options(f"{path}/devices", headers={
        **evil, "Access-Control-Request-Method": "PUT"})
    assert preflight.status != 204
    for answer in (response, preflight):
        assert not [name for name in answer.headers if name.lower().startswith("access-control-")]
