"""The OpenAPI 3.1 document of the HTTP API, served at ``/v2/openapi.json``.

Built from one table, ``OPERATIONS``: one entry per route of ``routes.py`` (a test fails when a
route has no entry or an entry no route). The device schema is ``devices/schema.py``'s own
(JSON Schema draft 4 as Kazoo's; OpenAPI 3.1 takes it as it is), so the document never drifts
from what the API validates. Every answer is in Kazoo's envelope; every error in its error
envelope. A new route's documentation is one ``Operation`` in the table.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field

from aiohttp import web

from ..devices.document import SUMMARY_FIELDS
from ..devices.schema import DEVICE_SCHEMA, KAZOO_ID_PATTERN
from ..quickcall.options import KNOWN_OPTIONS, MAX_TIMEOUT, MEDIA_MODES, MIN_TIMEOUT

VERSION = "0.1.0"
ACCOUNT = "/v2/accounts/{account_id}"
DEVICE = f"{ACCOUNT}/devices/{{device_id}}"
STRING = {"type": "string"}
BOOLEAN = {"type": "boolean"}
ANY_OBJECT = {"type": "object"}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def data_of(schema: dict, **extra: dict) -> dict:
    """The success envelope with ``data`` of the given schema (and extra top-level fields)."""
    return {"allOf": [ref("Envelope"), {"type": "object", "properties": {"data": schema, **extra}}]}


def array(items: dict) -> dict:
    return {"type": "array", "items": items}


def obj(required: tuple[str, ...] = (), **properties: dict) -> dict:
    return {"type": "object", "required": list(required), "properties": properties}


@dataclass(frozen=True)
class Query:
    name: str
    schema: dict
    description: str = ""


@dataclass(frozen=True)
class Operation:
    """One route's documentation.

    ``ok`` maps the success status to the schema of the whole answer (usually ``data_of(...)``);
    ``media`` is its content type. ``errors`` are the error statuses it may answer (each with
    Kazoo's error envelope). ``auth``: ``token`` (needs X-Auth-Token), ``none`` or ``optional``.
    """

    summary: str
    tag: str
    ok: dict[int, dict]
    errors: tuple[int, ...] = (400, 401, 403, 404, 503)
    body: dict | None = None
    body_required: bool = True
    query: tuple[Query, ...] = ()
    auth: str = "token"
    media: str = "application/json"
    description: str = ""
    extra: dict = field(default_factory=dict)
    etag: bool = True  # the answer carries the revision as ETag (Kazoo envelope routes)


ACCOUNT_DOC = obj(("id", "name", "realm"), id=STRING, name=STRING, realm=STRING,
                  api_key={"type": "string", "description": "only for the admin, and on create"})
DEVICE_DOC = {"allOf": [ref("Device"), obj(("id",), id=STRING)]}
DEVICE_ROW = obj(("id",), **{name: {} for name in SUMMARY_FIELDS}, registered=BOOLEAN, hotdesked=BOOLEAN)
REGISTRATION = obj(
    ("contact", "source", "transport", "expires_in", "registered_at"),
    contact=STRING, source=STRING, transport=STRING, user_agent=STRING,
    expires_in={"type": "integer", "minimum": 0}, registered_at={"type": "integer"},
    instance=STRING, reg_id={}, path=array(STRING),
    reachable={"type": "boolean", "description": "false: a TCP binding whose connection is closed "
                                                 "or whose node is gone (a sync would not reach it)"},
)
SYNC_OUTCOME = obj(("contact", "transport", "status", "elapsed_ms"), contact=STRING, transport=STRING,
                   status={"type": ["integer", "string"]}, elapsed_ms={"type": ["integer", "null"]})
SYNC_SUMMARY = obj(
    ("devices", "sent", "answered", "timed_out", "unreachable", "elapsed_ms"),
    devices={"type": "integer"}, sent={"type": "integer"},
    answered={"type": "object", "additionalProperties": {"type": "integer"}},
    timed_out={"type": "integer"}, unreachable={"type": "integer"},
    rate={"type": ["number", "null"]}, answer_ms=ANY_OBJECT, elapsed_ms={"type": "integer"},
)
CALL_RECORD = obj(("id", "state"), id=STRING, device_id=STRING, number=STRING,
                  state={"type": "string", "enum": ["ringing", "connecting", "connected", "ended"]},
                  outcome={"type": ["string", "null"]}, leg={"type": ["string", "null"]},
                  status={"type": ["integer", "null"]}, reason={"type": ["string", "null"]})
BAN = obj(
    ("id", "scope", "source", "account_id", "until", "failures"), id=STRING,
    scope={"type": "string", "enum": ["source", "user"],
           "description": "source: the address is banned from every account; user: from one username"},
    source=STRING, account_id=STRING, username={"type": ["string", "null"]}, since={"type": "integer"},
    until={"type": "integer", "description": "Unix time the ban ends"}, expires_in={"type": "integer"},
    failures={"type": "integer", "description": "failed digest attempts that led to the ban"},
)
READINESS = obj(("status", "checks"), status={"type": "string", "enum": ["ready", "unready"]},
                reason=STRING, checks=ANY_OBJECT)
REBOOT = Query("reboot", BOOLEAN, "check-sync;reboot=true (or false) for phones that reboot on it")
SYNC_BODY = {"type": "object", "properties": {"data": obj(reboot=BOOLEAN)}}
LISTING_EXTRA = {"page_size": {"type": "integer"}, "start_key": STRING, "next_start_key": STRING}
QUICKCALL_QUERY = tuple(
    Query(name, {"auto_answer": BOOLEAN, "ignore-early-media": BOOLEAN,
                 "media": {"type": "string", "enum": list(MEDIA_MODES)},
                 "timeout": {"type": "integer", "minimum": MIN_TIMEOUT, "maximum": MAX_TIMEOUT},
                 }.get(name, STRING))
    for name in KNOWN_OPTIONS
)

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("PUT", "/v2/accounts"): Operation(
        "Create an account (admin token only); answers its api_key", "accounts",
        {201: data_of(ACCOUNT_DOC)}, errors=(400, 401, 403, 503),
        body=obj(("data",), data=obj(("name", "realm"), name=STRING, realm=STRING))),
    ("GET", ACCOUNT): Operation("Fetch an account", "accounts", {200: data_of(ACCOUNT_DOC)}),
    ("PUT", "/v2/api_auth"): Operation(
        "Trade an account's API key for an auth token (answered as auth_token)", "accounts",
        {201: data_of(obj(("account_id", "realm", "expires_in"), account_id=STRING, account_name=STRING,
                          realm=STRING, expires_in={"type": "integer"}))},
        errors=(400, 401, 503), auth="none", body=obj(("data",), data=obj(("api_key",), api_key=STRING))),
    ("GET", f"{ACCOUNT}/devices"): Operation(
        "List the account's devices (paged in id order)", "devices",
        {200: data_of(array(DEVICE_ROW), **LISTING_EXTRA)},
        query=(Query("page_size", {"type": "integer", "minimum": 1}), Query("start_key", STRING),
               Query("paginate", BOOLEAN, "false: every device in one answer"),
               Query("with_status", BOOLEAN, "add registered (true/false) to each row"),
               *(Query(f"filter_{name}", STRING, f"only rows whose {name} equals this")
                 for name in SUMMARY_FIELDS))),
    ("PUT", f"{ACCOUNT}/devices"): Operation(
        "Create a device", "devices", {201: data_of(DEVICE_DOC)}, errors=(400, 401, 403, 404, 409, 503),
        body=obj(("data",), data=ref("Device"))),
    ("GET", f"{ACCOUNT}/devices/status"): Operation(
        "Registered devices (Kazoo's registration status)", "registrations",
        {200: data_of(array(obj(("device_id", "registered"), device_id=STRING, registered={"const": True})))}),
    ("POST", f"{ACCOUNT}/devices/sync"): Operation(
        "check-sync every registered device of the account, paced; answers a summary", "sync",
        {200: data_of(SYNC_SUMMARY)}, errors=(400, 401, 403, 404, 409, 503), query=(REBOOT,),
        body=SYNC_BODY, body_required=False),
    ("POST", f"{DEVICE}/sync"): Operation(
        "check-sync NOTIFY to each registration of the device", "sync",
        {200: data_of({"oneOf": [{"const": "sync request sent"}, array(SYNC_OUTCOME)]})},
        errors=(400, 401, 403, 404, 409, 503), body=SYNC_BODY, body_required=False,
        query=(REBOOT, Query("wait", BOOLEAN, "answer once every phone answered, one entry each"))),
    ("GET", DEVICE): Operation("Fetch a device", "devices", {200: data_of(DEVICE_DOC)}),
    ("GET", f"{DEVICE}/registrations"): Operation(
        "The device's live registrations (bindings)", "registrations", {200: data_of(array(REGISTRATION))}),
    ("POST", DEVICE): Operation(
        "Replace a device's public fields (If-Match for optimistic locking)", "devices",
        {200: data_of(DEVICE_DOC)}, errors=(400, 401, 403, 404, 409, 503),
        body=obj(("data",), data=ref("Device"))),
    ("PATCH", DEVICE): Operation(
        "Merge into a device (JSON merge patch, RFC 7396)", "devices", {200: data_of(DEVICE_DOC)},
        errors=(400, 401, 403, 404, 409, 503), body=obj(("data",), data=ANY_OBJECT)),
    ("DELETE", DEVICE): Operation(
        "Remove a device; answers the removed document", "devices", {200: data_of(DEVICE_DOC)},
        errors=(400, 401, 403, 404, 409, 503)),
    ("GET", f"{ACCOUNT}/users/{{user_id}}/devices"): Operation(
        "Devices a user owns or is hotdesked to", "devices", {200: data_of(array(DEVICE_ROW))}),
    ("GET", f"{DEVICE}/quickcall/{{number}}"): Operation(
        "The originate payload of a click-to-dial call to the number", "quickcall",
        {200: data_of(ANY_OBJECT)}, errors=(400, 401, 403, 404, 409, 503), auth="optional",
        query=QUICKCALL_QUERY),
    ("GET", f"{ACCOUNT}/registrations/events"): Operation(
        "Registration events as Server-Sent Events: a snapshot, then register, refresh, "
        "unregister, expired", "registrations", {200: {"type": "string"}}, media="text/event-stream",
        description="Each event is `event: <name>` and `data: <JSON>`: `snapshot` "
                    "`{registered: [{device_id, expires_at}], at}`; `register`/`refresh` "
                    "`{device_id, expires_at, contacts, at}`; `unregister` `{device_id, at, reason?}`; "
                    "`expired` `{device_id, expires_at, at}`. A `: keepalive` comment every 15 s."),
    ("POST", f"{DEVICE}/quickcall/{{number}}"): Operation(
        "Place the click-to-dial call over SIP (third-party call control through the gateway); "
        "answers the payload with the call's record under call", "quickcall",
        {200: data_of(ANY_OBJECT)}, errors=(400, 401, 403, 404, 409, 503), auth="optional",
        query=(*QUICKCALL_QUERY, Query("wait", BOOLEAN, "answer once the call's outcome is known"))),
    ("GET", f"{ACCOUNT}/quickcalls/{{call_id}}"): Operation(
        "A placed quickcall's record", "quickcall", {200: data_of(CALL_RECORD)},
        errors=(400, 401, 403, 404, 503), auth="optional"),
    ("DELETE", f"{ACCOUNT}/quickcalls/{{call_id}}"): Operation(
        "Hang a placed quickcall up (BYE both legs, or CANCEL while ringing); answers its record",
        "quickcall", {200: data_of(CALL_RECORD)}, errors=(400, 401, 403, 404, 409, 503), auth="optional"),
    ("GET", f"{ACCOUNT}/security/bans"): Operation(
        "Bans in force tripped by password guessing against the account's usernames", "security",
        {200: data_of(array(BAN))}),
    ("GET", f"{ACCOUNT}/security/failures"): Operation(
        "The account's usernames with failed digest attempts from any address (most first, at most "
        "100), while attempts keep coming (they are forgotten a failure window after the last one)",
        "security", {200: data_of(array(obj(("username", "failures"), username=STRING,
                                            failures={"type": "integer"})))}),
    ("DELETE", f"{ACCOUNT}/security/bans/{{ban_id}}"): Operation(
        "Lift a ban of one of the account's usernames (a whole source's ban: admin token only)", "security",
        {200: data_of(BAN)}),
    ("GET", "/v2/security/bans"): Operation(
        "Every ban in force (admin token only)", "security", {200: data_of(array(BAN))},
        errors=(401, 403, 503)),
    ("DELETE", "/v2/security/bans/{ban_id}"): Operation(
        "Lift any ban (admin token only)", "security", {200: data_of(BAN)}, errors=(401, 403, 404, 503)),
    ("GET", "/healthz"): Operation(
        "The process is up", "meta", {200: obj(("status",), status={"const": "ok"})}, errors=(),
        auth="none", etag=False),
    ("GET", "/readyz"): Operation(
        "Ready: Redis answers and the SIP sockets are bound (503 with the reason otherwise)", "meta",
        {200: READINESS, 503: READINESS}, errors=(), auth="none", etag=False),
    ("GET", "/metrics"): Operation(
        "Prometheus metrics (text exposition format)", "meta", {200: {"type": "string"}}, errors=(),
        auth="none", media="text/plain", etag=False),
    ("GET", "/v2/openapi.json"): Operation(
        "This document", "meta", {200: ANY_OBJECT}, errors=(), auth="none", etag=False),
    ("GET", "/ui/"): Operation(
        "The operator page: the account's devices with live registration state", "meta",
        {200: {"type": "string"}}, errors=(), auth="none", media="text/html"),
    ("GET", "/ui/{asset}"): Operation(
        "The operator page's script and style sheet", "meta", {200: {"type": "string"}},
        errors=(404,), auth="none", media="*/*"),
}

_ERROR_TEXT = {
    400: "invalid request or validation error (keyed by field path, then rule)",
    401: "missing or unknown token (invalid_credentials)", 403: "another account's token (forbidden)",
    404: "no such account or document (bad_identifier)", 409: "conflict (datastore_conflict, "
    "device not registered, device_unavailable, sync already running)",
    503: "the data store is unreachable (datastore_unreachable)",
}
_PATH_PARAMETERS = {
    "account_id": {"type": "string", "pattern": KAZOO_ID_PATTERN},
    "device_id": {"type": "string", "pattern": KAZOO_ID_PATTERN},
    "user_id": {"type": "string", "pattern": KAZOO_ID_PATTERN},
    "number": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[\\x21-\\x7e]+$"},
    "asset": {"type": "string", "pattern": "^[a-z]+\\.[a-z]+$"},
    "call_id": {"type": "string", "pattern": "^[0-9a-f]{36}$"},
    "ban_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
}
_SECURITY = {"token": [{"XAuthToken": []}, {"Bearer": []}], "none": [],
             "optional": [{}, {"XAuthToken": []}, {"Bearer": []}]}
_REQUEST_ID = {"X-Request-ID": {"required": True, "schema": STRING,
                                "description": "the request's own X-Request-ID when sane, else a new id"}}
_RATE_LIMITED = {
    "description": "the token made more requests than api.rate_limit allows (rate_limited)",
    "headers": {**_REQUEST_ID, "Retry-After": {"required": True, "schema": {"type": "integer"},
                                               "description": "seconds until a request is allowed"}},
    "content": {"application/json": {"schema": ref("Error")}},
}


def _components() -> dict:
    envelope = obj(("auth_token", "data", "request_id", "revision", "status"), auth_token=STRING, data={},
                   request_id=STRING, revision=STRING, status={"const": "success"})
    error = obj(("data", "error", "message", "status"), auth_token=STRING, request_id=STRING,
                data={"description": "details: {message, cause?, current_revision?}, or for a "
                      "validation error {<field path>: {<rule>: {message, target?, value?}}}"},
                error={"type": "string", "pattern": "^[0-9]{3}$"}, message=STRING,
                status={"const": "error"})
    device = copy.deepcopy(DEVICE_SCHEMA)
    device.pop("$schema", None)
    return {
        "schemas": {"Envelope": envelope, "Error": error, "Device": device},
        "securitySchemes": {
            "XAuthToken": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
            "Bearer": {"type": "http", "scheme": "bearer"},
        },
    }


def _parameters(path: str, operation: Operation) -> list[dict]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    params = [{"name": n, "in": "path", "required": True, "schema": _PATH_PARAMETERS[n]} for n in names]
    params += [{"name": q.name, "in": "query", "required": False, "schema": q.schema,
                **({"description": q.description} if q.description else {})} for q in operation.query]
    return params


def _operation(method: str, path: str, operation: Operation) -> dict:
    responses: dict = {}
    for status, schema in operation.ok.items():
        headers = dict(_REQUEST_ID)
        if operation.media == "application/json" and operation.etag:
            headers["ETag"] = {"schema": STRING, "description": "the revision, quoted"}
        responses[str(status)] = {"description": operation.summary, "headers": headers,
                                  "content": {operation.media: {"schema": schema}}}
    for status in operation.errors:
        responses[str(status)] = {"description": _ERROR_TEXT[status], "headers": _REQUEST_ID,
                                  "content": {"application/json": {"schema": ref("Error")}}}
    if operation.auth != "none":
        responses["429"] = _RATE_LIMITED
    out = {"operationId": f"{method.lower()}_{_slug(path)}", "summary": operation.summary,
           "tags": [operation.tag], "parameters": _parameters(path, operation), "responses": responses,
           "security": _SECURITY[operation.auth], **operation.extra}
    if operation.description:
        out["description"] = operation.description
    if operation.body is not None:
        out["requestBody"] = {"required": operation.body_required,
                              "content": {"application/json": {"schema": operation.body}}}
    return out


def _slug(path: str) -> str:
    parts = [p.strip("{}").replace(".", "_") for p in path.split("/") if p and p != "v2"]
    return "_".join(parts) or "root"


@functools.cache
def build_document() -> dict:
    paths: dict[str, dict] = {}
    for (method, path), operation in OPERATIONS.items():
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, operation)
    return {
        "openapi": "3.1.0",
        "info": {"title": "sipsvc", "version": VERSION,
                 "description": "SIP signalling service with a Kazoo-compatible devices API. "
                                "Every answer is in Kazoo's envelope; errors in its error envelope."},
        "paths": paths,
        "components": _components(),
        "security": _SECURITY["token"],
    }


async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(build_document())
