"""``/v2/accounts`` and ``/v2/api_auth``."""

from __future__ import annotations

from aiohttp import web

from .. import envelope
from ..keys import ACCOUNTS
from ..requests import authorized_account, principal, request_data


async def create_account(request: web.Request) -> web.Response:
    accounts = request.app[ACCOUNTS]
    accounts.require_admin(await principal(request))
    account = await accounts.create(await request_data(request))
    return envelope.success(request, account.public(with_api_key=True), status=201)


async def get_account(request: web.Request) -> web.Response:
    _, caller = await authorized_account(request)
    account = await request.app[ACCOUNTS].get(request.match_info["account_id"])
    return envelope.success(request, account.public(with_api_key=caller.is_admin))


async def api_auth(request: web.Request) -> web.Response:
    accounts = request.app[ACCOUNTS]
    data = await request_data(request)
    token, account = await accounts.issue_token(data.get("api_key"))
    request[envelope.AUTH_TOKEN] = token
    return envelope.success(
        request,
        {"account_id": account.id, "account_name": account.name, "realm": account.realm,
         "expires_in": accounts.token_ttl},
        status=201,
    )
