"""The device document: the public view, normalisation before validation, listing rows and the
index entries a document has. Pure functions over plain dicts.

Private fields (``pvt_*`` and ``_*``) are the service's own; clients can neither see nor set them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .schema import MAC_ADDRESS_PATTERN

@dataclass(frozen=True)
class DeviceIndexes:
    """The index entries one device document has; computed by the devices service."""

    mac: str = ""
    users: frozenset[str] = frozenset()
    sip_credentials: tuple[str, str] | None = None  # (realm, username)
    sip_ip: str | None = None


SUMMARY_FIELDS = ("device_type", "enabled", "id", "mac_address", "name", "owner_id", "username")
_MAC_SEPARATORS = re.compile(r"[\s:.\-]")
_MAC_HEX = re.compile(r"^[0-9a-fA-F]{12}$")
MAC_ADDRESS = re.compile(MAC_ADDRESS_PATTERN)


def is_private(key: str) -> bool:
    return key.startswith(("pvt_", "_"))


def public_view(doc: dict) -> dict:
    return {key: value for key, value in doc.items() if not is_private(key)}


def private_fields(doc: dict) -> dict:
    return {key: value for key, value in doc.items() if is_private(key)}


def take_sync_flag(data: dict) -> bool:
    """Remove and return the ``sync`` request flag (it asks for a check-sync after saving)."""
    return data.pop("sync", False) is True


def normalise(data: dict, account_realm: str) -> dict:
    """Bring client input to its stored form (in place; returns ``data``).

    - ``mac_address``: any common spelling (colons, dashes, dots, none; any case) becomes
      ``aa:bb:cc:dd:ee:ff``; an empty one is removed; anything else is left for validation.
    - ``outbound_flags``: entries trimmed; a value that is neither a list nor an object becomes [].
    - ``sip.realm`` equal to the account's realm is removed (it is the default).
    - null ``provision`` feature and combo keys are pruned.
    """
    for key in [k for k in data if is_private(k)]:
        del data[key]
    mac = data.get("mac_address")
    if isinstance(mac, str):
        compact = _MAC_SEPARATORS.sub("", mac)
        if not compact:
            del data["mac_address"]
        elif _MAC_HEX.match(compact):
            compact = compact.lower()
            data["mac_address"] = ":".join(compact[i:i + 2] for i in range(0, 12, 2))
    flags = data.get("outbound_flags")
    if isinstance(flags, list):
        data["outbound_flags"] = [f.strip() if isinstance(f, str) else f for f in flags]
    elif "outbound_flags" in data and not isinstance(flags, dict):
        data["outbound_flags"] = []
    sip = data.get("sip")
    if isinstance(sip, dict):
        realm = sip.get("realm")
        if isinstance(realm, str) and realm.lower() == account_realm.lower():
            del sip["realm"]
    provision = data.get("provision")
    if isinstance(provision, dict):
        for group in ("feature_keys", "combo_keys"):
            keys = provision.get(group)
            if isinstance(keys, dict):
                provision[group] = {k: v for k, v in keys.items() if v is not None}
    return data


def summary(doc: dict) -> dict:
    """The listing row of a device, as Kazoo's ``devices/crossbar_listing`` view emits it."""
    row = {
        "device_type": doc.get("device_type", "sip_device"),
        "enabled": doc.get("enabled", True),
        "id": doc["id"],
        "mac_address": doc.get("mac_address", ""),
        "name": doc.get("name"),
    }
    if doc.get("owner_id") is not None:
        row["owner_id"] = doc["owner_id"]
    sip = doc.get("sip") or {}
    if sip.get("username") is not None:
        row["username"] = sip["username"]
    return row


def user_row(row: dict, user_id: str) -> dict:
    """A listing row as seen from one user: owned (``hotdesked`` false) or hotdesked to them."""
    user_view = {key: value for key, value in row.items() if key != "username"}
    user_view["hotdesked"] = row.get("owner_id") != user_id
    return user_view


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def indexes(doc: dict, account_realm: str) -> DeviceIndexes:
    """The index entries of a document; values of the wrong type are left out (such a document
    fails validation anyway, and its other conflicts are still reported)."""
    sip = doc.get("sip") if isinstance(doc.get("sip"), dict) else {}
    users = {doc["owner_id"]} if _text(doc.get("owner_id")) else set()
    hotdesk = doc.get("hotdesk")
    if isinstance(hotdesk, dict) and isinstance(hotdesk.get("users"), dict):
        users.update(hotdesk["users"])
    method = sip.get("method", "password")
    credentials = None
    if method == "password" and _text(sip.get("username")):
        credentials = (_text(sip.get("realm")) or account_realm, sip["username"])
    ip = _text(sip.get("ip")) if method == "ip" else None
    mac = doc.get("mac_address")
    return DeviceIndexes(
        mac=mac if isinstance(mac, str) and MAC_ADDRESS.match(mac) else "",
        users=frozenset(users), sip_credentials=credentials, sip_ip=ip,
    )


def sip_auth(doc: dict, account_id: str) -> dict:
    """What the registrar needs to authenticate the device (stored beside the document)."""
    sip = doc.get("sip") if isinstance(doc.get("sip"), dict) else {}
    return {
        "account_id": account_id, "device_id": doc["id"], "enabled": doc.get("enabled") is not False,
        "method": sip.get("method", "password"), "username": sip.get("username"),
        "password": sip.get("password"), "realm": sip.get("realm"), "ip": sip.get("ip"),
    }


def registrations_invalidated(old: dict, new: dict) -> bool:
    """Whether a change must drop the device's registrations at once: it was disabled, or what
    it authenticates with changed (Kazoo left such phones registered)."""
    if new.get("enabled") is False and old.get("enabled") is not False:
        return True
    old_sip = old.get("sip") if isinstance(old.get("sip"), dict) else {}
    new_sip = new.get("sip") if isinstance(new.get("sip"), dict) else {}
    return any(old_sip.get(k) != new_sip.get(k) for k in ("username", "password", "realm", "method", "ip"))


def credentials_changed(old: dict, new: dict) -> bool:
    """Whether the SIP username, password or realm changed: a phone still registered with the
    old ones is told to re-read its configuration (check-sync) before its binding goes."""
    old_sip = old.get("sip") if isinstance(old.get("sip"), dict) else {}
    new_sip = new.get("sip") if isinstance(new.get("sip"), dict) else {}
    return any(old_sip.get(k) != new_sip.get(k) for k in ("username", "password", "realm"))


def deep_merge(base: dict, patch: dict) -> dict:
    """``patch`` merged into a copy of ``base`` (JSON merge patch, RFC 7396): objects merge key
    by key, ``null`` removes a key, anything else replaces."""
    merged = dict(base)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict):
            current = merged.get(key)
            merged[key] = deep_merge(current if isinstance(current, dict) else {}, value)
        else:
            merged[key] = value
    return merged
