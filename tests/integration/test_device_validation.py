"""Every validation constraint of the device schema, proved over HTTP against real Redis.

Each case sends one violating request and asserts the exact error ``data`` of the 400 answer
(Kazoo's shape: dotted path -> rule -> details). Expected targets are written out from the
spec's schema table, not imported from ``sipsvc.devices.schema``, so the tests check the
schema against the spec.
"""

from __future__ import annotations

import os

import pytest

from sipsvc.devices import schema
from tests.conftest import ADMIN_TOKEN

AUDIO_CODECS = [
    "OPUS", "CELT@32000h", "G7221@32000h", "G7221@16000h", "G722", "speex@32000h",
    "speex@16000h", "PCMU", "PCMA", "G729", "GSM", "CELT@48000h", "CELT@64000h",
    "G722_16", "G722_32", "CELT_48", "CELT_64", "Speex", "speex",
]
BOOLEAN_FIELDS = [
    "allow_anonymous_quickcalls", "call_forward.direct_calls_only", "call_forward.enabled", "call_forward.failover",
    "call_forward.ignore_early_media", "call_forward.keep_caller_id",
    "call_forward.require_keypress", "call_forward.substitute", "call_waiting.enabled",
    "contact_list.exclude", "do_not_disturb.enabled", "enabled", "exclude_from_queues",
    "media.encryption.enforce_security", "media.fax_option", "media.ignore_early_media",
    "mwi_unsolicitated_updates", "register_overwrite_notify", "sip.ignore_completed_elsewhere",
    "suppress_unregister_notifications",
]
USER_ID = "a" * 32
MAC_PATTERN = "^([0-9a-f]{2}:){5}[0-9a-f]{2}$"
HEADER_NAME_PATTERN = r"^[A-Za-z0-9.!%*_+`'~-]+$"
HEADER_VALUE_PATTERN = r"^[^\r\n\x00]*$"
REQUIRED = {"required": {"message": "Field is required but missing"}}
NOT_AUTHORIZED = {"device_type": {"invalid": {"message": "Not authorized to change type of device"}}}
SECRET = object()  # stands for a value the error must not echo (sip.password)


def nested(path: str, value) -> dict:
    """``{"a": {"b": value}}`` for the dotted path ``a.b``."""
    for part in reversed(path.split(".")):
        value = {part: value}
    return value


def too_short(n: int, value=SECRET) -> dict:
    entry = {"message": f"String must be at least {n} characters", "target": n}
    return {"minLength": entry if value is SECRET else {**entry, "value": value}}


def too_long(n: int, value=SECRET) -> dict:
    entry = {"message": f"String must not be more than {n} characters", "target": n}
    return {"maxLength": entry if value is SECRET else {**entry, "value": value}}


def not_in(target: list, value, message="Value not found in enumerated list of values") -> dict:
    return {"enum": {"message": message, "target": target, "value": value}}


def wrong_type(types: list[str], value=SECRET) -> dict:
    entry = {"message": f"Value did not match type(s): {', '.join(types)}", "target": types}
    return {"type": entry if value is SECRET else {**entry, "value": value}}


def below(minimum: int, value) -> dict:
    return {"minimum": {"message": f"Value must be at least {minimum}", "target": minimum, "value": value}}


def no_match(pattern: str, value) -> dict:
    return {"pattern": {"message": f"Failed to match pattern '{pattern}'", "target": pattern, "value": value}}


def random_ip() -> str:
    return "10." + ".".join(str(b) for b in os.urandom(3))


def devices_path(account: dict, device_id: str | None = None) -> str:
    path = f"/v2/accounts/{account['id']}/devices"
    return f"{path}/{device_id}" if device_id else path


async def rejected(api, account: dict, data: dict, method: str = "PUT", device_id: str | None = None,
                   token: str | None = None) -> dict:
    """Send ``data``; assert Kazoo's 400 validation envelope and return its error ``data``."""
    response, body = await api.call(method, devices_path(account, device_id),
                                    token=token or account["token"], json={"data": data})
    assert response.status == 400, body
    assert (body["status"], body["error"], body["message"]) == ("error", "400", "validation error")
    return body["data"]


