"""``/v2/accounts/{account_id}/devices`` and a user's devices."""

from __future__ import annotations

import re

from aiohttp import web

from ...devices.document import SUMMARY_FIELDS
from ...errors import NotFoundError
from .. import envelope
from ..errors import BadRequestError
from ..keys import CONFIG, DEVICES, REGISTRAR
from ..requests import authorized_account, if_match, query_bool, query_int, request_data

_ID = re.compile(r"^[0-9a-zA-Z]{32}$")


def _path_id(request: web.Request, name: str, kind: str) -> str:
    """An id from the path; one that cannot exist is a 404 without touching the store."""
    value = request.match_info[name]
    if not _ID.match(value):
        raise NotFoundError(kind, value)
    return value


def _filters(request: web.Request) -> dict[str, str]:
    filters = {}
    for key, value in request.query.items():
        if key.startswith("filter_"):
            field = key.removeprefix("filter_")
            if field not in SUMMARY_FIELDS:
                raise BadRequestError(
                    f"cannot filter on {field!r}; filterable fields: {', '.join(SUMMARY_FIELDS)}"
                )
            filters[field] = value
    return filters


def _device_response(request: web.Request, device, status: int = 200) -> web.Response:
    return envelope.success(request, device.data, status=status, revision=device.revision)


async def list_devices(request: web.Request) -> web.Response:
    account, _ = await authorized_account(request)
    config = request.app[CONFIG]
    if query_bool(request, "paginate", True):
        page_size = query_int(request, "page_size", config.default_page_size, 1, config.max_page_size)
    else:
        page_size = 2**31
    page = await request.app[DEVICES].list(
        account, start_key=request.query.get("start_key") or None, page_size=page_size,
        filters=_filters(request),
    )
    if query_bool(request, "with_status", False):
        registered = await request.app[REGISTRAR].registered_among(account.id, [r["id"] for r in page.rows])
        for row in page.rows:
            row["registered"] = row["id"] in registered
    extra: dict = {"page_size": len(page.rows)}
    if page.start_key is not None:
        extra["start_key"] = page.start_key
    if page.next_start_key is not None:
        extra["next_start_key"] = page.next_start_key
    return envelope.success(request, page.rows, extra=extra)


async def create_device(request: web.Request) -> web.Response:
    account, caller = await authorized_account(request)
    device = await request.app[DEVICES].create(
        account, await request_data(request), is_admin=caller.is_admin
    )
    return _device_response(request, device, status=201)


async def get_device(request: web.Request) -> web.Response:
    account, _ = await authorized_account(request)
    device = await request.app[DEVICES].get(account, _path_id(request, "device_id", "device"))
    return _device_response(request, device)


async def replace_device(request: web.Request) -> web.Response:
    account, caller = await authorized_account(request)
    device_id = _path_id(request, "device_id", "device")
    device = await request.app[DEVICES].replace(
        account, device_id, await request_data(request), if_match=if_match(request),
        is_admin=caller.is_admin,
    )
    return _device_response(request, device)


async def patch_device(request: web.Request) -> web.Response:
    account, caller = await authorized_account(request)
    device_id = _path_id(request, "device_id", "device")
    device = await request.app[DEVICES].patch(
        account, device_id, await request_data(request), if_match=if_match(request),
        is_admin=caller.is_admin,
    )
    return _device_response(request, device)


async def delete_device(request: web.Request) -> web.Response:
    account, _ = await authorized_account(request)
    device = await request.app[DEVICES].delete(
        account, _path_id(request, "device_id", "device"), if_match=if_match(request)
    )
    return _device_response(request, device)


async def user_devices(request: web.Request) -> web.Response:
    account, _ = await authorized_account(request)
    rows = await request.app[DEVICES].for_user(account, _path_id(request, "user_id", "user"))
    return envelope.success(request, rows)


async def devices_status(request: web.Request) -> web.Response:
    """Kazoo's registration status: one row per registered device, unregistered ones absent."""
    account, _ = await authorized_account(request)
    registered = await request.app[REGISTRAR].registered_devices(account.id)
    return envelope.success(request, [{"device_id": i, "registered": True} for i in registered])


async def device_registrations(request: web.Request) -> web.Response:
    """Beyond Kazoo: each live binding of one device, and where it registered from."""
    account, _ = await authorized_account(request)
    device = await request.app[DEVICES].get(account, _path_id(request, "device_id", "device"))
    return envelope.success(request, await request.app[REGISTRAR].registrations(account.id, device.id))
