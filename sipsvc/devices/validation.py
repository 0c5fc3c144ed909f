"""Defaults and validation of device documents, with errors in Kazoo's shape.

Kazoo validates with jesse, applying schema defaults as it goes (``use_defaults`` and
``apply_defaults_to_empty_objects``): a default is filled in wherever its parent object exists,
so ``media.audio.codecs`` defaults only when ``media.audio`` is there (which its own default
ensures). Every error is collected, keyed by dotted field path, then by rule:
``{"sip.password": {"minLength": {"message": "...", "target": 5, "value": "abc"}}}``.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from typing import Any, Iterable

import jsonschema_rs
from jsonschema import Draft4Validator, Draft7Validator, validators
from jsonschema.exceptions import ValidationError as SchemaError

from ..errors import FieldErrors as Errors, add_field_error as add_error
from .schema import DEVICE_SCHEMA

# Draft 7 for ``propertyNames``, with draft 4's types (Kazoo's): 1.0 is a number, not an integer.
_VALIDATOR = validators.extend(Draft7Validator, type_checker=Draft4Validator.TYPE_CHECKER)(DEVICE_SCHEMA)
# The same schema compiled by jsonschema-rs answers "valid?" two hundred times faster; only a
# document it refuses goes through the Python validator, which collects every error.
_FAST = jsonschema_rs.Draft7Validator(DEVICE_SCHEMA)
# Kazoo's own wording where it differs from the generic message.
_ENUM_MESSAGES = {"sip.method": "SIP authentication method is invalid"}


def apply_defaults(instance: Any, schema: dict = DEVICE_SCHEMA) -> None:
    """Fill in schema defaults in place, wherever the parent object exists."""
    if not isinstance(instance, dict):
        return
    for name, sub in schema.get("properties", {}).items():
        if name not in instance and "default" in sub:
            instance[name] = copy.deepcopy(sub["default"])
        if name in instance:
            apply_defaults(instance[name], sub)


def _path(parts: Iterable[Any]) -> str:
    return ".".join(str(p) for p in parts)


def _add_schema_error(errors: Errors, error: SchemaError) -> None:
    path = _path(error.absolute_path)
    rule, target, value = error.validator, error.validator_value, error.instance
    if rule == "required":
        for name in target:
            if isinstance(value, dict) and name not in value:
                add_error(errors, _path([*error.absolute_path, name]), "required",
                          "Field is required but missing")
    elif rule == "minLength":
        add_error(errors, path, rule, f"String must be at least {target} characters",
                  target=target, value=value)
    elif rule == "maxLength":
        add_error(errors, path, rule, f"String must not be more than {target} characters",
                  target=target, value=value)
    elif rule == "enum":
        add_error(errors, path, rule, _ENUM_MESSAGES.get(path, "Value not found in enumerated list of values"),
                  target=target, value=value)
    elif rule == "type":
        types = target if isinstance(target, list) else [target]
        add_error(errors, path, rule, f"Value did not match type(s): {', '.join(types)}",
                  target=types, value=value)
    elif rule == "pattern":
        add_error(errors, path, rule, f"Failed to match pattern '{target}'",
                  target=target, value=value)
    elif rule == "minimum":
        add_error(errors, path, rule, f"Value must be at least {target}", target=target, value=value)
    elif rule == "maximum":
        add_error(errors, path, rule, f"Value must be at most {target}", target=target, value=value)
    elif rule == "additionalProperties":
        known, patterns = error.schema.get("properties", {}), error.schema.get("patternProperties", {})
        extra = sorted(key for key in value
                       if key not in known and not any(re.search(p, key) for p in patterns))
        add_error(errors, path, rule,
                  "Strict checking of data is enabled; only include schema-defined properties",
                  cause=extra)
    else:  # a rule this schema does not use today; still reported, never swallowed
        add_error(errors, path, str(rule), error.message)


def _float_where_integer(instance: Any, schema: dict) -> bool:
    """Draft 4 types on top of jsonschema-rs's draft 7: a float such as 300.0 is no integer."""
    kinds = schema.get("type")
    if isinstance(instance, float) and (kinds == "integer" or (isinstance(kinds, list) and "integer" in kinds
                                                               and "number" not in kinds)):
        return True
    if isinstance(instance, dict):
        properties, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
        extra = schema.get("additionalProperties")
        for key, value in instance.items():
            subs = [properties[key]] if key in properties else []
            subs += [sub for pattern, sub in patterns.items() if re.search(pattern, key)]
            if not subs and isinstance(extra, dict):
                subs = [extra]
            if any(_float_where_integer(value, sub) for sub in subs):
                return True
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        return any(_float_where_integer(item, schema["items"]) for item in instance)
    return False


def schema_valid(doc: dict) -> bool:
    return _FAST.is_valid(doc) and not _float_where_integer(doc, DEVICE_SCHEMA)


def validate(doc: dict, *, previous: dict | None, may_change_type: bool) -> Errors:
    """All errors of ``doc`` (defaults already applied); empty when it is valid.

    ``previous`` is the stored document on an update; ``may_change_type`` is whether the caller
    may change ``device_type`` (Kazoo reserves that to super-admins).
    """
    errors: Errors = {}
    if not schema_valid(doc):
        for error in _VALIDATOR.iter_errors(doc):
            _add_schema_error(errors, error)
    _check_authn_by_ip(doc, errors)
    if previous is not None and not may_change_type:
        old_type, new_type = previous.get("device_type"), doc.get("device_type")
        if old_type is not None and new_type != old_type:
            add_error(errors, "device_type", "invalid", "Not authorized to change type of device")
    if doc.get("device_type") == "mobile":
        mobile = doc.get("mobile")
        if not isinstance(mobile, dict) or "mdn" not in mobile:
            add_error(errors, "mobile.mdn", "required", "Field is required but missing")
    return errors


def _check_authn_by_ip(doc: dict, errors: Errors) -> None:
    sip = doc.get("sip")
    if not isinstance(sip, dict) or sip.get("method") != "ip":
        return
    if "ip" not in sip:
        add_error(errors, "sip.ip", "required", "Field is required but missing")
        return
    ip = sip["ip"]
    if not isinstance(ip, str):
        return  # the schema reports the type
    try:
        valid = str(ipaddress.IPv4Address(ip)) == ip
    except ValueError:
        valid = False
    if not valid:
        add_error(errors, "sip.ip", "type", "Must be a valid IPv4 RFC 791", value=ip)
