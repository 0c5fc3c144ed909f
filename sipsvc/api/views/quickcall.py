"""Quickcall routes.

- ``GET /v2/accounts/{account_id}/devices/{device_id}/quickcall/{number}``: the originate
  payload that rings the device and connects it to the number;
- ``POST`` to the same path (or ``GET`` with ``?originate=true``): beyond Kazoo, place the call
  over SIP; ``?wait=true`` answers once its outcome is known;
- ``GET`` / ``DELETE /v2/accounts/{account_id}/quickcalls/{call_id}``: a placed call's record;
  ``DELETE`` hangs it up.

A request with a token is authenticated as everywhere else (401, 403); one without is allowed
when the device or the configuration opens quickcalls to anonymous callers (decided by the
service, which has the device).
"""

from __future__ import annotations

import re

from aiohttp import web

from .. import envelope
from ..keys import ACCOUNTS, QUICKCALL
from ..requests import auth_token, authorized_account, path_id, query_bool
from ...errors import NotFoundError

_CALL_ID = re.compile(r"^[0-9a-f]{36}$")


async def _account(request: web.Request):
    if auth_token(request) is not None:
        account, _ = await authorized_account(request)
        return account
    return await request.app[ACCOUNTS].get(request.match_info["account_id"])


async def quickcall(request: web.Request) -> web.Response:
    originate = request.method == "POST" or query_bool(request, "originate", False)
    wait = query_bool(request, "wait", False)
    account = await _account(request)
    arguments = dict(
        account_id=account.id, account_realm=account.realm,
        device_id=path_id(request, "device_id", "device"), number=request.match_info["number"],
        query=request.query.items(), authenticated=auth_token(request) is not None,
    )
    if originate:
        return envelope.success(request, await request.app[QUICKCALL].place(**arguments, wait=wait))
    return envelope.success(request, await request.app[QUICKCALL].payload(**arguments))


async def call(request: web.Request) -> web.Response:
    account = await _account(request)
    call_id = request.match_info["call_id"]
    if not _CALL_ID.match(call_id):
        raise NotFoundError("quickcall", call_id)
    record = await request.app[QUICKCALL].call(
        account_id=account.id, call_id=call_id, authenticated=auth_token(request) is not None,
        hang_up=request.method == "DELETE",
    )
    return envelope.success(request, record)
