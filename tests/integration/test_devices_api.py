"""The devices endpoints beyond the page's examples: revisions and If-Match, PATCH merging,
DELETE, listing with pagination and filters, a user's devices, unknown and private fields, bad
bodies and concurrent writers."""

from __future__ import annotations

import asyncio

import pytest


def devices_path(account, device_id: str | None = None) -> str:
    path = f"/v2/accounts/{account['id']}/devices"
    return f"{path}/{device_id}" if device_id else path


async def test_revision_changes_on_every_write_and_is_the_etag(api):
    account = await api.new_account()
    response, created = await api.call("PUT", devices_path(account), token=account["token"],
                                       json={"data": {"name": "phone"}})
    revisions = [created["revision"]]
    assert response.headers["ETag"] == f'"{created["revision"]}"'
    path = devices_path(account, created["data"]["id"])
    for method, data in (("POST", {"name": "renamed"}), ("PATCH", {"language": "de-de"})):
        response, body = await api.call(method, path, token=account["token"], json={"data": data})
        assert response.status == 200
        assert response.headers["ETag"] == f'"{body["revision"]}"'
        revisions.append(body["revision"])
    _, fetched = await api.call("GET", path, token=account["token"])
    assert fetched["revision"] == revisions[-1]
    assert len(set(revisions)) == 3


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
async def test_a_stale_if_match_gets_409_and_changes_nothing(api, method):
    account = await api.new_account()
    _, created = await api.call("PUT", devices_path(account), token=account["token"],
                                json={"data": {"name": "phone"}})
    path = devices_path(account, created["data"]["id"])
    stale = created["revision"]
    _, current = await api.call("PATCH", path, token=account["token"], json={"data": {"name": "v2"}})
    response, body = await api.call(method, path, token=account["token"], json={"data": {"name": "v3"}},
                                    headers={"If-Match": f'"{stale}"'})
    assert response.status == 409
    assert body["error"] == "409" and body["message"] == "datastore_conflict"
    assert body["data"]["current_revision"] == current["revision"]
    _, after = await api.call("GET", path, token=account["token"])
    assert after["data"]["name"] == "v2" and after["revision"] == current["revision"]


async def test_a_current_if_match_is_accepted(api):
    account = await api.new_account()
    _, created = await api.call("PUT", devices_path(account), token=account["token"],
                                json={"data": {"name": "phone"}})
    response, body = await api.call("PATCH", devices_path(account, created["data"]["id"]),
                                    token=account["token"], json={"data": {"name": "v2"}},
                                    headers={"If-Match": created["revision"]})
    assert response.status == 200 and body["data"]["name"] == "v2"


async def test_concurrent_patches_without_if_match_all_land(api):
    account = await api.new_account()
    device = await api.new_device(account, {"name": "phone"})
    path = devices_path(account, device["id"])
    fields = [f"custom_{i}" for i in range(12)]
    results = await asyncio.gather(*(
        api.call("PATCH", path, token=account["token"], json={"data": {field: True}})
        for field in fields
    ))
    assert all(response.status == 200 for response, _ in results)
    _, fetched = await api.call("GET", path, token=account["token"])
    assert all(fetched["data"][field] is True for field in fields)
    assert fetched["revision"].startswith("13-")


async def test_patch_deep_merges_and_post_replaces(api):
    account = await api.new_account()
    device = await api.new_device(account, {"name": "phone", "caller_id": {"internal": {"name": "A", "number": "1"}},
                                            "sip": {"username": "u100", "password": "secret1"}})
    path = devices_path(account, device["id"])
    _, patched = await api.call("PATCH", path, token=account["token"],
                                json={"data": {"caller_id": {"internal": {"number": "2"}}}})
    assert patched["data"]["caller_id"] == {"internal": {"name": "A", "number": "2"}}
    assert patched["data"]["sip"]["username"] == "u100"
    _, replaced = await api.call("POST", path, token=account["token"], json={"data": {"name": "bare"}})
    assert replaced["data"]["caller_id"] == {}
    assert "username" not in replaced["data"]["sip"]
    assert replaced["data"]["id"] == device["id"]


async def test_unknown_fields_are_kept_and_private_fields_are_ignored(api):
    account = await api.new_account()
    device = await api.new_device(account, {"name": "phone", "vendor": {"model": "T46U"},
                                            "pvt_type": "user", "_rev": "9-x", "id": "f" * 32})
    assert device["vendor"] == {"model": "T46U"}
    assert "pvt_type" not in device and "_rev" not in device
    assert device["id"] != "f" * 32
    _, fetched = await api.call("GET", devices_path(account, device["id"]), token=account["token"])
    assert fetched["data"] == device


