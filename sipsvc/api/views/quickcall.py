"""``GET /v2/accounts/{account_id}/devices/{device_id}/quickcall/{number}``: the originate
payload that rings the device and connects it to the number.

A request with a token is authenticated as everywhere else (401, 403); one without is allowed
when the device or the configuration opens quickcalls to anonymous callers (decided by the
service, which has the device).
"""

from __future__ import annotations

from aiohttp import web

from .. import envelope
from ..keys import ACCOUNTS, QUICKCALL
from ..requests import auth_token, authorized_account, path_id


async def quickcall(request: web.Request) -> web.Response:
    if auth_token(request) is not None:
        account, _ = await authorized_account(request)
    else:
        account = await request.app[ACCOUNTS].get(request.match_info["account_id"])
    payload = await request.app[QUICKCALL].payload(
        account_id=account.id, account_realm=account.realm,
        device_id=path_id(request, "device_id", "device"), number=request.match_info["number"],
        query=request.query.items(), authenticated=auth_token(request) is not None,
    )
    return envelope.success(request, payload)
