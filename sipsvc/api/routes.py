"""Every route of the HTTP API."""

from aiohttp import web

from . import openapi
from .views import accounts, devices, events, health, quickcall, security, ui

ACCOUNT = "/v2/accounts/{account_id}"


def add_routes(app: web.Application) -> None:
    app.router.add_routes([
        web.put("/v2/accounts", accounts.create_account),
        web.get(ACCOUNT, accounts.get_account),
        web.put("/v2/api_auth", accounts.api_auth),
        web.get(f"{ACCOUNT}/devices", devices.list_devices),
        web.put(f"{ACCOUNT}/devices", devices.create_device),
        web.get(f"{ACCOUNT}/devices/status", devices.devices_status),
        web.post(f"{ACCOUNT}/devices/sync", devices.sync_devices),
        web.post(f"{ACCOUNT}/devices/{{device_id}}/sync", devices.sync_device),
        web.get(f"{ACCOUNT}/devices/{{device_id}}", devices.get_device),
        web.get(f"{ACCOUNT}/devices/{{device_id}}/registrations", devices.device_registrations),
        web.post(f"{ACCOUNT}/devices/{{device_id}}", devices.replace_device),
        web.patch(f"{ACCOUNT}/devices/{{device_id}}", devices.patch_device),
        web.delete(f"{ACCOUNT}/devices/{{device_id}}", devices.delete_device),
        web.get(f"{ACCOUNT}/users/{{user_id}}/devices", devices.user_devices),
        web.get(f"{ACCOUNT}/devices/{{device_id}}/quickcall/{{number}}", quickcall.quickcall),
        web.post(f"{ACCOUNT}/devices/{{device_id}}/quickcall/{{number}}", quickcall.quickcall),
        web.get(f"{ACCOUNT}/quickcalls/{{call_id}}", quickcall.call),
        web.delete(f"{ACCOUNT}/quickcalls/{{call_id}}", quickcall.call),
        web.get(f"{ACCOUNT}/security/bans", security.account_bans),
        web.get(f"{ACCOUNT}/security/failures", security.account_failures),
        web.delete(f"{ACCOUNT}/security/bans/{{ban_id}}", security.lift_account_ban),
        web.get("/v2/security/bans", security.all_bans),
        web.delete("/v2/security/bans/{ban_id}", security.lift_ban),
    ])
    app.router.add_routes([
        web.get("/healthz", health.healthz),
        web.get("/readyz", health.readyz),
        web.get("/metrics", health.metrics),
        web.get(f"{ACCOUNT}/registrations/events", events.registration_events),
        web.get("/v2/openapi.json", openapi.openapi_document),
        web.get("/ui/", ui.index),
        web.get("/ui/{asset}", ui.asset),
    ])
