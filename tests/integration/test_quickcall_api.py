"""GET /v2/accounts/{A}/devices/{D}/quickcall/{NUMBER} over real HTTP with a real Redis: the
payload, every query option, refusals (bad options, dangerous patterns, disabled devices,
missing devices) and who may ask without a token."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import unquote

import pytest

OWNER_ID = "f" * 32
DEVICE = {
    "name": "Reception", "owner_id": OWNER_ID,
    "sip": {"username": "reception", "password": "s3cret-pass"},
    "media": {"audio": {"codecs": ["PCMU", "PCMA", "G722"]}, "video": {"codecs": ["H264"]}},
    "caller_id": {"external": {"name": "Acme", "number": "+14155550100"},
                  "internal": {"name": "Reception", "number": "100"}},
}


def _path(account: dict, device_id: str, number: str = "+14158867900") -> str:
    return f"/v2/accounts/{account['id']}/devices/{device_id}/quickcall/{number}"


async def _setup(api, **fields):
    account = await api.new_account()
    device = await api.new_device(account, {**DEVICE, **fields})
    return account, device


async def test_the_payload_of_a_device(api):
    account, device = await _setup(api)
    response, body = await api.call("GET", _path(account, device["id"]), token=account["token"])
    assert response.status == 200, body
    assert body["status"] == "success" and body["auth_token"] == account["token"]
    data = body["data"]
    assert data["application_name"] == "transfer"
    assert data["application_data"] == {"route": "+14158867900"}
    assert (data["outbound_callee_id_name"], data["outbound_callee_id_number"]) == ("Acme", "+14155550100")
    [endpoint] = data["endpoints"]
    assert endpoint["endpoint_id"] == device["id"]
    assert endpoint["codecs"] == ["PCMU", "PCMA", "G722", "H264"]
    assert endpoint["custom_channel_vars"]["owner_id"] == OWNER_ID
    assert endpoint["custom_channel_vars"]["account_id"] == account["id"]
    assert endpoint["custom_sip_headers"] == {"x_kazoo_aor": f"sip:reception@{account['realm']}"}
    assert endpoint["to_realm"] == account["realm"]


async def test_each_call_gets_its_own_call_id(api):
    account, device = await _setup(api)
    ids = set()
    for _ in range(3):
        _, body = await api.call("GET", _path(account, device["id"]), token=account["token"])
        ids.add(body["data"]["endpoints"][0]["outbound_call_id"])
    assert len(ids) == 3


async def test_a_device_without_owner(api):
    account = await api.new_account()
    device = await api.new_device(account, {"name": "Lobby", "sip": {"username": "lobby", "password": "s3cret-pass"}})
    response, body = await api.call("GET", _path(account, device["id"]), token=account["token"])
    assert response.status == 200, body
    [endpoint] = body["data"]["endpoints"]
    assert "owner_id" not in endpoint["custom_channel_vars"]
    assert endpoint["codecs"] == ["PCMU"]  # the schema's default
    assert "outbound_callee_id_number" not in body["data"]


@pytest.mark.parametrize("invite_format", ["username", "npan", "1npan", "e164", "route"])
async def test_each_invite_format(api, invite_format):
    account, device = await _setup(api, sip={**DEVICE["sip"], "invite_format": invite_format})
    _, body = await api.call("GET", _path(account, device["id"]), token=account["token"])
    assert body["data"]["endpoints"][0]["invite_format"] == invite_format


async def test_every_option_reaches_the_payload(api):
    account, device = await _setup(api)
    response, body = await api.call(
        "GET", _path(account, device["id"], "2001"), token=account["token"],
        params={"auto_answer": "false", "cid-name": "Front Desk", "cid-number": "+15550100",
                "ignore-early-media": "false", "media": "bypass", "timeout": "12"},
    )
    assert response.status == 200, body
    data = body["data"]
    assert data["endpoints"][0]["custom_channel_vars"]["auto_answer"] is False
    assert (data["outbound_callee_id_name"], data["outbound_callee_id_number"]) == ("Front Desk", "+15550100")
    assert (data["ignore_early_media"], data["media"], data["timeout"]) == (False, "bypass", 12)


async def test_the_internal_caller_id_for_an_extension(api):
    account, device = await _setup(api)
    _, body = await api.call("GET", _path(account, device["id"], "2001"), token=account["token"])
    assert (body["data"]["outbound_callee_id_name"], body["data"]["outbound_callee_id_number"]) == (
        "Reception", "100")


@pytest.mark.parametrize("number,number_filter,dialled", [
    ("%2B1%20(415)%20886-7900", None, "+14158867900"),
    ("%2B1%20(415)%20886-7900", "true", "+14158867900"),
    ("415.886.7900", "false", "415.886.7900"),
    ("%2B14158867900", r"^\+?1?(\d{10})$", "4158867900"),
])
async def test_number_filter(api, number, number_filter, dialled):
    account, device = await _setup(api)
    params = {"number_filter": number_filter} if number_filter is not None else None
    response, body = await api.call("GET", _path(account, device["id"], number), token=account["token"],
                                    params=params)
    assert response.status == 200, body
    assert body["data"]["outbound_caller_id_number"] == dialled
    assert body["data"]["endpoints"][0]["to_did"] == dialled
    assert body["data"]["application_data"]["route"] == unquote(number)  # as the path gave it


@pytest.mark.parametrize("params,option,rule", [
    ({"auto_answer": "sometimes"}, "auto_answer", "type"),
    ({"ignore-early-media": "2"}, "ignore-early-media", "type"),
    ({"media": "proxy"}, "media", "enum"),
    ({"timeout": "2"}, "timeout", "minimum"),
    ({"timeout": "soon"}, "timeout", "type"),
    ({"timeout": "100000"}, "timeout", "maximum"),
    ({"cid-name": "x" * 40}, "cid-name", "maxLength"),
    ({"cid-number": ""}, "cid-number", "minLength"),
    ({"number_filter": "("}, "number_filter", "pattern"),
    ({"number_filter": r"\d+"}, "number_filter", "pattern"),
    ({"number_filter": "(" + "1" * 200 + ")"}, "number_filter", "maxLength"),
    ({"number_filter": r"^(9\d+)$"}, "number_filter", "match"),
])
async def test_a_bad_option_is_a_400_naming_it(api, params, option, rule):
    account, device = await _setup(api)
    response, body = await api.call("GET", _path(account, device["id"]), token=account["token"], params=params)
    assert response.status == 400, body
    assert (body["status"], body["error"], body["message"]) == ("error", "400", "validation error")
    assert list(body["data"]) == [option] and list(body["data"][option]) == [rule]
    assert body["data"][option][rule]["message"]


async def test_a_number_that_is_too_long_is_a_400(api):
    account, device = await _setup(api)
    response, body = await api.call("GET", _path(account, device["id"], "1" * 65), token=account["token"])
    assert response.status == 400 and body["data"] == {
        "number": {"maxLength": {"message": "the number may have at most 64 characters", "target": 64}}}


@pytest.mark.parametrize("pattern,rule", [("(a+)+$", "pattern"), ("(a|aa)+$", "timeout")])
async def test_a_catastrophic_pattern_is_refused_promptly(api, pattern, rule):
    account, device = await _setup(api)
    started = time.monotonic()
    response, body = await api.call("GET", _path(account, device["id"], "a" * 60 + "b"),
                                    token=account["token"], params={"number_filter": pattern})
    assert time.monotonic() - started < 2.0
    assert response.status == 400 and list(body["data"]["number_filter"]) == [rule]


async def test_catastrophic_patterns_do_not_stall_other_requests(api):
    account, device = await _setup(api)
    evil = [api.call("GET", _path(account, device["id"], "a" * 60 + "b"), token=account["token"],
                     params={"number_filter": "(a|aa)+$"}) for _ in range(10)]
    started = time.monotonic()
    results = await asyncio.gather(*evil, api.call("GET", _path(account, device["id"]), token=account["token"]))
    assert time.monotonic() - started < 5.0
    assert [r.status for r, _ in results] == [400] * 10 + [200]


async def test_a_disabled_device_is_a_409_that_says_so(api):
    account, device = await _setup(api, enabled=False)
    response, body = await api.call("GET", _path(account, device["id"]), token=account["token"])
    assert response.status == 409, body
    assert body["message"] == "device_unavailable" and body["error"] == "409"
    assert body["data"]["cause"] == device["id"] and "disabled" in body["data"]["message"]


async def test_a_do_not_disturb_device_is_a_409(api):
    account, device = await _setup(api, do_not_disturb={"enabled": True})
    response, body = await api.call("GET", _path(account, device["id"]), token=account["token"])
    assert response.status == 409 and "do-not-disturb" in body["data"]["message"]


async def test_a_missing_device_is_a_404_bad_identifier(api):
    account = await api.new_account()
    for device_id in ("0" * 32, "not-an-id"):
        response, body = await api.call("GET", _path(account, device_id), token=account["token"])
        assert response.status == 404
        assert body["message"] == "bad_identifier"
        assert body["data"] == {"cause": device_id, "message": "bad identifier"}


async def test_a_deleted_device_is_a_404(api):
    account, device = await _setup(api)
    await api.call("DELETE", f"/v2/accounts/{account['id']}/devices/{device['id']}", token=account["token"])
    response, _ = await api.call("GET", _path(account, device["id"]), token=account["token"])
    assert response.status == 404


async def test_a_missing_account_is_a_404_with_or_without_token(api):
    path = f"/v2/accounts/{'0' * 32}/devices/{'1' * 32}/quickcall/2001"
    assert (await api.call("GET", path))[0].status == 404  # the admin token
    assert (await api.call("GET", path, token=None))[0].status == 404


async def test_placing_a_call_without_a_gateway_is_a_409_that_says_so(api):
    account, device = await _setup(api)
    for method, params in (("POST", None), ("GET", {"originate": "true"})):
        response, body = await api.call(method, _path(account, device["id"]), token=account["token"],
                                        params=params)
        assert response.status == 409, body
        assert body["message"] == "quickcall gateway not configured"
        assert "quickcall.gateway is not configured" in body["data"]["message"]
    response, body = await api.call("PUT", _path(account, device["id"]), token=account["token"])
    assert response.status == 405 and response.headers["Allow"] == "GET, HEAD, POST"


# -- who may ask ------------------------------------------------------------------------------

async def test_anonymous_quickcalls_are_allowed_by_default(api):
    account, device = await _setup(api)
    response, body = await api.call("GET", _path(account, device["id"]), token=None)
    assert response.status == 200, body
    assert body["auth_token"] == ""


async def test_a_presented_token_must_be_valid_and_reach_the_account(api):
    account, device = await _setup(api)
    other = await api.new_account()
    response, body = await api.call("GET", _path(account, device["id"]), token="not-a-token")
    assert response.status == 401 and body["message"] == "invalid_credentials"
    response, body = await api.call("GET", _path(account, device["id"]), token=other["token"])
    assert response.status == 403 and body["message"] == "forbidden"


async def test_when_anonymous_quickcalls_are_off_a_token_is_needed(make_api):
    api = await make_api(quickcall_allow_anonymous=False)
    account, device = await _setup(api)
    response, body = await api.call("GET", _path(account, device["id"]), token=None)
    assert response.status == 401 and body["message"] == "invalid_credentials"
    response, body = await api.call("GET", _path(account, device["id"]), token=account["token"])
    assert response.status == 200, body


async def test_a_device_can_allow_anonymous_quickcalls_itself(make_api):
    api = await make_api(quickcall_allow_anonymous=False)
    account, device = await _setup(api, allow_anonymous_quickcalls=True)
    response, body = await api.call("GET", _path(account, device["id"]), token=None)
    assert response.status == 200, body
    response, _ = await api.call(
        "PATCH", f"/v2/accounts/{account['id']}/devices/{device['id']}", token=account["token"],
        json={"data": {"allow_anonymous_quickcalls": False}},
    )
    assert response.status == 200
    response, _ = await api.call("GET", _path(account, device["id"]), token=None)
    assert response.status == 401


async def test_a_disabled_device_is_not_revealed_to_a_refused_anonymous_caller(make_api):
    api = await make_api(quickcall_allow_anonymous=False)
    account, device = await _setup(api, enabled=False)
    response, _ = await api.call("GET", _path(account, device["id"]), token=None)
    assert response.status == 401

