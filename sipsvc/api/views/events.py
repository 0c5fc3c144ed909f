"""``GET /v2/accounts/{account_id}/registrations/events``: registration events as Server-Sent
Events (the WHATWG HTML "server-sent events" format: ``event:`` and ``data:`` lines).

The stream starts with a ``snapshot`` event (the devices registered now, with the expiry of
each one's latest binding), then one event per change: ``register``, ``refresh``,
``unregister``, ``expired`` (see ``sipsvc.events.hub``), and a ``snapshot`` again after the
service lost and regained its Redis subscription. A comment line every ``KEEPALIVE`` seconds
keeps proxies from closing an idle stream and notices clients that went away.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from ...events.hub import StreamClosedError, snapshot_rows
from .. import envelope
from ..keys import EVENTS
from ..requests import authorized_account

KEEPALIVE = 15.0


def sse(event: str, data: dict) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data, option=orjson.OPT_SORT_KEYS) + b"\n\n"


async def registration_events(request: web.Request) -> web.StreamResponse:
    account, _ = await authorized_account(request)
    async with request.app[EVENTS].watch(account.id) as watch:
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no", "X-Request-ID": request[envelope.REQUEST_ID],
        })
        await response.prepare(request)
        try:
            await response.write(sse("snapshot", {
                "event": "snapshot", "at": watch.at, "registered": snapshot_rows(watch.snapshot)}))
            while True:
                event = await watch.next(KEEPALIVE)
                await response.write(b": keepalive\n\n" if event is None else sse(event["event"], event))
        except (StreamClosedError, ConnectionResetError):
            pass  # the service is stopping, or the client went away
        return response
