"""``/v2/accounts/{account_id}/devices`` and a user's devices."""

from __future__ import annotations

from aiohttp import web

from ...devices.document import SUMMARY_FIELDS
from .. import envelope
from ..errors import BadRequestError
from ..keys import CONFIG, DEVICES, NOTIFIER, REGISTRAR
from ..requests import (
    authorized_account, if_match, optional_request_data, path_id, query_bool, query_int, request_data,
)


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
    device = await request.app[DEVICES].get(account, path_id(request, "device_id", "device"))
    return _device_response(request, device)


async def replace_device(request: web.Request) -> web.Response:
    account, caller = await authorized_account(request)
    device_id = path_id(request, "device_id", "device")
    device = await request.app[DEVICES].replace(
        account, device_id, await request_data(request), if_match=if_match(request),
        is_admin=caller.is_admin,
    )
    await _after_write(request, account, device)
    return _device_response(request, device)


async def patch_device(request: web.Request) -> web.Response:
    account, caller = await authorized_account(request)
    device_id = path_id(request, "device_id", "device")
    device = await request.app[DEVICES].patch(
        account, device_id, await request_data(request), if_match=if_match(request),
        is_admin=caller.is_admin,
    )
    await _after_write(request, account, device)
    return _device_response(request, device)


async def _after_write(request: web.Request, account, device) -> None:
    """check-sync after a save: asked for with "sync": true, or owed to phones whose
    registrations a credentials change dropped."""
    await request.app[NOTIFIER].after_write(
        account.id, account.realm, device.id, sync=device.sync,
        old_doc=device.dropped.old_doc if device.dropped else None,
        dropped=device.dropped.bindings if device.dropped else [],
    )


def _reboot(request: web.Request, data: dict) -> bool | None:
    """The reboot option: ``?reboot=`` or ``"reboot"`` in the data; None when neither is given."""
    in_query = query_bool(request, "reboot", None)
    in_data = data.get("reboot")
    if in_data is not None and not isinstance(in_data, bool):
        raise BadRequestError(f'"reboot" must be true or false, got {in_data!r}')
    if in_query is not None and in_data is not None and in_query != in_data:
        raise BadRequestError("reboot is given in both the query string and the data, with different values")
    return in_query if in_query is not None else in_data


async def sync_device(request: web.Request) -> web.Response:
    """check-sync NOTIFY to every registration of the device (Kazoo's answer by default;
    ``?wait=true`` waits for the phones' answers and reports one entry per registration)."""
    account, _ = await authorized_account(request)
    device_id = path_id(request, "device_id", "device")
    data = await optional_request_data(request)
    reboot = _reboot(request, data)
    wait = query_bool(request, "wait", False)
    outcomes = await request.app[NOTIFIER].sync_device(
        account.id, account.realm, device_id, reboot=reboot, wait=wait)
    if outcomes is None:
        return envelope.success(request, "sync request sent")
    return envelope.success(request, [outcome.as_dict() for outcome in outcomes])


async def sync_devices(request: web.Request) -> web.Response:
    """Beyond Kazoo: check-sync every registered device of the account, paced, with a summary."""
    account, _ = await authorized_account(request)
    data = await optional_request_data(request)
    summary = await request.app[NOTIFIER].sync_account(
        account.id, account.realm, reboot=_reboot(request, data))
    return envelope.success(request, summary)


async def delete_device(request: web.Request) -> web.Response:
    account, _ = await authorized_account(request)
    device = await request.app[DEVICES].delete(
        account, path_id(request, "device_id", "device"), if_match=if_match(request)
    )
    return _device_response(request, device)


async def user_devices(request: web.Request) -> web.Response:
    account, _ = await authorized_account(request)
    rows = await request.app[DEVICES].for_user(account, path_id(request, "user_id", "user"))
    return envelope.success(request, rows)


async def devices_status(request: web.Request) -> web.Response:
    """Kazoo's registration status: one row per registered device, unregistered ones absent."""
    account, _ = await authorized_account(request)
    registered = await request.app[REGISTRAR].registered_devices(account.id)
    return envelope.success(request, [{"device_id": i, "registered": True} for i in registered])


async def device_registrations(request: web.Request) -> web.Response:
    """Beyond Kazoo: each live binding of one device, and where it registered from."""
    account, _ = await authorized_account(request)
    device = await request.app[DEVICES].get(account, path_id(request, "device_id", "device"))
    return envelope.success(request, await request.app[REGISTRAR].registrations(account.id, device.id))
