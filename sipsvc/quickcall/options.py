"""A quickcall's query options, and the number it dials.

The options and their defaults are Kazoo's (``cb_quickcall``): ``auto_answer`` (true),
``cid-name`` and ``cid-number`` (the device's caller id), ``ignore-early-media`` (true),
``media`` (``process``; ``bypass``), ``number_filter`` (true) and ``timeout`` (30). Kazoo turns
a value it cannot use into the default without a word; here every such value is collected and
refused at once, in Kazoo's validation error shape keyed by the option's name::

    {"timeout": {"minimum": {"message": "...", "target": 3, "value": "2"}}}

Options this module does not know are ignored (Kazoo copies them into custom application vars).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from ..errors import FieldErrors, ValidationFailedError, add_field_error
from .numberfilter import (
    MAX_NUMBER_LENGTH, STRIP, NumberFilter, NumberFilterError, apply_number_filter,
    parse_number_filter,
)

DEFAULT_TIMEOUT = 30
MIN_TIMEOUT = 3
MAX_TIMEOUT = 3600
MEDIA_MODES = ("bypass", "process")
# A caller-id name or number is at most 35 characters in Kazoo's schema (caller_id.json).
MAX_CID_LENGTH = 35
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")
_PRINTABLE = re.compile(r"^[\x20-\x7e]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
KNOWN_OPTIONS = ("auto_answer", "cid-name", "cid-number", "ignore-early-media", "media",
                 "number_filter", "timeout")


@dataclass(frozen=True)
class QuickcallOptions:
    auto_answer: bool = True
    cid_name: str | None = None
    cid_number: str | None = None
    ignore_early_media: bool = True
    media: str = "process"
    number_filter: NumberFilter = field(default=STRIP)
    timeout: int = DEFAULT_TIMEOUT


def parse_options(query: Iterable[tuple[str, str]]) -> QuickcallOptions:
    """The options of a query string, given as (name, value) pairs (repeats included).

    Raises:
        ValidationFailedError: with an entry for every option whose value cannot be used.
    """
    errors: FieldErrors = {}
    values: dict[str, str] = {}
    for name, value in query:
        if name not in KNOWN_OPTIONS:
            continue
        if name in values and values[name] != value:
            add_field_error(errors, name, "duplicate", f"query option {name} is given more than once",
                            value=[values[name], value])
        values[name] = value
    options = {
        "auto_answer": _boolean(errors, values, "auto_answer", True),
        "cid_name": _caller_id(errors, values, "cid-name"),
        "cid_number": _caller_id(errors, values, "cid-number"),
        "ignore_early_media": _boolean(errors, values, "ignore-early-media", True),
        "media": _media(errors, values),
        "number_filter": _number_filter(errors, values),
        "timeout": _timeout(errors, values),
    }
    if errors:
        raise ValidationFailedError(errors)
    return QuickcallOptions(**options)


def dial_number(number: str, options: QuickcallOptions, *, filter_timeout: float) -> str:
    """The number from the path, checked and filtered by ``number_filter``.

    Raises:
        ValidationFailedError: under ``number`` when the path's number is unusable, under
            ``number_filter`` when the filter does not yield a number.
    """
    errors: FieldErrors = {}
    if len(number) > MAX_NUMBER_LENGTH:
        add_field_error(errors, "number", "maxLength",
                        f"the number may have at most {MAX_NUMBER_LENGTH} characters",
                        target=MAX_NUMBER_LENGTH)
    elif not _PRINTABLE.match(number):
        add_field_error(errors, "number", "pattern",
                        "the number must be printable ASCII characters", value=number)
    else:
        try:
            dialled = apply_number_filter(options.number_filter, number, timeout=filter_timeout)
        except NumberFilterError as exc:
            add_field_error(errors, "number_filter", exc.rule, str(exc), value=number)
        else:
            if dialled:
                return dialled
            add_field_error(errors, "number", "minLength",
                            "no number is left once number_filter is applied", value=number)
    raise ValidationFailedError(errors)


def _boolean(errors: FieldErrors, values: dict[str, str], name: str, default: bool) -> bool:
    value = values.get(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    add_field_error(errors, name, "type", f"query option {name} must be true or false",
                    target=["boolean"], value=value)
    return default


def _caller_id(errors: FieldErrors, values: dict[str, str], name: str) -> str | None:
    value = values.get(name)
    if value is None:
        return None
    if not value.strip():
        add_field_error(errors, name, "minLength", f"query option {name} may not be empty",
                        target=1, value=value)
    elif len(value) > MAX_CID_LENGTH:
        add_field_error(errors, name, "maxLength",
                        f"query option {name} may have at most {MAX_CID_LENGTH} characters",
                        target=MAX_CID_LENGTH, value=value)
    elif _CONTROL.search(value):
        add_field_error(errors, name, "pattern",
                        f"query option {name} may not contain control characters", value=value)
    return value


def _media(errors: FieldErrors, values: dict[str, str]) -> str:
    value = values.get("media", "process")
    if value not in MEDIA_MODES:
        add_field_error(errors, "media", "enum", "query option media must be bypass or process",
                        target=list(MEDIA_MODES), value=value)
        return "process"
    return value


def _number_filter(errors: FieldErrors, values: dict[str, str]) -> NumberFilter:
    value = values.get("number_filter")
    if value is None:
        return STRIP
    try:
        return parse_number_filter(value)
    except NumberFilterError as exc:
        add_field_error(errors, "number_filter", exc.rule, str(exc), value=value)
        return STRIP


def _timeout(errors: FieldErrors, values: dict[str, str]) -> int:
    value = values.get("timeout")
    if value is None:
        return DEFAULT_TIMEOUT
    if not (value.isascii() and value.isdigit()):
        add_field_error(errors, "timeout", "type", "query option timeout must be a whole number of seconds",
                        target=["integer"], value=value)
        return DEFAULT_TIMEOUT
    # A long digit string is too large whatever it says (and int() refuses very long ones).
    seconds = int(value) if len(value) <= 9 else MAX_TIMEOUT + 1
    if seconds < MIN_TIMEOUT:
        add_field_error(errors, "timeout", "minimum", f"query option timeout must be at least {MIN_TIMEOUT}",
                        target=MIN_TIMEOUT, value=value)
    elif seconds > MAX_TIMEOUT:
        add_field_error(errors, "timeout", "maximum", f"query option timeout must be at most {MAX_TIMEOUT}",
                        target=MAX_TIMEOUT, value=value)
    else:
        return seconds
    return DEFAULT_TIMEOUT
