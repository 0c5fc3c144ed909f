"""Logging: the text or JSON format (``log_format``), the request id of the API request a record
belongs to, the SIP Call-ID a record is about, and the redaction the SIP trace needs.

The request id travels in a context variable, set once per API request where the id is chosen
(``api/envelope.py``); tasks started while serving the request (a check-sync NOTIFY) inherit it.
Records about a SIP message carry ``extra={"call_id": ...}``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
TRACE_LOGGER = "sipsvc.sip.trace"
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization"})
# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_LINES = re.compile(r"\r?\n")
_KEPT_PARAMS = re.compile(r'\b(username|realm|algorithm)\s*=\s*("[^"]*"|[^\s,]+)', re.IGNORECASE)
_CALL_ID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


def _context(record: logging.LogRecord) -> dict:
    fields = {key: value for key, value in vars(record).items() if key not in _STANDARD}
    request_id = REQUEST_ID.get()
    if request_id is not None:
        fields.setdefault("request_id", request_id)
    return fields


class TextFormatter(logging.Formatter):
    """``time LEVEL logger[pid]: message``, then ``key=value`` for the request id, Call-ID and
    other context of the record."""

    def __init__(self) -> None:
        super().__init__(f"%(asctime)s %(levelname)s %(name)s[{os.getpid()}]: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = _context(record)
        if not context:
            return text
        first, newline, rest = text.partition("\n")  # a multi-line message keeps its shape
        pairs = " ".join(f"{key}={value}" for key, value in context.items() if not isinstance(value, dict))
        return f"{first} [{pairs}]{newline}{rest}" if pairs else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``pid``,
    ``message``, ``request_id`` and ``call_id`` when known, any other ``extra`` fields, and
    ``exception`` with the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        entry.update(_context(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure(level: str, log_format: str, *, sip_trace: bool = False) -> None:
    """Send every record to stderr in ``log_format`` at ``level``; with ``sip_trace`` the SIP
    trace is shown whatever the level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    if sip_trace:
        logging.getLogger(TRACE_LOGGER).setLevel(logging.INFO)


def redact(message: bytes) -> str:
    """A SIP message as text for the log, with the values of Authorization and
    Proxy-Authorization replaced (scheme, username, realm and algorithm stay, to tell who it
    was; the response hash, nonce and cnonce go). Folded header lines are handled."""
    text = message.decode("utf-8", errors="replace")
    head, separator, body = text.partition("\r\n\r\n")
    if not separator:
        head, separator, body = text.partition("\n\n")
    lines = _LINES.split(head)
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        name, colon, value = line.partition(":")
        if not colon or name.strip().lower() not in SECRET_HEADERS:
            out.append(line)
            continue
        while index < len(lines) and lines[index][:1] in (" ", "\t"):  # folded continuation
            value += " " + lines[index].strip()
            index += 1
        scheme = value.strip().split(" ", 1)[0]
        kept = ", ".join(f"{key}={val}" for key, val in _KEPT_PARAMS.findall(value))
        out.append(f"{name.strip()}: {scheme} {kept + ', ' if kept else ''}<redacted>")
    return "\n".join(out) + ("\n\n" + body if separator and body else "")


def call_id_of(message: bytes) -> str | None:
    match = _CALL_ID.search(message)
    return match.group(1).decode("utf-8", errors="replace") if match else None
