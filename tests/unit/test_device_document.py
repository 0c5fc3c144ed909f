"""Pure device-document functions: normalisation, defaults, merging, summaries, indexes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from sipsvc.devices import document
from sipsvc.devices.document import DeviceIndexes
from sipsvc.devices.validation import apply_defaults, validate


@pytest.mark.parametrize("given", ["00:04:F2:AB:7E:FD", "00-04-f2-ab-7e-fd", "0004.f2ab.7efd", "0004F2AB7EFD",
                                   " 00 04 f2 ab 7e fd "])
def test_mac_addresses_are_brought_to_one_form(given):
    assert document.normalise({"mac_address": given}, "r.test")["mac_address"] == "00:04:f2:ab:7e:fd"


def test_an_empty_mac_is_removed_and_a_bad_one_left_for_validation():
    assert "mac_address" not in document.normalise({"mac_address": " "}, "r.test")
    assert document.normalise({"mac_address": "zz"}, "r.test")["mac_address"] == "zz"


def test_outbound_flags_and_realm_normalisation():
    data = document.normalise({"outbound_flags": [" a ", "b"], "sip": {"realm": "ACME.test"}}, "acme.test")
    assert data == {"outbound_flags": ["a", "b"], "sip": {}}
    assert document.normalise({"outbound_flags": "x"}, "r.test")["outbound_flags"] == []
    assert document.normalise({"sip": {"realm": "other.test"}}, "r.test")["sip"] == {"realm": "other.test"}


def test_minimal_device_gets_the_example_defaults():
    doc = {"name": "x"}
    apply_defaults(doc)
    assert doc["media"] == {"audio": {"codecs": ["PCMU"]}, "encryption": {"enforce_security": False, "methods": []},
                            "video": {"codecs": []}}
    assert doc["sip"] == {"invite_format": "username", "method": "password", "registration_expiration": 300}
    assert "call_forward" not in doc and "expire_seconds" not in doc["sip"]
    assert validate(doc, previous=None, may_change_type=False) == {}


def test_sub_defaults_apply_only_inside_objects_that_exist():
    doc = {"name": "x", "call_forward": {"number": "5"}, "media": {"audio": {"codecs": ["PCMA"]}}}
    apply_defaults(doc)
    assert doc["call_forward"]["require_keypress"] is True and doc["call_forward"]["enabled"] is False
    assert doc["media"]["audio"] == {"codecs": ["PCMA"]}
    assert doc["media"]["video"] == {"codecs": []}


def test_merge_patch_merges_replaces_and_removes():
    base = {"a": {"b": 1, "c": 2}, "d": [1], "e": "x"}
    assert document.deep_merge(base, {"a": {"b": 5, "c": None}, "d": [2], "e": None, "f": {"g": None}}) == {
        "a": {"b": 5}, "d": [2], "f": {}}
    assert base == {"a": {"b": 1, "c": 2}, "d": [1], "e": "x"}


def test_indexes_of_password_and_ip_devices():
    password = document.indexes({"owner_id": "o" * 32, "hotdesk": {"users": {"u" * 32: {}}},
                                 "sip": {"username": "Bob", "method": "password"}, "mac_address": "00:04:f2:ab:7e:fd"},
                                "acme.test")
    assert password.users == {"o" * 32, "u" * 32}
    assert password.sip_credentials == ("acme.test", "Bob") and password.sip_ip is None
    assert password.mac == "00:04:f2:ab:7e:fd"
    assert document.indexes({"mac_address": "zz", "sip": "x", "owner_id": 5}, "a.test") == DeviceIndexes()
    ip = document.indexes({"sip": {"method": "ip", "ip": "192.0.2.1", "username": "x"}}, "acme.test")
    assert ip.sip_ip == "192.0.2.1" and ip.sip_credentials is None
    other_realm = document.indexes({"sip": {"username": "a", "realm": "b.test"}}, "acme.test")
    assert other_realm.sip_credentials == ("b.test", "a")


def test_summary_and_user_rows():
    doc = {"id": "i", "name": "n", "owner_id": "o", "sip": {"username": "u"}}
    row = document.summary(doc)
    assert row == {"device_type": "sip_device", "enabled": True, "id": "i", "mac_address": "", "name": "n",
                   "owner_id": "o", "username": "u"}
    assert document.user_row(row, "o")["hotdesked"] is False
    assert document.user_row(row, "x")["hotdesked"] is True
    assert "username" not in document.user_row(row, "o")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 400) | st.floats(allow_nan=False, allow_infinity=False, width=16)
    | st.text(alphabet="abc:1-_ .\r@", max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(alphabet="abc_X-1", max_size=5), children, max_size=3),
    max_leaves=8,
)
FIELDS = st.sampled_from(["name", "sip", "media", "call_forward", "caller_id", "hotdesk", "provision", "metaflows",
                          "ringtones", "owner_id", "enabled", "outbound_flags", "call_restriction", "mac_address"])
SUBFIELDS = st.sampled_from(["username", "password", "realm", "method", "ip", "invite_format", "custom_sip_headers",
                             "registration_expiration", "expire_seconds", "audio", "codecs", "number", "users",
                             "internal", "feature_keys", "binding_digit", "digit_timeout", "1", "type", "value"])


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(FIELDS, JSON | st.dictionaries(SUBFIELDS, JSON, max_size=4), max_size=5))
def test_the_fast_schema_check_agrees_with_the_full_validator(doc):
    from sipsvc.devices.validation import _VALIDATOR, schema_valid

    apply_defaults(doc)
    assert schema_valid(doc) == (not any(True for _ in _VALIDATOR.iter_errors(doc)))
