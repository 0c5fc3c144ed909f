"""``/v2/accounts/{A}/security/bans`` and ``/v2/security/bans``: bans from password guessing
(see ``registrar/guard.py``), listed and lifted; ``/v2/accounts/{A}/security/failures``: the
account's most guessed usernames."""

from __future__ import annotations

import time

from aiohttp import web

from ...registrar.guard import ban_view
from .. import envelope
from ..keys import ACCOUNTS, SECURITY
from ..requests import authorized_account, principal


async def account_bans(request: web.Request) -> web.Response:
    account, _ = await authorized_account(request)
    bans = await request.app[SECURITY].bans(account.id)
    now = time.time()
    return envelope.success(request, [ban_view(ban, now) for ban in bans])


async def account_failures(request: web.Request) -> web.Response:
    account, _ = await authorized_account(request)
    return envelope.success(request, await request.app[SECURITY].username_failures(account.id))


async def lift_account_ban(request: web.Request) -> web.Response:
    account, caller = await authorized_account(request)
    # The admin may lift any ban listed for the account; the account's own token only bans of
    # its usernames.
    ban = await request.app[SECURITY].lift(request.match_info["ban_id"],
                                           None if caller.is_admin else account.id)
    return envelope.success(request, ban_view(ban, time.time()))


async def all_bans(request: web.Request) -> web.Response:
    request.app[ACCOUNTS].require_admin(await principal(request))
    bans = await request.app[SECURITY].bans()
    now = time.time()
    return envelope.success(request, [ban_view(ban, now) for ban in bans])


async def lift_ban(request: web.Request) -> web.Response:
    request.app[ACCOUNTS].require_admin(await principal(request))
    ban = await request.app[SECURITY].lift(request.match_info["ban_id"])
    return envelope.success(request, ban_view(ban, time.time()))
