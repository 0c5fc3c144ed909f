"""The device document's JSON Schema (draft 4, as Kazoo's ``devices.json``).

Fields, types, bounds, enums and defaults are those of the schema table in
``devices-api.rst``, plus the rules Kazoo's schema adds where the table is silent (lengths of
``sip.username``/``sip.password``/``sip.realm``, ``owner_id`` of exactly 32 characters, caller-id
lengths, call-restriction actions, hotdesk user ids). Where the table and the page's example
responses disagree the examples win: a minimal create returns exactly the example's defaults,
so ``sip.registration_expiration`` (not ``sip.expire_seconds``) is the defaulted expiry field.
Unknown fields are allowed: Kazoo documents are open.
"""

from __future__ import annotations

AUDIO_CODECS = [
    "OPUS", "CELT@32000h", "G7221@32000h", "G7221@16000h", "G722", "speex@32000h",
    "speex@16000h", "PCMU", "PCMA", "G729", "GSM", "CELT@48000h", "CELT@64000h",
    "G722_16", "G722_32", "CELT_48", "CELT_64", "Speex", "speex",
]
VIDEO_CODECS = ["VP8", "H264", "H263", "H261"]
INVITE_FORMATS = ["username", "npan", "1npan", "e164", "route"]
SIP_METHODS = ["password", "ip"]
KAZOO_ID_PATTERN = "^[a-zA-Z0-9]{32}$"
# Stored form of a MAC address (``document.normalise`` brings other spellings to it).
MAC_ADDRESS_PATTERN = "^([0-9a-f]{2}:){5}[0-9a-f]{2}$"
# A SIP header name is an RFC 3261 token; values may not break out of their header line.
SIP_HEADER_NAME_PATTERN = r"^[A-Za-z0-9.!%*_+`'~-]+$"
SIP_HEADER_VALUE_PATTERN = r"^[^\r\n\x00]*$"


def _bool(default: bool | None = None) -> dict:
    schema: dict = {"type": "boolean"}
    if default is not None:
        schema["default"] = default
    return schema


def _string(min_length: int | None = None, max_length: int | None = None, **extra) -> dict:
    schema: dict = {"type": "string", **extra}
    if min_length is not None:
        schema["minLength"] = min_length
    if max_length is not None:
        schema["maxLength"] = max_length
    return schema


def _object(properties: dict | None = None, default: dict | None = None, **extra) -> dict:
    schema: dict = {"type": "object", "properties": properties or {}, **extra}
    if default is not None:
        schema["default"] = default
    return schema


_CALLER_ID_ENTRY = _object({"name": _string(max_length=35), "number": _string(max_length=35)})

DEVICE_SCHEMA: dict = _object(
    required=["name"],
    properties={
        "allow_anonymous_quickcalls": _bool(),
        "call_forward": _object({
            "direct_calls_only": _bool(False),
            "enabled": _bool(False),
            "failover": _bool(False),
            "ignore_early_media": _bool(True),
            "keep_caller_id": _bool(True),
            "number": _string(0, 15),
            "require_keypress": _bool(True),
            "substitute": _bool(True),
        }),
        "call_restriction": _object(
            default={},
            additionalProperties=_object({"action": _string(enum=["inherit", "deny"])}),
        ),
        "call_waiting": _object({"enabled": _bool()}),
        "caller_id": _object(
            {kind: _CALLER_ID_ENTRY for kind in ("internal", "external", "emergency", "asserted")},
            default={},
        ),
        "contact_list": _object({"exclude": _bool()}, default={}),
        "device_type": _string(),
        "dial_plan": _object(default={}),
        "do_not_disturb": _object({"enabled": _bool()}),
        "enabled": _bool(True),
        "exclude_from_queues": _bool(False),
        "hotdesk": _object({
            "users": _object(
                patternProperties={KAZOO_ID_PATTERN: {"type": "object"}},
                additionalProperties=False,
            ),
        }),
        "language": _string(),
        "mac_address": _string(pattern=MAC_ADDRESS_PATTERN),
        "media": _object(
            {
                "audio": _object(
                    {"codecs": {"type": "array", "items": _string(enum=AUDIO_CODECS),
                                "default": ["PCMU"]}},
                    default={},
                ),
                "bypass_media": {"type": ["boolean", "string"], "enum": [True, False, "true", "false", "auto"]},
                "encryption": _object(
                    {
                        "enforce_security": _bool(False),
                        "methods": {"type": "array", "items": _string(enum=["zrtp", "srtp"]),
                                    "default": []},
                    },
                    default={},
                ),
                "fax_option": _bool(),
                "ignore_early_media": _bool(),
                "progress_timeout": {"type": "integer"},
                "video": _object(
                    {"codecs": {"type": "array", "items": _string(enum=VIDEO_CODECS), "default": []}},
                    default={},
                ),
            },
            default={},
        ),
        "metaflows": _object({
            "binding_digit": _string(enum=list("1234567890*#"), default="*"),
            "digit_timeout": {"type": "integer", "minimum": 0},
            "listen_on": _string(enum=["both", "self", "peer"]),
            "numbers": _object(),
            "patterns": _object(),
        }),
        "mobile": _object({"mdn": _string()}),
        "music_on_hold": _object({"media_id": _string(0, 128)}, default={}),
        "mwi_unsolicitated_updates": _bool(True),
        "name": _string(1, 128),
        "outbound_flags": {"type": "array", "items": _string()},
        "owner_id": _string(32, 32),
        "presence_id": _string(),
        "provision": _object({
            # The Event of check-sync NOTIFYs for this phone (e.g. "resync"): an RFC 6665 token.
            "check_sync_event": _string(1, 64, pattern=SIP_HEADER_NAME_PATTERN),
            "feature_keys": _object(
                patternProperties={
                    "^[0-9]+$": _object(
                        {
                            "type": _string(enum=["presence", "parking", "personal_parking", "speed_dial"]),
                            "value": {"type": ["string", "integer"]},
                        },
                        required=["type", "value"],
                    ),
                },
            ),
        }),
        "register_overwrite_notify": _bool(False),
        "ringtones": _object(
            {"external": _string(0, 256), "internal": _string(0, 256)}, default={},
        ),
        "sip": _object(
            {
                "custom_sip_headers": _object(
                    propertyNames={"pattern": SIP_HEADER_NAME_PATTERN},
                    additionalProperties=_string(pattern=SIP_HEADER_VALUE_PATTERN),
                ),
                "expire_seconds": {"type": "integer", "minimum": 1},
                "ignore_completed_elsewhere": _bool(),
                "invite_format": _string(enum=INVITE_FORMATS, default="username"),
                "ip": _string(),
                "method": _string(enum=SIP_METHODS, default="password"),
                "number": _string(),
                "password": _string(5, 32),
                "realm": _string(4, 253, pattern=r"^[.\w_-]+$"),
                "registration_expiration": {"type": "integer", "minimum": 1, "default": 300},
                "route": _string(),
                "static_route": _string(),
                "username": _string(2, 32),
            },
            default={},
        ),
        "suppress_unregister_notifications": _bool(False),
        "timezone": _string(),
    },
)
