"""Messages the transaction layer writes itself: the ACK for a non-2xx final response
(RFC 3261 §17.1.1.3), and the To tag of its answer to a CANCEL (the answer itself is
``uas.make_response``, §8.2.6.2)."""

from __future__ import annotations

import hashlib

from ..headers import parse_cseq
from ..message import Request, Response

def build_ack(invite: Request, response: Response) -> Request:
    """The ACK for a 300-699 response to ``invite`` (§17.1.1.3): the INVITE's Request-URI,
    Call-ID and From, the To of the response (with its tag), the CSeq number with method ACK,
    only the INVITE's top Via (so the ACK carries its branch), and the INVITE's Route headers."""
    number = parse_cseq(invite.header("CSeq") or "").number
    headers = [("Via", invite.values("Via")[0])]
    headers += [("Route", value) for value in invite.header_lines("Route")]
    headers += [
        ("Max-Forwards", "70"),  # §8.1.1.6
        ("From", invite.header("From") or ""),
        ("To", response.header("To") or invite.header("To") or ""),
        ("Call-ID", invite.header("Call-ID") or ""),
        ("CSeq", f"{number} ACK"),
        ("Content-Length", "0"),
    ]
    return Request(method="ACK", uri=invite.uri, headers=tuple(headers))


def derived_tag(request: Request) -> str:
    """A To tag for the layer's own answer to ``request`` when no tag factory was given: derived
    from the request, so the core stays free of randomness and a retransmission gets the same
    tag. The transaction user's tags come from its own injected factory (§19.3)."""
    seed = "\n".join(request.header(name) or "" for name in ("Via", "From", "Call-ID", "CSeq"))
    return hashlib.sha256(seed.encode("utf-8", "surrogateescape")).hexdigest()[:16]
