"""The transaction layer's error (RFC 3261 §17): one family with the rest of the SIP core."""

from __future__ import annotations

from ..errors import SipError


class TransactionError(SipError):
    """The transaction user misused the layer: it answered a transaction that does not exist (or
    has terminated), passed something that is not a response, or started a client transaction
    from a request that cannot have one (an ACK, no RFC 3261 branch, a branch already in use)."""
