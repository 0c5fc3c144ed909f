"""Reading a Server-Sent Events stream in the tests (the WHATWG format: ``event:`` and
``data:`` lines, a blank line ends an event, lines starting with ``:`` are comments)."""

from __future__ import annotations

import asyncio
import json


class SseReader:
    def __init__(self, response) -> None:
        self.response = response  # an aiohttp ClientResponse being streamed

    async def next(self, timeout: float = 5.0) -> tuple[str, dict]:
        """The next event as (name, data); comments are skipped."""
        name, data = "message", []
        while True:
            line = await asyncio.wait_for(self.response.content.readline(), timeout)
            if not line:
                raise EOFError("the stream ended")
            line = line.decode().rstrip("\n")
            if line == "":
                if data:
                    return name, json.loads("\n".join(data))
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)

    async def until(self, wanted: str, timeout: float = 5.0) -> dict:
        """Skip events until one named ``wanted``; returns its data."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            name, data = await self.next(max(remaining, 0.01))
            if name == wanted:
                return data
