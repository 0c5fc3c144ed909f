"""Quickcall query options: defaults, every option, and every bad value refused by name."""

from __future__ import annotations

import pytest

from sipsvc.errors import ValidationFailedError
from sipsvc.quickcall.options import QuickcallOptions, dial_number, parse_options


def _errors(query) -> dict:
    with pytest.raises(ValidationFailedError) as error:
        parse_options(query)
    return error.value.errors


def test_no_options_gives_kazoos_defaults():
    options = parse_options([])
    assert options == QuickcallOptions()
    assert (options.auto_answer, options.ignore_early_media, options.media, options.timeout) == (
        True, True, "process", 30)
    assert options.number_filter.kind == "strip" and options.cid_name is None and options.cid_number is None


def test_every_option_is_read():
    options = parse_options([
        ("auto_answer", "false"), ("cid-name", "Reception"), ("cid-number", "+15550100"),
        ("ignore-early-media", "false"), ("media", "bypass"), ("number_filter", "false"),
        ("timeout", "3"),
    ])
    assert options.auto_answer is False and options.ignore_early_media is False
    assert (options.cid_name, options.cid_number, options.media, options.timeout) == (
        "Reception", "+15550100", "bypass", 3)
    assert options.number_filter.kind == "keep"


@pytest.mark.parametrize("value,expected", [("true", True), ("1", True), ("YES", True), ("False", False),
                                            ("0", False), ("no", False)])
def test_booleans(value, expected):
    assert parse_options([("auto_answer", value)]).auto_answer is expected
    assert parse_options([("ignore-early-media", value)]).ignore_early_media is expected


@pytest.mark.parametrize("query,option,rule", [
    ([("auto_answer", "maybe")], "auto_answer", "type"),
    ([("ignore-early-media", "")], "ignore-early-media", "type"),
    ([("media", "Bypass")], "media", "enum"),
    ([("media", "")], "media", "enum"),
    ([("timeout", "2")], "timeout", "minimum"),
    ([("timeout", "0")], "timeout", "minimum"),
    ([("timeout", "-5")], "timeout", "type"),
    ([("timeout", "3.5")], "timeout", "type"),
    ([("timeout", "ten")], "timeout", "type"),
    ([("timeout", "٣٠")], "timeout", "type"),  # Arabic-Indic digits are not accepted
    ([("timeout", "3601")], "timeout", "maximum"),
    ([("timeout", "9" * 5000)], "timeout", "maximum"),
    ([("cid-name", "")], "cid-name", "minLength"),
    ([("cid-name", "x" * 36)], "cid-name", "maxLength"),
    ([("cid-number", "1\r\nX: y")], "cid-number", "pattern"),
    ([("number_filter", "(a+)+$")], "number_filter", "pattern"),
    ([("number_filter", "[")], "number_filter", "pattern"),
    ([("timeout", "10"), ("timeout", "20")], "timeout", "duplicate"),
])
def test_a_bad_value_is_refused_under_its_option(query, option, rule):
    errors = _errors(query)
    assert list(errors) == [option]
    assert list(errors[option]) == [rule]
    assert errors[option][rule]["message"]


def test_every_bad_option_is_reported_at_once():
    errors = _errors([("timeout", "1"), ("media", "x"), ("auto_answer", "x"), ("cid-name", "")])
    assert set(errors) == {"timeout", "media", "auto_answer", "cid-name"}


def test_unknown_options_and_identical_repeats_are_accepted():
    options = parse_options([("target_call_id", "abc"), ("timeout", "10"), ("timeout", "10")])
    assert options.timeout == 10


def test_dial_number_applies_the_filter():
    assert dial_number("+1 (415) 886-7900", QuickcallOptions(), filter_timeout=0.05) == "+14158867900"
    keep = parse_options([("number_filter", "false")])
    assert dial_number("(415) 886", keep, filter_timeout=0.05) == "(415) 886"


@pytest.mark.parametrize("number,query,field,rule", [
    ("1" * 65, [], "number", "maxLength"),
    ("12\x003", [], "number", "pattern"),
    ("1é", [], "number", "pattern"),
    ("()-", [], "number", "minLength"),
    ("abc", [("number_filter", r"^(\d+)$")], "number_filter", "match"),
    ("a" * 60 + "b", [("number_filter", r"(a|aa)+$")], "number_filter", "timeout"),
])
def test_an_unusable_number_is_refused(number, query, field, rule):
    with pytest.raises(ValidationFailedError) as error:
        dial_number(number, parse_options(query), filter_timeout=0.05)
    assert list(error.value.errors) == [field] and list(error.value.errors[field]) == [rule]