# (case id, request data on top of a valid name, expected error data)
SINGLE_VIOLATIONS = [
    ("name-empty", {"name": ""}, {"name": too_short(1, "")}),
    ("name-129", {"name": "n" * 129}, {"name": too_long(128, "n" * 129)}),
    ("name-not-string", {"name": True}, {"name": wrong_type(["string"], True)}),
    ("call_forward.number-16", nested("call_forward.number", "1" * 16),
     {"call_forward.number": too_long(15, "1" * 16)}),
    ("moh.media_id-129", nested("music_on_hold.media_id", "m" * 129),
     {"music_on_hold.media_id": too_long(128, "m" * 129)}),
    ("ringtones.internal-257", nested("ringtones.internal", "r" * 257),
     {"ringtones.internal": too_long(256, "r" * 257)}),
    ("ringtones.external-257", nested("ringtones.external", "r" * 257),
     {"ringtones.external": too_long(256, "r" * 257)}),
    ("sip.username-1", nested("sip.username", "u"), {"sip.username": too_short(2, "u")}),
    ("sip.username-33", nested("sip.username", "u" * 33), {"sip.username": too_long(32, "u" * 33)}),
    ("sip.password-4", nested("sip.password", "abcd"), {"sip.password": too_short(5)}),
    ("sip.password-33", nested("sip.password", "p" * 33), {"sip.password": too_long(32)}),
    ("sip.password-int", nested("sip.password", 12345), {"sip.password": wrong_type(["string"])}),
    ("sip.realm-3", nested("sip.realm", "a.b"), {"sip.realm": too_short(4, "a.b")}),
    ("sip.realm-254", nested("sip.realm", "r" * 254), {"sip.realm": too_long(253, "r" * 254)}),
    ("sip.realm-pattern", nested("sip.realm", "bad realm!"),
     {"sip.realm": no_match(r"^[.\w_-]+$", "bad realm!")}),
    ("owner_id-31", {"owner_id": "o" * 31}, {"owner_id": too_short(32, "o" * 31)}),
    ("owner_id-33", {"owner_id": "o" * 33}, {"owner_id": too_long(32, "o" * 33)}),
    *[(f"caller_id.{kind}.{field}-36", nested(f"caller_id.{kind}.{field}", "c" * 36),
       {f"caller_id.{kind}.{field}": too_long(35, "c" * 36)})
      for kind in ("internal", "external", "emergency", "asserted") for field in ("name", "number")],
    ("sip.method", nested("sip.method", "digest"),
     {"sip.method": not_in(["password", "ip"], "digest", "SIP authentication method is invalid")}),
    ("sip.invite_format", nested("sip.invite_format", "sip_uri"),
     {"sip.invite_format": not_in(["username", "npan", "1npan", "e164", "route"], "sip_uri")}),
    ("media.audio.codecs", nested("media.audio.codecs", ["PCMU", "MP3"]),
     {"media.audio.codecs.1": not_in(AUDIO_CODECS, "MP3")}),
    ("media.video.codecs", nested("media.video.codecs", ["VP9"]),
     {"media.video.codecs.0": not_in(["VP8", "H264", "H263", "H261"], "VP9")}),
    ("media.encryption.methods", nested("media.encryption.methods", ["tls"]),
     {"media.encryption.methods.0": not_in(["zrtp", "srtp"], "tls")}),
    ("media.bypass_media-enum", nested("media.bypass_media", "sometimes"),
     {"media.bypass_media": not_in([True, False, "true", "false", "auto"], "sometimes")}),
    ("media.bypass_media-type", nested("media.bypass_media", 1),
     {"media.bypass_media": {**wrong_type(["boolean", "string"], 1),
                             **not_in([True, False, "true", "false", "auto"], 1)}}),
    ("call_restriction.action", nested("call_restriction.international.action", "allow"),
     {"call_restriction.international.action": not_in(["inherit", "deny"], "allow")}),
    ("metaflows.binding_digit", nested("metaflows.binding_digit", "**"),
     {"metaflows.binding_digit": not_in(list("1234567890*#"), "**")}),
    ("metaflows.listen_on", nested("metaflows.listen_on", "nobody"),
     {"metaflows.listen_on": not_in(["both", "self", "peer"], "nobody")}),
    ("feature_keys.type", nested("provision.feature_keys.1", {"type": "blf", "value": "x"}),
     {"provision.feature_keys.1.type":
      not_in(["presence", "parking", "personal_parking", "speed_dial"], "blf")}),
    ("feature_keys.value-type", nested("provision.feature_keys.2", {"type": "presence", "value": [1]}),
     {"provision.feature_keys.2.value": wrong_type(["string", "integer"], [1])}),
    ("feature_keys.required", nested("provision.feature_keys.3", {}),
     {"provision.feature_keys.3.type": REQUIRED, "provision.feature_keys.3.value": REQUIRED}),
    ("metaflows.digit_timeout-min", nested("metaflows.digit_timeout", -1),
     {"metaflows.digit_timeout": below(0, -1)}),
    ("sip.expire_seconds-min", nested("sip.expire_seconds", 0), {"sip.expire_seconds": below(1, 0)}),
    ("sip.registration_expiration-min", nested("sip.registration_expiration", 0),
     {"sip.registration_expiration": below(1, 0)}),
    ("sip-object", {"sip": "x"}, {"sip": wrong_type(["object"], "x")}),
    ("caller_id-object", {"caller_id": None}, {"caller_id": wrong_type(["object"], None)}),
    ("call_restriction.class-object", nested("call_restriction.international", "deny"),
     {"call_restriction.international": wrong_type(["object"], "deny")}),
    ("codecs-array", nested("media.audio.codecs", "PCMU"),
     {"media.audio.codecs": wrong_type(["array"], "PCMU")}),
    ("outbound_flags-items", {"outbound_flags": ["ok", 7]}, {"outbound_flags.1": wrong_type(["string"], 7)}),
    ("progress_timeout-integer", nested("media.progress_timeout", "10"),
     {"media.progress_timeout": wrong_type(["integer"], "10")}),
    ("registration_expiration-float", nested("sip.registration_expiration", 300.5),
     {"sip.registration_expiration": wrong_type(["integer"], 300.5)}),
    ("expire_seconds-integral-float", nested("sip.expire_seconds", 300.0),
     {"sip.expire_seconds": wrong_type(["integer"], 300.0)}),
    ("mac_address-type", {"mac_address": 1234}, {"mac_address": wrong_type(["string"], 1234)}),
    ("mac_address-11-digits", {"mac_address": "00:04:f2:ab:7e:f"},
     {"mac_address": no_match(MAC_PATTERN, "00:04:f2:ab:7e:f")}),
    ("mac_address-not-hex", {"mac_address": "zz-04-f2-ab-7e-fd"},
     {"mac_address": no_match(MAC_PATTERN, "zz-04-f2-ab-7e-fd")}),
    ("hotdesk.users-value", nested(f"hotdesk.users.{USER_ID}", "yes"),
     {f"hotdesk.users.{USER_ID}": wrong_type(["object"], "yes")}),
    ("hotdesk.users-key", nested("hotdesk.users", {USER_ID: {}, "not-a-user": {}}),
     {"hotdesk.users": {"additionalProperties": {
         "message": "Strict checking of data is enabled; only include schema-defined properties",
         "cause": ["not-a-user"]}}}),
    ("custom_sip_headers-name", nested("sip.custom_sip_headers", {"Bad Header": "v"}),
     {"sip.custom_sip_headers": no_match(HEADER_NAME_PATTERN, "Bad Header")}),
    ("custom_sip_headers-crlf", nested("sip.custom_sip_headers.X-Ok", "a\r\nInjected: 1"),
     {"sip.custom_sip_headers.X-Ok": no_match(HEADER_VALUE_PATTERN, "a\r\nInjected: 1")}),
    ("custom_sip_headers-value-type", nested("sip.custom_sip_headers.X-Ok", 5),
     {"sip.custom_sip_headers.X-Ok": wrong_type(["string"], 5)}),
    ("sip.ip-required", nested("sip.method", "ip"), {"sip.ip": REQUIRED}),
    *[(f"sip.ip-{ip}", {"sip": {"method": "ip", "ip": ip}},
       {"sip.ip": {"type": {"message": "Must be a valid IPv4 RFC 791", "value": ip}}})
      for ip in ("2001:db8::1", "10.0.0", "10.0.0.256", "pbx.example.com")],
    ("mobile.mdn-required", {"device_type": "mobile"}, {"mobile.mdn": REQUIRED}),
]


