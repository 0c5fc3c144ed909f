"""Accounts, API keys, auth tokens and account isolation, over real HTTP with a real Redis."""

from __future__ import annotations

import asyncio
import re

import redis.asyncio as aioredis

from sipsvc.store import keys
from tests.conftest import ADMIN_TOKEN


async def test_admin_creates_an_account_with_id_realm_and_api_key(api):
    response, body = await api.call("PUT", "/v2/accounts",
                                    json={"data": {"name": "Acme", "realm": "acme-1.sip.test"}})
    assert response.status == 201
    data = body["data"]
    assert re.fullmatch(r"[0-9a-f]{32}", data["id"])
    assert data["name"] == "Acme" and data["realm"] == "acme-1.sip.test"
    assert re.fullmatch(r"[0-9a-f]{64}", data["api_key"])
    assert body["status"] == "success"


async def test_realm_is_refused_when_taken_in_any_case(api):
    await api.new_account(realm="taken.sip.test")
    response, body = await api.call("PUT", "/v2/accounts",
                                    json={"data": {"name": "Other", "realm": "TAKEN.sip.TEST"}})
    assert response.status == 400
    assert body["data"] == {"realm": {"unique": {"message": "Realm already in use",
                                                  "cause": "TAKEN.sip.TEST"}}}


async def test_account_create_reports_every_missing_field(api):
    response, body = await api.call("PUT", "/v2/accounts", json={"data": {}})
    assert response.status == 400
    assert body["message"] == "validation error"
    assert body["data"] == {
        "name": {"required": {"message": "Field is required but missing"}},
        "realm": {"required": {"message": "Field is required but missing"}},
    }


async def test_account_create_refuses_a_realm_that_is_not_a_dns_name(api):
    response, body = await api.call("PUT", "/v2/accounts",
                                    json={"data": {"name": "X", "realm": "bad realm!"}})
    assert response.status == 400
    assert list(body["data"]["realm"]) == ["pattern"]


async def test_only_the_admin_creates_accounts(api):
    account = await api.new_account()
    response, body = await api.call("PUT", "/v2/accounts", token=account["token"],
                                    json={"data": {"name": "Mine", "realm": "mine.sip.test"}})
    assert response.status == 403
    assert body["error"] == "403" and body["message"] == "forbidden"


async def test_account_fetch_shows_the_api_key_to_the_admin_only(api):
    account = await api.new_account()
    path = f"/v2/accounts/{account['id']}"
    _, as_admin = await api.call("GET", path)
    _, as_owner = await api.call("GET", path, token=account["token"])
    assert as_admin["data"]["api_key"] == account["api_key"]
    assert as_owner["data"] == {"id": account["id"], "name": "Acme", "realm": account["realm"]}


async def test_api_auth_returns_a_token_scoped_to_the_account(api):
    account = await api.new_account()
    response, body = await api.call("PUT", "/v2/api_auth", token=None,
                                    json={"data": {"api_key": account["api_key"]}})
    assert response.status == 201
    assert body["data"]["account_id"] == account["id"]
    assert len(body["auth_token"]) >= 32
    response, _ = await api.call("GET", f"/v2/accounts/{account['id']}/devices", token=body["auth_token"])
    assert response.status == 200


async def test_tokens_are_stored_hashed(api, redis_url):
    account = await api.new_account()
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        stored = [key async for key in client.scan_iter(match=f"{keys.PREFIX}:auth-token:*")]
        assert stored, "no token keys found"
        assert not any(account["token"] in key for key in stored)
        for key in stored:
            assert account["token"] not in (await client.get(key) or "")
    finally:
        await client.aclose()


async def test_api_auth_refuses_a_wrong_key(api):
    for data in ({"api_key": "0" * 64}, {"api_key": ""}, {"api_key": 5}, {}):
        response, body = await api.call("PUT", "/v2/api_auth", token=None, json={"data": data})
        assert response.status == 401, data
        assert body["error"] == "401" and body["message"] == "invalid_credentials"


async def test_account_routes_need_a_token(api):
    account = await api.new_account()
    for method, path in (("GET", f"/v2/accounts/{account['id']}"),
                         ("GET", f"/v2/accounts/{account['id']}/devices"),
                         ("PUT", f"/v2/accounts/{account['id']}/devices"),
                         ("PUT", "/v2/accounts")):
        for token in (None, "not-a-token"):
            response, body = await api.call(method, path, token=token, json={"data": {"name": "x"}})
            assert response.status == 401, (method, path, token)
            assert body["status"] == "error" and body["error"] == "401"


async def test_a_token_of_one_account_is_forbidden_on_another(api):
    first, second = await api.new_account(), await api.new_account()
    device = await api.new_device(second, {"name": "secret"})
    for method, path in (("GET", f"/v2/accounts/{second['id']}"),
                         ("GET", f"/v2/accounts/{second['id']}/devices"),
                         ("GET", f"/v2/accounts/{second['id']}/devices/{device['id']}"),
                         ("DELETE", f"/v2/accounts/{second['id']}/devices/{device['id']}")):
        response, body = await api.call(method, path, token=first["token"])
        assert response.status == 403, (method, path)
        assert "secret" not in str(body)
    # Nor can it reach the device through its own account's path.
    response, _ = await api.call("GET", f"/v2/accounts/{first['id']}/devices/{device['id']}",
                                 token=first["token"])
    assert response.status == 404
    _, still = await api.call("GET", f"/v2/accounts/{second['id']}/devices/{device['id']}")
    assert still["data"]["name"] == "secret"


async def test_the_admin_token_works_on_every_account(api):
    account = await api.new_account()
    response, _ = await api.call("PUT", f"/v2/accounts/{account['id']}/devices", token=ADMIN_TOKEN,
                                 json={"data": {"name": "by admin"}})
    assert response.status == 201


async def test_bearer_authorization_is_accepted_like_x_auth_token(api):
    account = await api.new_account()
    response = await api.client.get(f"/v2/accounts/{account['id']}/devices",
                                    headers={"Authorization": f"Bearer {account['token']}"})
    assert response.status == 200


async def test_an_unknown_account_is_404_for_the_admin(api):
    response, body = await api.call("GET", f"/v2/accounts/{'f' * 32}/devices")
    assert response.status == 404
    assert body["message"] == "bad_identifier"


async def test_a_token_expires_after_its_ttl(make_api):
    api = await make_api(token_ttl=1)
    account = await api.new_account()
    path = f"/v2/accounts/{account['id']}/devices"
    response, _ = await api.call("GET", path, token=account["token"])
    assert response.status == 200
    await asyncio.sleep(1.3)
    response, body = await api.call("GET", path, token=account["token"])
    assert response.status == 401
    assert body["message"] == "invalid_credentials"
