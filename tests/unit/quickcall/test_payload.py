"""The originate payload: the devices API page's example key for key, and each computed value."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sipsvc.devices.schema import INVITE_FORMATS
from sipsvc.devices.validation import apply_defaults
from sipsvc.quickcall.options import QuickcallOptions, parse_options
from sipsvc.quickcall.payload import build_payload, is_reconcilable, presence_id

SPEC = Path(__file__).resolve().parents[2] / "data" / "devices-api.rst"
ACCOUNT_ID = "c" * 32
DEVICE_ID = "d" * 32
OWNER_ID = "e" * 32
CALL_ID = "0123456789abcdef0123456789abcdef0123"
REALM = "acme.sip.test"


def spec_example_response() -> dict:
    """The JSON answer the page shows for ``GET .../quickcall/{PHONE_NUMBER}``."""
    text = SPEC.read_text()
    start = text.index("/quickcall/{PHONE_NUMBER}\n")
    block = text[text.index(".. code:: json", start):text.index("Adding Ringtones", start)]
    return json.loads(block[block.index("{"):block.rindex("}") + 1])


def fill(value, values: dict[str, str]):
    """``value`` with every ``{PLACEHOLDER}`` in its strings replaced."""
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    if isinstance(value, str):
        return re.sub(r"\{([A-Z0-9_]+)\}", lambda m: values[m.group(1)], value)
    return value


def device(**fields) -> dict:
    """A stored device: the given fields with the schema's defaults, as a create stores it."""
    doc = {"name": "Desk phone", **fields}
    apply_defaults(doc)
    return {**doc, "id": DEVICE_ID}


def build(doc: dict, number: str = "+14158867900", route: str | None = None,
          options: QuickcallOptions | None = None) -> dict:
    return build_payload(doc, account_id=ACCOUNT_ID, account_realm=REALM, route=route or number,
                         number=number, options=options or QuickcallOptions(), call_id=CALL_ID)


def test_the_spec_example_key_for_key():
    doc = device(owner_id=OWNER_ID, sip={"username": "desk100", "password": "secret99"},
                 media={"audio": {"codecs": ["PCMU", "PCMA"]}},
                 caller_id={"external": {"name": "Acme Sales", "number": "+14155550100"}})
    values = {
        "DEVICE_ID": DEVICE_ID, "ACCOUNT_ID": ACCOUNT_ID, "USER_ID": OWNER_ID, "ACCOUNT_REALM": REALM,
        "DEVICE_CALLER_ID_NUMBER": "+14155550100", "DEVICE_CALLER_ID_NAME": "Acme Sales",
        "E164_NUMBER": "+14158867900", "PHONE_NUMBER": "+14158867900", "CALL_ID": CALL_ID,
        "DEVICE_SIP_USER": "desk100", "PRESENCE_ID": f"desk100@{REALM}",
    }
    assert build(doc) == fill(spec_example_response()["data"], values)


def test_without_an_owner_there_is_no_owner_id():
    endpoint = build(device(sip={"username": "desk100"}))["endpoints"][0]
    assert "owner_id" not in endpoint["custom_channel_vars"]
    assert build(device(owner_id=OWNER_ID))["endpoints"][0]["custom_channel_vars"]["owner_id"] == OWNER_ID


def test_the_route_is_the_number_as_given_and_the_rest_the_filtered_one():
    payload = build(device(sip={"username": "desk100"}), number="+14158867900", route="+1 (415) 886-7900")
    assert payload["application_data"] == {"route": "+1 (415) 886-7900"}
    assert payload["outbound_caller_id_number"] == "+14158867900"
    assert payload["endpoints"][0]["to_did"] == "+14158867900"


@pytest.mark.parametrize("audio,video,expected", [
    (["PCMU"], [], ["PCMU"]),
    (["OPUS", "G722", "PCMA", "G729"], [], ["OPUS", "G722", "PCMA", "G729"]),
    (["PCMU"], ["H264", "VP8"], ["PCMU", "H264", "VP8"]),
])
def test_codecs_are_audio_then_video(audio, video, expected):
    doc = device(media={"audio": {"codecs": audio}, "video": {"codecs": video}})
    assert build(doc)["endpoints"][0]["codecs"] == expected


def test_no_codecs_leaves_the_key_out():
    assert "codecs" not in build(device(media={"audio": {"codecs": []}}))["endpoints"][0]


def test_a_minimal_device_gets_the_default_codec_and_invite_format():
    endpoint = build(device())["endpoints"][0]
    assert endpoint["codecs"] == ["PCMU"] and endpoint["invite_format"] == "username"


@pytest.mark.parametrize("invite_format", INVITE_FORMATS)
def test_each_invite_format_is_passed_on(invite_format):
    sip = {"username": "desk100", "invite_format": invite_format, "number": "+14155550123",
           "route": "sip:desk100@192.0.2.7:5060"}
    endpoint = build(device(sip=sip))["endpoints"][0]
    assert endpoint["invite_format"] == invite_format
    assert endpoint["to_user"] == "desk100" and endpoint["to_username"] == "desk100"
    assert endpoint["to_did"] == "+14155550123"  # sip.number wins over the dialled number
    assert endpoint["route"] == "sip:desk100@192.0.2.7:5060"


