"""Matching messages to transactions: RFC 3261 §17.2.3 (server) and §17.1.3 (client).

A request whose top Via branch starts with the magic cookie ``z9hG4bK`` (§8.1.1.7) is
identified by that branch and the top Via's sent-by. Any other request comes from an RFC 2543
peer (RFC 4475 §3.4.1) — and so does one whose branch is the bare cookie, which carries no
identifier (RFC 4475 §3.2.1) — and is identified, as §17.2.3 says for those, by its Request-URI,
To tag, From tag, Call-ID, CSeq number and top Via.

An identity leaves out the method, so the layer can find the transaction a CANCEL names
(§9.2: matched "assuming the request method is anything but CANCEL or ACK"). Server keys pair
it with the method, ACK counting as INVITE. For an RFC 2543 ACK the To tag is that of the
response the transaction sent, so the layer indexes those identities separately (``with_to_tag``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import SipParseError
from .. import headers
from ..headers import Via, parse_name_addr
from ..message import Request, Response
from .errors import TransactionError

MAGIC_COOKIE = "z9hG4bK"
# Parameters the receiving server adds to the top Via (§18.2.1, RFC 3581 §4): not part of what
# the peer sent, and rport may differ between retransmissions through a NAT.
_SERVER_VIA_PARAMS = frozenset({"received", "rport"})


@dataclass(frozen=True)
class BranchIdentity:
    """§17.2.3 for RFC 3261 peers: the branch and sent-by of the top Via."""

    branch: str
    host: str
    port: int | None

    # Written out for speed (see "Written-out __init__" at the top of sip/message.py).
    def __init__(self, branch: str, host: str, port: int | None) -> None:
        fields = self.__dict__
        fields["branch"] = branch
        fields["host"] = host
        fields["port"] = port


@dataclass(frozen=True)
class Rfc2543Identity:
    """§17.2.3 for RFC 2543 peers: the fields a retransmission repeats."""

    uri: str
    to_tag: str | None
    from_tag: str | None
    call_id: str
    cseq: int
    via: tuple


Identity = BranchIdentity | Rfc2543Identity
ServerKey = tuple[Identity, str]


def is_rfc3261_branch(branch: str | None) -> bool:
    """True for a branch made as RFC 3261 asks: the cookie followed by an identifier."""
    return branch is not None and branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE)


def top_via(message: Request | Response) -> Via:
    """The first Via value; raises ``TransactionError`` when there is none or it does not parse."""
    try:
        return headers.top_via(message)
    except SipParseError as exc:
        raise TransactionError("no usable top Via") from exc


def _tag(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return parse_name_addr(value).tag
    except SipParseError:
        return None


def _via_fields(via: Via) -> tuple:
    params = tuple(sorted((name.lower(), value) for name, value in via.params
                          if name.lower() not in _SERVER_VIA_PARAMS))
    return via.transport, via.host.lower(), via.port, params


def identity(request: Request) -> Identity:
    """The transaction identity of a request, per §17.2.3. Raises ``TransactionError`` when the
    top Via or the CSeq cannot be read (``parser.check_request`` rejects those first)."""
    via = top_via(request)
    branch = via.branch
    if is_rfc3261_branch(branch):
        return BranchIdentity(branch, via.host.lower(), via.port)
    try:
        cseq = headers.cseq_of(request)
    except SipParseError as exc:
        raise TransactionError("no usable CSeq") from exc
    return Rfc2543Identity(
        uri=request.uri.strip(), to_tag=_tag(request.header("To")), from_tag=_tag(request.header("From")),
        call_id=(request.header("Call-ID") or "").strip(), cseq=cseq.number, via=_via_fields(via))


def server_key(request: Request) -> ServerKey:
    """§17.2.3: identity and method, an ACK matching the INVITE it acknowledges."""
    method = "INVITE" if request.method == "ACK" else request.method
    return identity(request), method


def with_to_tag(ident: Identity, to_tag: str) -> Identity:
    """The identity an RFC 2543 ACK has once the response it acknowledges carried ``to_tag``."""
    if isinstance(ident, Rfc2543Identity):
        return dataclasses.replace(ident, to_tag=to_tag)
    return ident


def response_tag(response: Response) -> str | None:
    return _tag(response.header("To"))


def client_key(request: Request) -> tuple[str, str]:
    """§17.1.3: the branch of the top Via the caller put on the request, and its method.
    Raises ``TransactionError`` unless that branch is an RFC 3261 one."""
    branch = top_via(request).branch
    if not is_rfc3261_branch(branch):
        raise TransactionError("a client transaction needs a top Via branch starting z9hG4bK")
    return branch, request.method


def response_key(response: Response) -> tuple[str, str] | None:
    """§17.1.3: the top Via branch and the CSeq method of a response, or None if unreadable."""
    try:
        branch = top_via(response).branch
        method = headers.cseq_of(response).method
    except (TransactionError, SipParseError):
        return None
    return (branch, method) if branch else None
