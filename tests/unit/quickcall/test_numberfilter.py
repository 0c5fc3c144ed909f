"""number_filter: true/false/pattern, and patterns that must not be able to stall the server."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings, strategies as st

from sipsvc.quickcall.numberfilter import (
    KEEP, MAX_PATTERN_LENGTH, STRIP, NumberFilterError, apply_number_filter, parse_number_filter,
)

TIMEOUT = 0.05


def _apply(text: str, number: str) -> str:
    return apply_number_filter(parse_number_filter(text), number, timeout=TIMEOUT)


@pytest.mark.parametrize("text,expected", [("true", STRIP), ("TRUE", STRIP), ("false", KEEP), ("False", KEEP)])
def test_true_and_false_are_not_patterns(text, expected):
    assert parse_number_filter(text) is expected


@pytest.mark.parametrize("number,expected", [
    ("+1 (415) 886-7900", "+14158867900"),
    ("415.886.7900", "4158867900"),
    ("1,415/886*7900#", "14158867900"),
    ("abc-123", "abc123"),
    ("2+3", "23"),  # only a leading + is kept
])
def test_true_keeps_letters_digits_and_a_leading_plus(number, expected):
    assert _apply("true", number) == expected


def test_false_keeps_the_number_as_given():
    assert _apply("false", "+1 (415) 886-7900") == "+1 (415) 886-7900"


@pytest.mark.parametrize("pattern,number,expected", [
    (r"^\+?1?(\d{10})$", "+14158867900", "4158867900"),
    (r"(\d+)", "ext. 2001 please", "2001"),
    (r"^(?:00|\+)(\d+)", "0044207946", "44207946"),
    (r"(\d{3})\D*(\d{4})", "555-0100", "555"),  # the first group only
])
def test_a_pattern_gives_its_first_capture_group(pattern, number, expected):
    assert _apply(pattern, number) == expected


@pytest.mark.parametrize("pattern,rule", [
    ("(", "pattern"),
    ("[0-9", "pattern"),
    (r"\d+", "pattern"),  # no capture group
    ("", "pattern"),
    ("(" + "a" * MAX_PATTERN_LENGTH + ")", "maxLength"),
    ("(a+)+$", "pattern"),
    (r"(\d*)*", "pattern"),
    (r"((\d+)x)*", "pattern"),
    (r"(\d{2}){5}", "pattern"),
    ("((((((((((a{2}){2}){2}){2}){2}){2}){2}){2}){2}){2})", "pattern"),  # exponential compile
    (r"(\d{1001})", "pattern"),
    (r"(a{1,99999})", "pattern"),
])
def test_unusable_or_dangerous_patterns_are_refused(pattern, rule):
    with pytest.raises(NumberFilterError) as error:
        parse_number_filter(pattern)
    assert error.value.rule == rule


@pytest.mark.parametrize("pattern", [
    r"(a*?)", r"(\d++)", r"([+*?{}()]+)", r"(\d{1,15})", r"(\d)\1", r"(?:x|y)(\d+)",
    r"([[:digit:]]+)", r"(\p{N}+)", r"(?#comment)(\d+)", r"(a{2,}b)",
])
def test_ordinary_patterns_are_accepted(pattern):
    assert parse_number_filter(pattern).kind == "pattern"


def test_a_pattern_that_does_not_match_is_an_error():
    with pytest.raises(NumberFilterError) as error:
        _apply(r"^(\d+)$", "abc")
    assert error.value.rule == "match"


def test_a_group_that_captures_nothing_is_an_error():
    with pytest.raises(NumberFilterError) as error:
        _apply(r"(\d*)x", "x")
    assert error.value.rule == "match"


@pytest.mark.parametrize("pattern", [r"(a|aa)+$", r"^(a|a)+$", r"(aa|a)+$"])
def test_backtracking_that_slips_through_is_cut_off_by_the_deadline(pattern):
    number = "a" * 60 + "b"
    started = time.monotonic()
    with pytest.raises(NumberFilterError) as error:
        _apply(pattern, number)
    assert time.monotonic() - started < 1.0
    assert error.value.rule == "timeout"


_PATTERN_CHARS = st.sampled_from(list("ab1()[]{}|*+?\\^$.,:-#<=!P") + ["\\d", "{2}", "{1,3}", "(?:", "[:digit:]"])


@settings(max_examples=400, deadline=None)
@given(pattern=st.lists(_PATTERN_CHARS, max_size=30).map("".join),
       number=st.text(alphabet="ab1+-", max_size=64))
def test_any_pattern_is_parsed_or_refused_and_matches_promptly(pattern, number):
    started = time.monotonic()
    try:
        number_filter = parse_number_filter(pattern)
        apply_number_filter(number_filter, number, timeout=TIMEOUT)
    except NumberFilterError:
        pass
    assert time.monotonic() - started < 1.0
