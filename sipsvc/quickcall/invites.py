"""The two INVITEs of a placed quickcall (RFC 3725 §4.1, flow I), pure.

- To the phone (each registered contact): no body, so the phone's 200 carries the offer; From
  is the caller id the ringing phone shows (``outbound_caller_id_*``: ``Device QuickCall`` and
  the number), To the device's address of record; Route from the binding's Path (RFC 3327).
  With ``auto_answer`` it asks the phone to answer by itself, in the two forms phones read:
  ``Call-Info: <sip:REALM>;answer-after=0`` (Snom, Yealink, Polycom, FreeSWITCH's intercom) and
  ``Alert-Info: <http://127.0.0.1>;info=alert-autoanswer;delay=0`` (Yealink, Grandstream, Cisco).
- To the number at the gateway: the phone's offer as the body; From is the caller id the far
  end sees (``outbound_callee_id_*``, else the device's address of record).

``gateway_uri`` puts the number into the configured gateway URI.
"""

from __future__ import annotations

import re

from ..sip.headers import quote
from ..sip.message import Request
from ..sip.uac import escape_user, make_request, via_value

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
ALLOW = "ACK, BYE, CANCEL, OPTIONS"  # what we answer within a quickcall's dialogs
AUTO_ANSWER_HEADERS = (
    ("Call-Info", "<sip:{realm}>;answer-after=0"),
    ("Alert-Info", "<http://127.0.0.1>;info=alert-autoanswer;delay=0"),
)


def gateway_uri(template: str, number: str) -> str:
    """The gateway URI with ``number`` as its user part: in place of ``{number}``, or added in
    front of the host (``sip:HOST`` becomes ``sip:NUMBER@HOST``)."""
    user = escape_user(number)
    if "{number}" in template:
        return template.replace("{number}", user)
    scheme, _, rest = template.partition(":")
    return f"{scheme}:{user}@{rest}"


def contact(local: tuple[str, int], transport: str) -> str:
    host, port = local
    host = f"[{host}]" if ":" in host else host
    suffix = ";transport=tcp" if transport.lower() == "tcp" else ""
    return f"<sip:{host}:{port}{suffix}>"


def phone_invite(contact_uri: str, *, address_of_record: str, realm: str, caller_name: str,
                 caller_number: str, call_id: str, from_tag: str, branch: str, transport: str,
                 local: tuple[str, int], route: tuple[str, ...] = (), auto_answer: bool) -> Request:
    """The INVITE that rings one registered contact; ``local`` is our SIP address."""
    host, port = local
    answer = tuple((name, value.format(realm=realm)) for name, value in AUTO_ANSWER_HEADERS) if auto_answer else ()
    request = make_request(
        "INVITE", contact_uri, from_uri=f"sip:{escape_user(caller_number)}@{realm}", from_tag=from_tag,
        to_uri=address_of_record, call_id=call_id, cseq=1, via=via_value(transport, host, port, branch),
        headers=(
            *(("Route", value) for value in route),
            ("Contact", contact(local, transport)),
            ("Allow", ALLOW),
            *answer,
            ("X-KAZOO-AOR", address_of_record),
        ),
    )
    return _with_display(request, caller_name)


def gateway_invite(uri: str, *, caller_name: str | None, caller_uri: str, call_id: str, from_tag: str,
                   branch: str, local: tuple[str, int], offer: bytes, content_type: str) -> Request:
    """The INVITE for the number, carrying the phone's offer."""
    host, port = local
    request = make_request(
        "INVITE", uri, from_uri=caller_uri, from_tag=from_tag, to_uri=uri, call_id=call_id, cseq=1,
        via=via_value("udp", host, port, branch),
        headers=(("Contact", contact(local, "udp")), ("Allow", ALLOW), ("Content-Type", content_type)),
    )
    request = _with_display(request, caller_name)
    return Request(method=request.method, uri=request.uri, headers=request.headers, body=offer)


def _with_display(request: Request, display: str | None) -> Request:
    """``request`` with a display name in From (``make_request`` writes none); control
    characters are dropped, so a stored caller id cannot break the header."""
    display = _CONTROL.sub("", display or "").strip()
    if not display:
        return request
    headers = tuple((name, f"{quote(display)} {value}" if name == "From" else value)
                    for name, value in request.headers)
    return Request(method=request.method, uri=request.uri, headers=headers, body=request.body)