@pytest.mark.parametrize("data, expected", [(d, e) for _, d, e in SINGLE_VIOLATIONS],
                         ids=[case for case, _, _ in SINGLE_VIOLATIONS])
async def test_put_reports_exactly_the_broken_rule_when_one_constraint_is_violated(api, data, expected):
    account = await api.new_account()
    assert await rejected(api, account, {"name": "phone", **data}) == expected


async def test_put_reports_name_required_when_name_is_missing(api):
    account = await api.new_account()
    assert await rejected(api, account, {"sip": {"username": "alice"}}) == {"name": REQUIRED}


@pytest.mark.parametrize("path", BOOLEAN_FIELDS)
async def test_put_reports_a_type_error_when_a_boolean_field_is_not_boolean(api, path):
    account = await api.new_account()
    errors = await rejected(api, account, {"name": "phone", **nested(path, "yes")})
    assert errors == {path: wrong_type(["boolean"], "yes")}


def test_boolean_table_lists_every_boolean_field_when_compared_with_the_schema():
    def booleans(node: dict, prefix: str = ""):
        for name, sub in node.get("properties", {}).items():
            if sub.get("type") == "boolean":
                yield prefix + name
            yield from booleans(sub, f"{prefix}{name}.")

    assert sorted(booleans(schema.DEVICE_SCHEMA)) == sorted(BOOLEAN_FIELDS)


