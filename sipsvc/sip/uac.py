"""What a UAC does with requests of its own outside a dialog (RFC 3261 §8.1), pure:

- ``make_request``: a request with the mandatory headers of §8.1.1 (Via with a fresh branch and
  RFC 3581 ``rport``, Max-Forwards, From with a tag, To, Call-ID, CSeq);
- ``authorize``: the same request again with credentials for a 401 / 407 challenge (§22.2,
  §22.3, RFC 7616): same Call-ID and tags, a new branch and a higher CSeq (§8.1.3.5);
- ``escape_user``: the user part of a URI from arbitrary text (§25.1 ``user``);
- ``make_cancel``: the CANCEL of an INVITE still ringing (§9.1).

Identifiers (tag, Call-ID, branch, cnonce) come from the caller, so the core needs no randomness.
"""

from __future__ import annotations

from . import digest
from .message import Request, Response
from .transaction.keys import MAGIC_COOKIE

# RFC 3261 §25.1: unreserved / user-unreserved characters stay as they are.
_USER_SAFE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()&=+$,;?/"
)
_CHALLENGE_HEADERS = {401: ("WWW-Authenticate", "Authorization"),
                      407: ("Proxy-Authenticate", "Proxy-Authorization")}


def escape_user(text: str) -> str:
    """``text`` as the user part of a SIP URI: other characters become %HH of their UTF-8."""
    return "".join(
        char if char in _USER_SAFE else "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogateescape"))
        for char in text
    )


def via_value(transport: str, host: str, port: int, branch: str) -> str:
    """A Via for a request we send (§18.1.1), asking for ``rport`` (RFC 3581 §3)."""
    if not branch.startswith(MAGIC_COOKIE):
        raise ValueError(f"a branch must start with {MAGIC_COOKIE!r} (§8.1.1.7)")
    sent_by = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"SIP/2.0/{transport.upper()} {sent_by}:{port};rport;branch={branch}"


def make_request(method: str, uri: str, *, from_uri: str, from_tag: str, to_uri: str, call_id: str,
                 cseq: int, via: str, headers: tuple[tuple[str, str], ...] = ()) -> Request:
    """An out-of-dialog request (§8.1.1): ``via`` from ``via_value``, ``headers`` after the
    mandatory ones. Content-Length is written when the request is serialised."""
    return Request(method=method, uri=uri, headers=(
        ("Via", via),
        ("Max-Forwards", "70"),
        ("From", f"<{from_uri}>;tag={from_tag}"),
        ("To", f"<{to_uri}>"),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {method}"),
        *headers,
    ))


def authorize(request: Request, challenge: Response, *, username: str, password: str,
              cnonce: str, branch: str) -> Request | None:
    """``request`` again, answering the first usable Digest challenge of a 401 (Authorization)
    or 407 (Proxy-Authorization) response; None when the response offers none we can answer.

    The copy keeps Call-ID, From (with its tag) and To, gets ``branch`` as its Via branch and
    the next CSeq number (§8.1.3.5, §22.2)."""
    names = _CHALLENGE_HEADERS.get(challenge.status)
    if names is None:
        return None
    asked, answer = names
    credentials = None
    for value in challenge.header_lines(asked):
        try:
            scheme, params = digest.parse_auth_params(value)
            if scheme.lower() == "digest":
                credentials = digest.authorization_header(params, request.method, request.uri,
                                                          username, password, cnonce, 1)
                break
        except (digest.DigestError, ValueError):
            continue
    if credentials is None:
        return None
    headers = []
    for name, value in request.headers:
        if name == answer:
            continue
        if name == "Via" and not any(n == "Via" for n, _ in headers):
            value = _with_branch(value, branch)
        elif name == "CSeq":
            number, _, method = value.partition(" ")
            value = f"{int(number) + 1} {method.strip()}"
        headers.append((name, value))
        if name == "CSeq":
            headers.append((answer, credentials))
    return Request(method=request.method, uri=request.uri, headers=tuple(headers), body=request.body)


def _with_branch(via: str, branch: str) -> str:
    params = [part for part in via.split(";") if not part.strip().lower().startswith("branch=")]
    return ";".join(params + [f"branch={branch}"])


def make_cancel(invite: Request) -> Request:
    """The CANCEL for ``invite`` (§9.1): its Request-URI, Call-ID, From, To and CSeq number, its
    top Via only (so the CANCEL has the INVITE's branch and reaches the same server
    transaction), and its Route headers. It is its own non-INVITE client transaction."""
    number = (invite.header("CSeq") or "").split()[0]
    headers = [("Via", invite.values("Via")[0])]
    headers += [("Route", value) for value in invite.header_lines("Route")]
    headers += [
        ("Max-Forwards", "70"),
        ("From", invite.header("From") or ""),
        ("To", invite.header("To") or ""),
        ("Call-ID", invite.header("Call-ID") or ""),
        ("CSeq", f"{number} CANCEL"),
    ]
    return Request(method="CANCEL", uri=invite.uri, headers=tuple(headers))
