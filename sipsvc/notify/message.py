"""The check-sync NOTIFY, pure: which Event it carries and the request itself.

An out-of-dialog NOTIFY (RFC 6665 §4.1.3 style, as Kazoo's FreeSWITCH sends it) to a registered
contact: Request-URI = the contact, From/To = the device's address of record, ``Event:
check-sync`` (or the device's own event name), ``Subscription-State: terminated``, no body,
``X-KAZOO-AOR`` for phones provisioned against Kazoo, and Route headers from the binding's Path
(RFC 3327 §5.3).
"""

from __future__ import annotations

import re

from ..sip.message import Request
from ..sip.uac import escape_user, make_request, via_value

CHECK_SYNC = "check-sync"
# RFC 6665 §8.4 event-type: a token (with no '.'-templates needed here).
_EVENT_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]{1,64}$")


def is_event_name(value: object) -> bool:
    return isinstance(value, str) and bool(_EVENT_TOKEN.match(value))


def event_value(device_event: object, reboot: bool | None) -> str:
    """``check-sync``, or the device's ``provision.check_sync_event`` when it is a usable token;
    ``reboot`` True/False appends ``;reboot=true``/``;reboot=false`` (Yealink, Snom, Gigaset)."""
    event = device_event if is_event_name(device_event) else CHECK_SYNC
    if reboot is None:
        return event
    return f"{event};reboot={'true' if reboot else 'false'}"


def aor(username: str, realm: str) -> str:
    """``sip:username@realm``, the user part escaped (usernames are free text)."""
    return f"sip:{escape_user(username)}@{realm}"


def check_sync(contact: str, *, address_of_record: str, event: str, call_id: str, from_tag: str,
               branch: str, transport: str, local: tuple[str, int],
               route: tuple[str, ...] = ()) -> Request:
    """The NOTIFY for one binding; ``local`` is our SIP address (sent-by and Contact)."""
    host, port = local
    contact_host = f"[{host}]" if ":" in host else host
    suffix = ";transport=tcp" if transport.lower() == "tcp" else ""
    return make_request(
        "NOTIFY", contact, from_uri=address_of_record, from_tag=from_tag,
        to_uri=address_of_record, call_id=call_id, cseq=1,
        via=via_value(transport, host, port, branch),
        headers=(
            *(("Route", value) for value in route),
            ("Contact", f"<sip:{contact_host}:{port}{suffix}>"),
            ("Event", event),
            ("Subscription-State", "terminated"),
            ("X-KAZOO-AOR", address_of_record),
        ),
    )