def test_a_static_invite_is_the_to_user():
    endpoint = build(device(sip={"username": "desk100", "static_invite": "frontdesk"}))["endpoints"][0]
    assert (endpoint["to_user"], endpoint["to_username"]) == ("frontdesk", "desk100")


def test_the_device_realm_wins_over_the_accounts():
    endpoint = build(device(sip={"username": "desk100", "realm": "other.sip.test"}))["endpoints"][0]
    assert endpoint["to_realm"] == "other.sip.test"
    assert endpoint["custom_sip_headers"] == {"x_kazoo_aor": "sip:desk100@other.sip.test"}
    assert endpoint["custom_channel_vars"]["sip_invite_domain"] == "other.sip.test"
    assert endpoint["presence_id"] == "desk100@other.sip.test"


@pytest.mark.parametrize("fields,expected", [
    ({"sip": {"username": "desk100"}}, f"desk100@{REALM}"),
    ({"sip": {"username": "desk100"}, "presence_id": "2001"}, f"2001@{REALM}"),
    ({"sip": {"username": "desk100"}, "presence_id": "2001@elsewhere.test"}, "2001@elsewhere.test"),
    ({}, None),
])
def test_presence_id_rules(fields, expected):
    assert presence_id(device(**fields), REALM) == expected
    assert build(device(**fields))["endpoints"][0].get("presence_id") == expected


def test_an_ip_device_has_no_sip_user_fields_but_its_ip():
    doc = device(sip={"method": "ip", "ip": "192.0.2.10", "invite_format": "e164"})
    endpoint = build(doc)["endpoints"][0]
    assert endpoint["to_ip"] == "192.0.2.10"
    for key in ("to_user", "to_username", "custom_sip_headers", "presence_id"):
        assert key not in endpoint


def test_encryption_and_call_waiting_reach_the_endpoint():
    doc = device(media={"encryption": {"enforce_security": True}}, call_waiting={"enabled": False})
    channel_vars = build(doc)["endpoints"][0]["custom_channel_vars"]
    assert channel_vars["media_encryption_enforce_security"] is True
    assert channel_vars["call_waiting_disabled"] is True
    assert "call_waiting_disabled" not in build(device())["endpoints"][0]["custom_channel_vars"]


CALLER_IDS = {"external": {"name": "Acme", "number": "+14155550100"},
              "internal": {"name": "Desk 100", "number": "100"}}


@pytest.mark.parametrize("number,expected", [
    ("+14158867900", CALLER_IDS["external"]),
    ("4158867900", CALLER_IDS["external"]),
    ("011442079460000", CALLER_IDS["external"]),
    ("2001", CALLER_IDS["internal"]),
    ("*97", CALLER_IDS["internal"]),
])
def test_the_callee_id_defaults_to_the_devices_external_or_internal_caller_id(number, expected):
    payload = build(device(caller_id=CALLER_IDS), number=number)
    assert payload["outbound_callee_id_name"] == expected["name"]
    assert payload["outbound_callee_id_number"] == expected["number"]
    assert payload["custom_channel_vars"]["retain_cid"] == "true"


def test_cid_options_set_the_callee_id():
    options = parse_options([("cid-name", "Reception"), ("cid-number", "+15550100")])
    payload = build(device(caller_id=CALLER_IDS), options=options)
    assert (payload["outbound_callee_id_name"], payload["outbound_callee_id_number"]) == (
        "Reception", "+15550100")
    assert payload["outbound_caller_id_name"] == "Device QuickCall"  # the caller side is fixed
    assert payload["custom_channel_vars"]["retain_cid"] == "true"


def test_without_any_caller_id_the_callee_keys_are_left_out():
    payload = build(device())
    assert "outbound_callee_id_name" not in payload and "outbound_callee_id_number" not in payload
    assert payload["custom_channel_vars"]["retain_cid"] == "false"


def test_options_reach_the_payload():
    options = parse_options([("auto_answer", "false"), ("ignore-early-media", "false"),
                             ("media", "bypass"), ("timeout", "45")])
    payload = build(device(), options=options)
    assert (payload["ignore_early_media"], payload["media"], payload["timeout"]) == (False, "bypass", 45)
    assert payload["endpoints"][0]["custom_channel_vars"]["auto_answer"] is False


@pytest.mark.parametrize("number,expected", [
    ("+14158867900", True), ("14158867900", True), ("4158867900", True), ("+442079460000", True),
    ("0044207946", True), ("2001", False), ("+1234", False), ("415886790", False),
])
def test_reconcilable_numbers(number, expected):
    assert is_reconcilable(number) is expected