async def test_delete_returns_the_document_then_404(api):
    account = await api.new_account()
    device = await api.new_device(account, {"name": "phone", "mac_address": "0004f2ab7efd",
                                            "sip": {"username": "gone", "password": "secret1"}})
    path = devices_path(account, device["id"])
    response, body = await api.call("DELETE", path, token=account["token"])
    assert response.status == 200 and body["data"] == device
    for method in ("DELETE", "GET", "POST", "PATCH"):
        response, body = await api.call(method, path, token=account["token"], json={"data": {"name": "x"}})
        assert response.status == 404, method
        assert body["message"] == "bad_identifier"
        assert body["data"] == {"cause": device["id"], "message": "bad identifier"}
    _, listing = await api.call("GET", devices_path(account), token=account["token"])
    assert listing["data"] == []
    # Its unique values are free again.
    await api.new_device(account, {"name": "again", "mac_address": "0004f2ab7efd",
                                   "sip": {"username": "gone", "password": "secret1"}})


async def test_a_malformed_device_id_is_404(api):
    account = await api.new_account()
    response, body = await api.call("GET", devices_path(account, "not-an-id"), token=account["token"])
    assert response.status == 404 and body["data"]["cause"] == "not-an-id"


async def test_listing_pages_through_every_device_once(api):
    account = await api.new_account()
    created = {(await api.new_device(account, {"name": f"d{i}"}))["id"] for i in range(23)}
    seen, start_key, pages = [], None, 0
    while True:
        params = {"page_size": "5", **({"start_key": start_key} if start_key else {})}
        response, body = await api.call("GET", devices_path(account), token=account["token"], params=params)
        assert response.status == 200
        assert body["page_size"] == len(body["data"]) <= 5
        seen += [row["id"] for row in body["data"]]
        pages += 1
        start_key = body.get("next_start_key")
        if start_key is None:
            break
    assert pages == 5
    assert seen == sorted(created)
    _, everything = await api.call("GET", devices_path(account), token=account["token"],
                                   params={"paginate": "false"})
    assert [row["id"] for row in everything["data"]] == sorted(created)


async def test_listing_rows_carry_the_summary_fields(api):
    account = await api.new_account()
    device = await api.new_device(account, {"name": "desk", "owner_id": "c" * 32, "device_type": "softphone",
                                            "sip": {"username": "desk1", "password": "secret1"}})
    _, body = await api.call("GET", devices_path(account), token=account["token"])
    assert body["data"] == [{"device_type": "softphone", "enabled": True, "id": device["id"],
                             "mac_address": "", "name": "desk", "owner_id": "c" * 32, "username": "desk1"}]


async def test_listing_filters_on_summary_fields(api):
    account = await api.new_account()
    for i in range(6):
        await api.new_device(account, {"name": f"d{i}", "enabled": i % 2 == 0,
                                       "owner_id": ("d" if i < 3 else "e") * 32})
    _, disabled = await api.call("GET", devices_path(account), token=account["token"],
                                 params={"filter_enabled": "false", "page_size": "2"})
    assert len(disabled["data"]) == 2
    assert all(row["enabled"] is False for row in disabled["data"])
    assert "next_start_key" in disabled
    _, rest = await api.call("GET", devices_path(account), token=account["token"],
                             params={"filter_enabled": "false", "page_size": "2",
                                     "start_key": disabled["next_start_key"]})
    assert len(rest["data"]) == 1 and "next_start_key" not in rest
    _, owned = await api.call("GET", devices_path(account), token=account["token"],
                              params={"filter_owner_id": "e" * 32, "filter_enabled": "true"})
    assert [row["name"] for row in owned["data"]] == ["d4"]


@pytest.mark.parametrize("params,named", [
    ({"filter_password": "x"}, "password"),
    ({"page_size": "0"}, "page_size"),
    ({"page_size": "many"}, "page_size"),
    ({"page_size": "100000"}, "page_size"),
    ({"paginate": "maybe"}, "paginate"),
])
async def test_a_bad_listing_option_gets_400_naming_it(api, params, named):
    account = await api.new_account()
    response, body = await api.call("GET", devices_path(account), token=account["token"], params=params)
    assert response.status == 400
    assert named in body["data"]["message"]


