"""A small synchronous client of the sipsvc HTTP API (urllib: no dependency, no event loop).

Every failure becomes one of two errors with a message meant for an operator: ``ApiError``
(the API answered with an error; Kazoo's message and details are kept) and
``UnreachableError`` (no answer at all: refused, unknown host, timeout, not the sipsvc API).
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Iterator

TIMEOUT = 30.0
STREAM_TIMEOUT = 60.0  # the server sends a keepalive every 15 s; silence past this is a dead link


class ApiError(Exception):
    """The API answered with an error envelope (or something that is not one)."""

    def __init__(self, status: int, message: str, data: object = None) -> None:
        super().__init__(f"HTTP {status} {message}")
        self.status = status
        self.message = message
        self.data = data


class UnreachableError(Exception):
    """No answer from the API; the message says why and what to check."""


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "unknown host"
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "timed out"
    return str(reason)


class ApiClient:
    def __init__(self, base: str, token: str | None = None, timeout: float = TIMEOUT) -> None:
        self.base = base.rstrip("/")
        self.token = token
        self.timeout = timeout

    def url(self, path: str, query: dict | None = None) -> str:
        params = {k: v for k, v in (query or {}).items() if v is not None}
        return self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")

    def _open(self, method: str, path: str, query: dict | None, data: dict | None, timeout: float,
              accept: str = "application/json"):
        body = json.dumps({"data": data}).encode() if data is not None else None
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["X-Auth-Token"] = self.token
        request = urllib.request.Request(self.url(path, query), data=body, method=method, headers=headers)
        try:
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as error:
            raise self._api_error(error.code, error.read(), error.headers.get("Content-Type", "")) from None
        except (urllib.error.URLError, OSError) as exc:
            raise UnreachableError(
                f"cannot reach the API at {self.base} ({_reason(exc)}): is `sipsvc serve` running "
                "there? Point --api (or SIPSVC_API) at its HTTP address"
            ) from None

    def _api_error(self, status: int, raw: bytes, content_type: str) -> ApiError:
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or "message" not in answer:
            kind = content_type.split(";")[0] or "no content type"
            return ApiError(status, f"from {self.base}, which does not look like the sipsvc API ({kind})")
        return ApiError(status, str(answer["message"]), answer.get("data"))

    def request(self, method: str, path: str, *, query: dict | None = None,
                data: dict | None = None) -> dict:
        """The whole answer (Kazoo's envelope) of a successful request."""
        with self._open(method, path, query, data, self.timeout) as response:
            raw = response.read()
            try:
                answer = json.loads(raw)
            except ValueError:
                answer = None
            if not isinstance(answer, dict) or "data" not in answer:
                raise ApiError(response.status, f"from {self.base}, which does not look like the sipsvc API")
            return answer

    def data(self, method: str, path: str, **kwargs) -> object:
        return self.request(method, path, **kwargs)["data"]

    def events(self, path: str) -> Iterator[tuple[str, dict]]:
        """Server-Sent Events of a stream, as (event name, data), until the stream ends."""
        with self._open("GET", path, None, None, STREAM_TIMEOUT, accept="text/event-stream") as response:
            name, data = "message", []
            try:
                for raw in response:
                    line = raw.decode("utf-8").rstrip("\r\n")
                    if not line:
                        if data:
                            yield name, json.loads("\n".join(data))
                        name, data = "message", []
                    elif line.startswith(":"):
                        continue
                    else:
                        field, _, value = line.partition(":")
                        if field == "event":
                            name = value.strip()
                        elif field == "data":
                            data.append(value.removeprefix(" "))
            except (OSError, ValueError) as exc:
                raise UnreachableError(f"the event stream from {self.base} broke off ({_reason(exc)})") from None
