"""Reading what a request carries: the auth token, the JSON body, If-Match, query options."""

from __future__ import annotations

import json
import re

import orjson
from aiohttp import web

from ..accounts.service import Principal
from ..devices.service import AccountRef
from ..errors import NotFoundError
from . import envelope
from .errors import BadRequestError
from .keys import ACCOUNTS, CONFIG


def auth_token(request: web.Request) -> str | None:
    token = request.headers.get("X-Auth-Token")
    if token is None:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            token = credentials.strip()
    return token or None


async def principal(request: web.Request) -> Principal:
    """Authenticate the caller (401 when that fails)."""
    token = auth_token(request)
    found = await request.app[ACCOUNTS].authenticate(token)
    request[envelope.AUTH_TOKEN] = found.token
    return found


async def authorized_account(request: web.Request) -> tuple[AccountRef, Principal]:
    """The account named in the path, once the caller is known to have access to it."""
    caller = await principal(request)
    account_id = request.match_info["account_id"]
    accounts = request.app[ACCOUNTS]
    accounts.authorize(caller, account_id)
    account = await accounts.get(account_id)
    return AccountRef(account.id, account.realm), caller


async def request_data(request: web.Request, *, optional: bool = False) -> dict:
    """The ``data`` object of a JSON body ``{"data": {...}}``; with ``optional``, an empty body
    (or one without ``data``) gives ``{}``.

    The body is parsed whatever its Content-Type (Kazoo's own curl examples send none).
    """
    limit = request.app[CONFIG].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise BadRequestError(f"request body is larger than the limit of {limit} bytes")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BadRequestError(f"request body is larger than the limit of {limit} bytes") from None
    if optional and not raw.strip():
        return {}
    if not raw.strip():
        raise BadRequestError('request body is empty; expected {"data": {...}}')
    depth = request.app[CONFIG].max_json_depth
    too_deep = f"request body nests objects and arrays deeper than the limit of {depth} levels"
    try:
        body = json.loads(raw)
    except RecursionError:
        raise BadRequestError(too_deep) from None
    except ValueError as exc:
        raise BadRequestError(f"request body is not valid JSON: {exc}") from None
    if _deeper_than(body, depth):
        raise BadRequestError(too_deep)
    try:
        # What the store cannot write back (integers beyond 64 bits, lone UTF-16 surrogates)
        # is refused here, not answered with a 500 later.
        orjson.dumps(body)
    except TypeError as exc:
        raise BadRequestError(f"request body is not valid JSON for this API: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequestError('request body must be a JSON object like {"data": {...}}')
    if optional and "data" not in body:
        return {}
    if "data" not in body:
        raise BadRequestError('request body has no "data" field')
    if not isinstance(body["data"], dict):
        raise BadRequestError('"data" must be a JSON object')
    return body["data"]


def _deeper_than(value: object, limit: int) -> bool:
    """Whether objects and arrays in ``value`` nest deeper than ``limit`` (iteratively)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


async def optional_request_data(request: web.Request) -> dict:
    """``request_data`` for requests whose body may be left out."""
    return await request_data(request, optional=True)


def if_match(request: web.Request) -> str | None:
    """The revision of an ``If-Match`` header (quotes and weak prefix dropped)."""
    value = request.headers.get("If-Match")
    if value is None:
        return None
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"') or None


def query_bool(request: web.Request, name: str, default: bool | None) -> bool | None:
    value = request.query.get(name)
    if value is None:
        return default
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise BadRequestError(f"query option {name} must be true or false, got {value!r}")


def query_int(request: web.Request, name: str, default: int, minimum: int, maximum: int) -> int:
    value = request.query.get(name)
    if value is None:
        return default
    if not value.isdigit() or not minimum <= int(value) <= maximum:
        raise BadRequestError(
            f"query option {name} must be a whole number from {minimum} to {maximum}, got {value!r}"
        )
    return int(value)


_KAZOO_ID = re.compile(r"^[0-9a-zA-Z]{32}$")


def path_id(request: web.Request, name: str, kind: str) -> str:
    """An id from the path; one that cannot exist is a 404 without touching the store."""
    value = request.match_info[name]
    if not _KAZOO_ID.match(value):
        raise NotFoundError(kind, value)
    return value
