"""The ``number_filter`` query option: which part of the dialled number a quickcall uses.

- ``true`` (the default): every character that is not a letter or a digit is dropped, except a
  leading ``+`` (so ``+1 (415) 886-7900`` becomes ``+14158867900``);
- ``false``: the number as given;
- anything else is a regular expression; the first capture group of its first match is the
  number (Kazoo's ``re:run`` with ``all_but_first``).

The pattern comes from the request, so it is treated as hostile. Kazoo compiles and runs it as
it is; here it is refused unless it is short, has a capture group, has no quantifier applied to
something that already repeats (``(a+)+``, ``(\\d{2}){5}``: the shape of catastrophic
backtracking, and of patterns whose compiled form grows exponentially) and no repetition bound
above ``MAX_REPEAT_BOUND``; and the match runs under a deadline (the ``regex`` module's
``timeout``), so a pattern that slips through (``(a|aa)+$``) costs at most that long. Errors are
``NumberFilterError`` with a message for the client; the option parser turns them into a 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import regex

MAX_PATTERN_LENGTH = 128
MAX_REPEAT_BOUND = 1000
# The longest number the path may carry (E.164 has at most 15 digits; room for punctuation).
MAX_NUMBER_LENGTH = 64

_NOT_ALPHANUMERIC = re.compile(r"[^A-Za-z0-9]")
_COUNTED = re.compile(r"\{(\d*)(,)?(\d*)\}")
# What the previous token of a pattern was, for the nested-quantifier check.
_NOTHING, _ATOM, _REPEATING_GROUP, _QUANTIFIER, _MODIFIED_QUANTIFIER = range(5)


class NumberFilterError(ValueError):
    """The filter cannot be used, or does not give a number; the message says why."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule  # the Kazoo-style rule name the API reports it under


@dataclass(frozen=True)
class NumberFilter:
    """A parsed ``number_filter``: ``strip`` (true), ``keep`` (false) or ``pattern``."""

    kind: str
    pattern: regex.Pattern | None = None


STRIP = NumberFilter("strip")
KEEP = NumberFilter("keep")


def parse_number_filter(text: str) -> NumberFilter:
    """Parse the option's value.

    Raises:
        NumberFilterError: the value is a pattern that is too long, unsafe, invalid or has no
            capture group.
    """
    if text.lower() == "true":
        return STRIP
    if text.lower() == "false":
        return KEEP
    if len(text) > MAX_PATTERN_LENGTH:
        raise NumberFilterError(
            "maxLength", f"a number_filter pattern may have at most {MAX_PATTERN_LENGTH} characters"
        )
    _check_structure(text)
    try:
        compiled = regex.compile(text)
    except (regex.error, ValueError, OverflowError) as exc:
        raise NumberFilterError("pattern", f"number_filter is not a valid regular expression: {exc}") from None
    if compiled.groups < 1:
        raise NumberFilterError(
            "pattern", "number_filter must be true, false or a regular expression with a capture group"
        )
    return NumberFilter("pattern", compiled)


def apply_number_filter(number_filter: NumberFilter, number: str, *, timeout: float) -> str:
    """The number to dial: ``number`` filtered as ``number_filter`` says.

    Args:
        timeout: seconds the pattern may take to match before the request is refused.

    Raises:
        NumberFilterError: the pattern does not match, captures nothing, or took too long.
    """
    if number_filter.kind == "keep":
        return number
    if number_filter.kind == "strip":
        plus = "+" if number.startswith("+") else ""
        return plus + _NOT_ALPHANUMERIC.sub("", number)
    try:
        match = number_filter.pattern.search(number, timeout=timeout)
    except TimeoutError:
        raise NumberFilterError(
            "timeout", f"number_filter took longer than {timeout:g} s to match the number; simplify it"
        ) from None
    if match is None:
        raise NumberFilterError("match", "number_filter does not match the number")
    if not match.group(1):
        raise NumberFilterError("match", "the first capture group of number_filter matched nothing")
    return match.group(1)


def _check_structure(pattern: str) -> None:
    """Refuse quantified groups that already contain a quantifier, stacked quantifiers, and
    repetition bounds above ``MAX_REPEAT_BOUND``. A scan of the syntax, not a full parser: what
    it does not understand is left for the compiler to accept or reject."""
    holds_quantifier = [False]  # per open group, outermost (the whole pattern) first
    previous = _NOTHING
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            previous, i = _ATOM, i + 2
        elif char == "[":
            previous, i = _ATOM, _skip_class(pattern, i)
        elif char == "(":
            holds_quantifier.append(False)
            previous, i = _NOTHING, _skip_group_opening(pattern, i)
        elif char == ")":
            inner = holds_quantifier.pop() if len(holds_quantifier) > 1 else False
            holds_quantifier[-1] = holds_quantifier[-1] or inner
            previous, i = (_REPEATING_GROUP if inner else _ATOM), i + 1
        elif char == "|":
            previous, i = _NOTHING, i + 1
        elif length := _quantifier_length(pattern, i):
            if previous == _QUANTIFIER and char in "?+" and length == 1:
                previous = _MODIFIED_QUANTIFIER  # lazy a*? or possessive a*+
            elif previous in (_REPEATING_GROUP, _QUANTIFIER, _MODIFIED_QUANTIFIER):
                raise NumberFilterError(
                    "pattern", "number_filter may not repeat what already repeats, like (a+)+ or "
                               "(\\d{2}){3}: such patterns can take exponential time"
                )
            elif previous == _ATOM:
                _check_bounds(pattern[i:i + length])
                holds_quantifier[-1] = True
                previous = _QUANTIFIER
            i += length
        else:
            previous, i = _ATOM, i + 1


def _quantifier_length(pattern: str, i: int) -> int:
    if pattern[i] in "*+?":
        return 1
    if pattern[i] == "{":
        match = _COUNTED.match(pattern, i)
        if match and (match.group(1) or match.group(2)):
            return match.end() - i
    return 0


def _check_bounds(quantifier: str) -> None:
    for bound in re.findall(r"\d+", quantifier):
        if int(bound) > MAX_REPEAT_BOUND:
            raise NumberFilterError(
                "pattern", f"number_filter repetition bounds may be at most {MAX_REPEAT_BOUND}"
            )


def _skip_class(pattern: str, i: int) -> int:
    """The index just past the character class opening at ``i``."""
    j = i + 1
    if pattern.startswith("^", j):
        j += 1
    if pattern.startswith("]", j):
        j += 1  # a leading ] is a literal
    while j < len(pattern):
        if pattern[j] == "\\":
            j += 2
        elif pattern.startswith("[:", j) and ":]" in pattern[j + 2:]:
            j = pattern.index(":]", j + 2) + 2  # a POSIX class such as [:digit:]
        elif pattern[j] == "]":
            return j + 1
        else:
            j += 1
    return j


def _skip_group_opening(pattern: str, i: int) -> int:
    """The index just past ``(``, ``(?:``-style prefixes included; a comment is skipped whole."""
    j = i + 1
    if pattern.startswith("?#", j):
        end = pattern.find(")", j)
        return len(pattern) if end < 0 else end  # the ) then closes the (empty) group
    if pattern.startswith("?", j):
        j += 1  # the rest of the prefix (:, =, !, <=, P<name>, flags) reads as atoms: harmless
    return j
