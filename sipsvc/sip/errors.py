"""The SIP core's one error family."""

from __future__ import annotations


class SipError(Exception):
    """Base of every error raised by ``sipsvc.sip``."""


class SipParseError(SipError):
    """A message (or one of its headers) breaks the RFC 3261 §25 grammar or framing rules.

    ``status`` is the response a server should send if it can (400; 505 for a version it does not
    speak; 413 for a message over the size limit) and ``reason`` the text for its reason phrase.
    ``headers`` holds the headers parsed before the error, if any, so that a server can still
    answer a request whose Via is usable; ``is_request`` says what the message was.
    """

    def __init__(self, reason: str, status: int = 400, *,
                 headers: tuple[tuple[str, str], ...] | None = None, is_request: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.headers = headers
        self.is_request = is_request

    def with_headers(self, headers: tuple[tuple[str, str], ...], is_request: bool) -> "SipParseError":
        return type(self)(self.reason, self.status, headers=headers, is_request=is_request)


class FramingError(SipParseError):
    """The message's extent cannot be known (bad or conflicting Content-Length, too large): on a
    stream the connection cannot be resynchronised and must be closed."""