async def test_all_errors_are_reported_together_when_a_request_breaks_several_rules(api):
    account = await api.new_account()
    data = {"name": "", "owner_id": "x", "media": {"audio": {"codecs": ["MP3"]}},
            "sip": {"username": "a", "password": "abc", "method": "nope"}}
    assert await rejected(api, account, data) == {
        "name": too_short(1, ""),
        "owner_id": too_short(32, "x"),
        "media.audio.codecs.0": not_in(AUDIO_CODECS, "MP3"),
        "sip.username": too_short(2, "a"),
        "sip.password": too_short(5),
        "sip.method": not_in(["password", "ip"], "nope", "SIP authentication method is invalid"),
    }


async def test_valid_devices_are_accepted_when_conditional_requirements_are_met(api):
    account = await api.new_account()
    mobile = await api.new_device(account, {"name": "cell", "device_type": "mobile", "mobile": {"mdn": "5551234"}})
    by_ip = await api.new_device(account, {"name": "pbx", "sip": {"method": "ip", "ip": random_ip()}})
    keys = await api.new_device(account, {"name": "desk", "mac_address": "0004.F2AB.7EFD", "provision": {
        "feature_keys": {"1": {"type": "speed_dial", "value": 100}, "2": None}}})
    assert mobile["mobile"] == {"mdn": "5551234"} and by_ip["sip"]["method"] == "ip"
    assert keys["mac_address"] == "00:04:f2:ab:7e:fd" and keys["provision"]["feature_keys"] == {
        "1": {"type": "speed_dial", "value": 100}}


async def test_sip_username_is_refused_when_it_differs_only_in_case_in_the_same_realm(api):
    account = await api.new_account()
    await api.new_device(account, {"name": "one", "sip": {"username": "alice", "password": "secret1"}})
    errors = await rejected(api, account, {"name": "two", "sip": {"username": "ALICE", "password": "secret2"}})
    assert errors == {"sip.username": {"unique": {"message": "SIP credentials already in use", "cause": "ALICE"}}}


async def test_sip_username_is_accepted_when_the_same_name_is_in_another_account_realm(api):
    first, second = await api.new_account(), await api.new_account()
    await api.new_device(first, {"name": "one", "sip": {"username": "alice", "password": "secret1"}})
    device = await api.new_device(second, {"name": "two", "sip": {"username": "alice", "password": "secret2"}})
    assert device["sip"]["username"] == "alice"


async def test_sip_username_is_refused_when_an_update_takes_another_devices_username(api):
    account = await api.new_account()
    await api.new_device(account, {"name": "one", "sip": {"username": "alice"}})
    other = await api.new_device(account, {"name": "two", "sip": {"username": "bob"}})
    errors = await rejected(api, account, {"sip": {"username": "Alice"}}, "PATCH", other["id"])
    assert errors == {"sip.username": {"unique": {"message": "SIP credentials already in use", "cause": "Alice"}}}
    response, body = await api.call("PATCH", devices_path(account, other["id"]), token=account["token"],
                                    json={"data": {"sip": {"username": "BOB"}}})
    assert response.status == 200, body  # its own username, in another case, is not a clash


async def test_mac_address_is_refused_when_another_spelling_of_it_is_in_the_account(api):
    account = await api.new_account()
    first = await api.new_device(account, {"name": "one", "mac_address": "0004f2ab7efd"})
    assert first["mac_address"] == "00:04:f2:ab:7e:fd"
    errors = await rejected(api, account, {"name": "two", "mac_address": "00-04-F2-AB-7E-FD"})
    assert errors == {"mac_address": {"unique": {"message": "MAC address already in use",
                                                 "cause": "00:04:f2:ab:7e:fd"}}}


async def test_mac_address_is_accepted_when_it_is_used_in_another_account(api):
    first, second = await api.new_account(), await api.new_account()
    await api.new_device(first, {"name": "one", "mac_address": "0004f2ab7efd"})
    device = await api.new_device(second, {"name": "two", "mac_address": "00:04:F2:AB:7E:FD"})
    assert device["mac_address"] == "00:04:f2:ab:7e:fd"