async def test_user_devices_lists_owned_and_hotdesked_devices(api):
    account = await api.new_account()
    user, other = "1" * 32, "2" * 32
    owned = await api.new_device(account, {"name": "owned", "owner_id": user})
    desk = await api.new_device(account, {"name": "desk", "owner_id": other,
                                          "hotdesk": {"users": {user: {}}}})
    await api.new_device(account, {"name": "unrelated", "owner_id": other})
    path = f"/v2/accounts/{account['id']}/users/{user}/devices"
    _, body = await api.call("GET", path, token=account["token"])
    rows = {row["name"]: row for row in body["data"]}
    assert set(rows) == {"owned", "desk"}
    assert rows["owned"]["hotdesked"] is False and rows["desk"]["hotdesked"] is True
    # Hotdesk logout (PATCH null removes a key) and a change of owner move devices between users.
    await api.call("PATCH", devices_path(account, desk["id"]), token=account["token"],
                   json={"data": {"hotdesk": {"users": {user: None}}}})
    await api.call("PATCH", devices_path(account, owned["id"]), token=account["token"],
                   json={"data": {"owner_id": other}})
    _, body = await api.call("GET", path, token=account["token"])
    assert body["data"] == []
    _, body = await api.call("GET", f"/v2/accounts/{account['id']}/users/{other}/devices",
                             token=account["token"])
    assert {row["name"] for row in body["data"]} == {"owned", "desk", "unrelated"}


@pytest.mark.parametrize("raw,fragment", [
    (b"", "empty"),
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"name": "x"}', 'no "data"'),
    (b'{"data": "x"}', '"data" must be'),
    (b"[" * 100000 + b"]" * 100000, "deeper than the limit of 32 levels"),
])
async def test_a_bad_body_gets_400_with_a_clear_message(api, raw, fragment):
    account = await api.new_account()
    response, body = await api.call("PUT", devices_path(account), token=account["token"], data=raw)
    assert response.status == 400
    assert body["error"] == "400"
    assert fragment in body["data"]["message"]


async def test_a_body_over_the_size_limit_gets_400(make_api):
    api = await make_api(max_body_bytes=2048)
    account = await api.new_account()
    payload = b'{"data": {"name": "x", "pad": "' + b"a" * 4096 + b'"}}'
    response, body = await api.call("PUT", devices_path(account), token=account["token"], data=payload)
    assert response.status == 400
    assert "2048 bytes" in body["data"]["message"]
    _, listing = await api.call("GET", devices_path(account), token=account["token"])
    assert listing["data"] == []


async def test_concurrent_creates_with_one_username_let_exactly_one_win(api):
    account = await api.new_account()
    results = await asyncio.gather(*(
        api.call("PUT", devices_path(account), token=account["token"],
                 json={"data": {"name": f"dup{i}", "sip": {"username": "Shared" if i % 2 else "shared",
                                                           "password": "secret1"}}})
        for i in range(16)
    ))
    statuses = sorted(response.status for response, _ in results)
    assert statuses == [201] + [400] * 15
    for response, body in results:
        if response.status == 400:
            assert list(body["data"]) == ["sip.username"]
    _, listing = await api.call("GET", devices_path(account), token=account["token"])
    assert len(listing["data"]) == 1


async def test_concurrent_creates_with_one_mac_let_exactly_one_win(api):
    account = await api.new_account()
    results = await asyncio.gather(*(
        api.call("PUT", devices_path(account), token=account["token"],
                 json={"data": {"name": f"m{i}", "mac_address": "00:04:f2:ab:7e:fd"}})
        for i in range(16)
    ))
    assert sorted(response.status for response, _ in results) == [201] + [400] * 15


async def test_request_id_is_echoed_or_generated(api):
    account = await api.new_account()
    response, body = await api.call("GET", devices_path(account), token=account["token"],
                                    headers={"X-Request-ID": "trace-42"})
    assert body["request_id"] == "trace-42" and response.headers["X-Request-ID"] == "trace-42"
    _, body = await api.call("GET", devices_path(account), token=account["token"])
    assert len(body["request_id"]) == 32


async def test_unknown_routes_and_methods_answer_in_the_envelope(api):
    response, body = await api.call("GET", "/v2/nothing")
    assert response.status == 404 and body["status"] == "error"
    account = await api.new_account()
    response, body = await api.call("PATCH", devices_path(account), token=account["token"])
    assert response.status == 405 and body["error"] == "405"


async def test_uniqueness_is_reported_together_with_schema_errors(api):
    account = await api.new_account()
    await api.new_device(account, {"name": "first", "mac_address": "0004f2ab7efd",
                                   "sip": {"username": "taken", "password": "secret1"}})
    response, body = await api.call("PUT", devices_path(account), token=account["token"], json={"data": {
        "name": "", "mac_address": "00:04:F2:AB:7E:FD", "sip": {"username": "TAKEN", "password": "abc"}}})
    assert response.status == 400
    assert set(body["data"]) == {"name", "mac_address", "sip.username", "sip.password"}
    assert body["data"]["sip.username"]["unique"]["cause"] == "TAKEN"
