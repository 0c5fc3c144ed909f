"""Dialogs of a UAC (RFC 3261 §12), pure: the state a 2xx to our INVITE creates, and the
requests sent within it.

- ``uac_dialog``: the dialog state of §12.1.2 (Call-ID, local and remote tags, local CSeq,
  remote target from the 2xx's Contact, route set from its Record-Route, reversed);
- ``ack_for_2xx``: the ACK for a 2xx (§13.2.2.4): the INVITE's CSeq number, built like any
  request of the dialog, and sent outside any transaction (the 2xx retransmissions it answers
  reach the TU, RFC 6026 §8.4);
- ``next_request``: a new request within the dialog (§12.2.1.1), e.g. BYE (§15.1.1), with the
  next local CSeq and the Request-URI / Route headers the route set asks for (loose or strict);
- ``request_dialog_id`` and ``accept_remote_seq``: which dialog an incoming request belongs to
  (§12.2.2), and whether its CSeq is in order.

Branches come from the caller (the core needs no randomness).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import SipParseError
from .headers import cseq_of, name_addr_of, parse_name_addr
from .message import Request, Response
from .uri import SipUri

DialogId = tuple[str, str, str]  # (Call-ID, local tag, remote tag)


@dataclass(frozen=True)
class Dialog:
    """A dialog as its UAC sees it (§12.1.2)."""

    call_id: str
    local_tag: str
    remote_tag: str
    local: str  # our From header value, with our tag
    remote: str  # the To header value of the 2xx, with the remote tag
    local_seq: int
    remote_target: str  # the URI of the 2xx's Contact
    route_set: tuple[str, ...] = ()
    remote_seq: int | None = None  # unknown until the peer sends a request (§12.1.2)

    @property
    def id(self) -> DialogId:
        return (self.call_id, self.local_tag, self.remote_tag)


def uac_dialog(invite: Request, response: Response) -> Dialog:
    """The dialog a 2xx (or a 101-199 with a To tag) to ``invite`` establishes.

    Raises:
        SipParseError: the response has no To tag or no usable Contact, or the INVITE has no
            From tag or Call-ID.
    """
    local = name_addr_of(invite, "From")
    remote = name_addr_of(response, "To")
    if not local.tag:
        raise SipParseError("the INVITE has no From tag")
    if not remote.tag:
        raise SipParseError("the response has no To tag (§12.1.2)")
    contacts = response.values("Contact")
    if not contacts:
        raise SipParseError("the response has no Contact (§12.1.2)")
    target = parse_name_addr(contacts[0]).uri
    call_id = invite.header("Call-ID")
    if not call_id:
        raise SipParseError("the INVITE has no Call-ID")
    return Dialog(
        call_id=call_id, local_tag=local.tag, remote_tag=remote.tag,
        local=invite.header("From") or "", remote=response.header("To") or "",
        local_seq=cseq_of(invite).number, remote_target=str(target),
        route_set=tuple(reversed(response.values("Record-Route"))),
    )


def _target(dialog: Dialog) -> tuple[str, tuple[str, ...]]:
    """The Request-URI and Route values of a request in ``dialog`` (§12.2.1.1)."""
    if not dialog.route_set:
        return dialog.remote_target, ()
    first = parse_name_addr(dialog.route_set[0])
    if isinstance(first.uri, SipUri) and first.uri.param("lr") is not None:
        return dialog.remote_target, dialog.route_set
    # A strict router: it becomes the Request-URI and the remote target goes last.
    return str(first.uri), (*dialog.route_set[1:], f"<{dialog.remote_target}>")


def _request(dialog: Dialog, method: str, cseq: int, via: str, headers: tuple[tuple[str, str], ...],
             body: bytes) -> Request:
    uri, routes = _target(dialog)
    return Request(method=method, uri=uri, body=body, headers=(
        ("Via", via),
        *(("Route", route) for route in routes),
        ("Max-Forwards", "70"),
        ("From", dialog.local),
        ("To", dialog.remote),
        ("Call-ID", dialog.call_id),
        ("CSeq", f"{cseq} {method}"),
        *headers,
    ))


def ack_for_2xx(dialog: Dialog, invite: Request, *, via: str, body: bytes = b"",
                content_type: str | None = None) -> Request:
    """The ACK for a 2xx to ``invite`` (§13.2.2.4): CSeq number of the INVITE, a new branch
    (``via``), and ``body`` (the answer, when the 2xx carried the offer)."""
    headers = (("Content-Type", content_type),) if body and content_type else ()
    return _request(dialog, "ACK", cseq_of(invite).number, via, headers, body)


def next_request(dialog: Dialog, method: str, *, via: str, headers: tuple[tuple[str, str], ...] = (),
                 body: bytes = b"") -> tuple[Dialog, Request]:
    """A new request within ``dialog`` (not ACK, not CANCEL), and the dialog with its local
    CSeq advanced (§12.2.1.1)."""
    if method in ("ACK", "CANCEL"):
        raise ValueError(f"{method} takes the CSeq of the request it belongs to")
    seq = dialog.local_seq + 1
    return replace(dialog, local_seq=seq), _request(dialog, method, seq, via, headers, body)


def request_dialog_id(request: Request) -> DialogId | None:
    """The id of the dialog ``request`` belongs to, from the receiver's side: (Call-ID, To tag,
    From tag); None for a request outside any dialog (no To tag) or without the headers."""
    try:
        local = name_addr_of(request, "To").tag
        remote = name_addr_of(request, "From").tag
    except SipParseError:
        return None
    call_id = request.header("Call-ID")
    if not local or not call_id:
        return None
    return (call_id, local, remote or "")


def accept_remote_seq(dialog: Dialog, request: Request) -> Dialog | None:
    """§12.2.2: ``dialog`` with the remote CSeq of ``request`` recorded; None when the request
    is out of order (a CSeq lower than the last one: the UAS answers 500)."""
    seq = cseq_of(request).number
    if dialog.remote_seq is not None and seq < dialog.remote_seq:
        return None
    return replace(dialog, remote_seq=seq)
