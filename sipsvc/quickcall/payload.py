"""The quickcall originate payload: what Kazoo's ``cb_quickcall`` sends to ring a device and,
once it answers, transfer it to the number (``application_name: transfer``).

Keys and values follow the devices API page's example response, and where it is silent the
reference behaviour (``kz_endpoint:create_sip_endpoint``, ``kz_attributes``) as far as a device
document carries the data:

- the caller side is fixed: ``Device QuickCall`` and the dialled number (what the ringing phone
  shows); the callee side (what the far end will see) is ``cid-name``/``cid-number``, else the
  device's ``caller_id.external`` when the number is routable outside the account, else
  ``caller_id.internal``; absent when neither gives one;
- ``retain_cid`` is ``"true"`` when a callee number is set, so the transferred leg keeps it;
- one endpoint: ``to_realm`` is ``sip.realm`` else the account's realm, ``to_did`` is
  ``sip.number`` else the dialled number, ``to_user`` is ``sip.static_invite`` else the SIP
  username, ``invite_format`` defaults to ``username``, ``codecs`` are the audio then the video
  codecs (left out when there are none), ``presence_id`` is the device's ``presence_id`` else its
  username, with ``@realm`` added when it has no domain; ``owner_id`` only when there is an owner.

Empty values are left out, as Kazoo's ``props:filter_empty`` does. Pure: no I/O, no clock; the
call id comes in as an argument.
"""

from __future__ import annotations

import re

from .options import QuickcallOptions

CALLER_ID_NAME = "Device QuickCall"
EXPORTED_CHANNEL_VARS = ("Account-ID", "Retain-CID", "Authorizing-ID", "Authorizing-Type")
# Kazoo's default ``reconcile_regex``: a number it would route as external (NANP, E.164, or an
# international prefix); anything else (an extension) is internal.
_RECONCILABLE = re.compile(r"^(\+?1)?\d{10}$|^\+[2-9]\d{7,}$|^011\d*$|^00\d*$")


def build_payload(device: dict, *, account_id: str, account_realm: str, route: str, number: str,
                  options: QuickcallOptions, call_id: str) -> dict:
    """The originate payload for ringing ``device`` and connecting it to ``number``.

    Args:
        device: the stored device document (with its ``id``).
        route: the number as the request gave it (``application_data.route``).
        number: the number once ``number_filter`` is applied (caller id and ``to_did``).
        call_id: a fresh random id; the endpoint's call id is ``<call_id>-quickcall``.
    """
    sip = _object(device.get("sip"))
    realm = _text(sip.get("realm")) or account_realm
    cid_type = "external" if is_reconcilable(number) else "internal"
    callee_name = options.cid_name or _caller_id(device, cid_type, "name")
    callee_number = options.cid_number or _caller_id(device, cid_type, "number")
    payload = {
        "application_data": {"route": route},
        "application_name": "transfer",
        "continue_on_fail": False,
        "custom_channel_vars": {
            "account_id": account_id,
            "authorizing_id": device["id"],
            "authorizing_type": "device",
            "inherit_codec": "false",
            "retain_cid": "true" if callee_number else "false",
        },
        "dial_endpoint_method": "simultaneous",
        "endpoints": [_endpoint(device, sip, realm, account_id, number, options, call_id)],
        "export_custom_channel_vars": list(EXPORTED_CHANNEL_VARS),
        "ignore_early_media": options.ignore_early_media,
        "media": options.media,
        "outbound_callee_id_name": callee_name,
        "outbound_callee_id_number": callee_number,
        "outbound_caller_id_name": CALLER_ID_NAME,
        "outbound_caller_id_number": number,
        "timeout": options.timeout,
    }
    return _without_empty(payload)


def is_reconcilable(number: str) -> bool:
    """Whether Kazoo would treat ``number`` as external (its default reconcile rule)."""
    return _RECONCILABLE.match(number) is not None


def presence_id(device: dict, realm: str) -> str | None:
    """The device's ``presence_id``, else its SIP username, with ``@realm`` added if missing."""
    sip = _object(device.get("sip"))
    presence = _text(device.get("presence_id")) or _text(sip.get("username"))
    if presence is None:
        return None
    return presence if "@" in presence else f"{presence}@{realm}"


def _endpoint(device: dict, sip: dict, realm: str, account_id: str, number: str,
              options: QuickcallOptions, call_id: str) -> dict:
    username = _text(sip.get("username"))
    media = _object(device.get("media"))
    channel_vars = {
        "account_id": account_id,
        "authorizing_id": device["id"],
        # Kazoo sets it only when the call rings exactly one endpoint, as a device's always does.
        "auto_answer": options.auto_answer,
        "media_encryption_enforce_security":
            _object(media.get("encryption")).get("enforce_security") is True,
        "owner_id": _text(device.get("owner_id")),
        "sip_invite_domain": realm,
    }
    if _object(device.get("call_waiting")).get("enabled") is False:
        channel_vars["call_waiting_disabled"] = True
    endpoint = {
        "codecs": _codecs(media),
        "custom_channel_vars": channel_vars,
        "custom_sip_headers": {"x_kazoo_aor": f"sip:{username}@{realm}" if username else None},
        "endpoint_id": device["id"],
        "invite_format": _text(sip.get("invite_format")) or "username",
        "outbound_call_id": f"{call_id}-quickcall",
        "presence_id": presence_id(device, realm),
        "route": _text(sip.get("route")),
        "to_did": _text(sip.get("number")) or number,
        "to_ip": _text(sip.get("ip")),
        "to_realm": realm,
        "to_user": _text(sip.get("static_invite")) or username,
        "to_username": username,
    }
    return _without_empty(endpoint)


def _codecs(media: dict) -> list[str]:
    codecs = []
    for kind in ("audio", "video"):
        listed = _object(media.get(kind)).get("codecs")
        if isinstance(listed, list):
            codecs.extend(c for c in listed if isinstance(c, str))
    return codecs


def _caller_id(device: dict, cid_type: str, field: str) -> str | None:
    return _text(_object(_object(device.get("caller_id")).get(cid_type)).get(field))


def _without_empty(value: dict) -> dict:
    """``value`` without None, "" and empty lists or objects (recursively through objects)."""
    kept = {}
    for key, item in value.items():
        if isinstance(item, dict):
            item = _without_empty(item)
        if item is None or item == "" or item == [] or item == {}:
            continue
        kept[key] = item
    return kept


def _object(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