async def test_sip_ip_is_refused_when_another_ip_device_has_it(api):
    account = await api.new_account()
    ip = random_ip()
    await api.new_device(account, {"name": "one", "sip": {"method": "ip", "ip": ip}})
    errors = await rejected(api, account, {"name": "two", "sip": {"method": "ip", "ip": ip}})
    assert errors == {"sip.ip": {"unique": {"message": "SIP IP already in use", "cause": ip}}}


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_device_type_change_is_refused_when_the_token_is_not_admin(api, method):
    account = await api.new_account()
    device = await api.new_device(account, {"name": "phone", "device_type": "sip_device"})
    data = {"name": "phone", "device_type": "softphone"} if method == "POST" else {"device_type": "softphone"}
    assert await rejected(api, account, data, method, device["id"]) == NOT_AUTHORIZED
    same_type = {**data, "device_type": "sip_device"}
    response, body = await api.call(method, devices_path(account, device["id"]), token=account["token"],
                                    json={"data": same_type})
    assert response.status == 200, body


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_device_type_change_is_accepted_when_the_token_is_admin(api, method):
    account = await api.new_account()
    device = await api.new_device(account, {"name": "phone", "device_type": "sip_device"})
    data = {"name": "phone", "device_type": "softphone"} if method == "POST" else {"device_type": "softphone"}
    response, body = await api.call(method, devices_path(account, device["id"]), token=ADMIN_TOKEN,
                                    json={"data": data})
    assert response.status == 200, body
    _, fetched = await api.call("GET", devices_path(account, device["id"]), token=account["token"])
    assert fetched["data"]["device_type"] == "softphone"


async def test_patch_is_validated_when_it_sets_a_short_password(api):
    account = await api.new_account()
    device = await api.new_device(account, {"name": "phone", "sip": {"password": "secret1"}})
    errors = await rejected(api, account, {"sip": {"password": "abc"}}, "PATCH", device["id"])
    assert errors == {"sip.password": too_short(5)}


async def test_post_is_validated_when_the_replacement_breaks_the_schema(api):
    account = await api.new_account()
    device = await api.new_device(account, {"name": "phone"})
    errors = await rejected(api, account, {"sip": {"invite_format": "bogus"}}, "POST", device["id"])
    assert errors == {"name": REQUIRED, "sip.invite_format":
                      not_in(["username", "npan", "1npan", "e164", "route"], "bogus")}


@pytest.mark.parametrize("method, data", [
    ("POST", {"name": "renamed", "owner_id": "short"}),
    ("PATCH", {"name": "renamed", "sip": {"password": "abc"}}),
    ("PATCH", {"name": "renamed", "mac_address": "0004f2ab7efd"}),  # uniqueness failure
])
async def test_stored_device_is_unchanged_when_an_update_fails_validation(api, method, data):
    account = await api.new_account()
    await api.new_device(account, {"name": "holder", "mac_address": "00:04:f2:ab:7e:fd"})
    response, created = await api.call("PUT", devices_path(account), token=account["token"],
                                       json={"data": {"name": "phone", "sip": {"password": "secret1"}}})
    assert response.status == 201, created
    device_id = created["data"]["id"]
    await rejected(api, account, data, method, device_id)
    response, fetched = await api.call("GET", devices_path(account, device_id), token=account["token"])
    assert response.status == 200
    assert (fetched["data"], fetched["revision"]) == (created["data"], created["revision"])


async def test_nothing_is_created_when_a_put_fails_validation(api):
    account = await api.new_account()
    await api.new_device(account, {"name": "holder", "mac_address": "0004f2ab7efd"})
    await rejected(api, account, {"name": "", "sip": {"username": "x"}})
    await rejected(api, account, {"name": "dup", "mac_address": "00:04:F2:AB:7E:FD"})
    _, listing = await api.call("GET", devices_path(account), token=account["token"])
    assert [row["name"] for row in listing["data"]] == ["holder"]


async def test_a_body_the_store_cannot_write_back_is_refused_not_a_500(api):
    # Found by schemathesis: Python's JSON parser takes integers of any size and lone UTF-16
    # surrogates, which the stored JSON cannot hold.
    account = await api.new_account()
    path = f"/v2/accounts/{account['id']}/devices"
    for body in (b'{"data": {"name": "big", "mobile": {"x": -976501615565002768384}}}',
                 b'{"data": {"name": "lone \\ud84e surrogate"}}'):
        response, answer = await api.call("PUT", path, token=account["token"], data=body)
        assert response.status == 400, answer
        assert answer["data"]["message"].startswith("request body is not valid JSON for this API")
