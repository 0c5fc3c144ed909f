"""Accounts and API authentication, Kazoo style.

- An account has a name, a SIP realm (unique, case-insensitive) and an API key.
- ``PUT /v2/api_auth`` trades the API key for an auth token that expires after ``token_ttl``;
  only the token's SHA-256 is stored.
- The admin token (from the configuration) works on every account.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from ..errors import (
    AuthenticationError, FieldErrors, ForbiddenError, NotFoundError, ValidationFailedError,
    add_field_error,
)
from ..store.accounts import RedisAccountStore
from ..store.errors import ValueTakenError

# Lookups cached per process: a token for at most this long (never past its expiry), and the
# account document (its id, name and realm never change) for this long.
TOKEN_CACHE_SECONDS = 5.0
ACCOUNT_CACHE_SECONDS = 60.0
CACHE_LIMIT = 100_000

_REALM = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")
_ACCOUNT_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    realm: str
    api_key: str = ""

    def public(self, *, with_api_key: bool) -> dict:
        data = {"id": self.id, "name": self.name, "realm": self.realm}
        if with_api_key:
            data["api_key"] = self.api_key
        return data


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin, or the holder of one account's token."""

    token: str
    account_id: str | None  # None for the admin

    @property
    def is_admin(self) -> bool:
        return self.account_id is None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _validate_account(data: dict) -> FieldErrors:
    errors: FieldErrors = {}
    for field, max_length in (("name", 128), ("realm", 253)):
        value = data.get(field)
        if value is None:
            add_field_error(errors, field, "required", "Field is required but missing")
        elif not isinstance(value, str):
            add_field_error(errors, field, "type", "Value did not match type(s): string",
                            target=["string"], value=value)
        elif not value:
            add_field_error(errors, field, "minLength", "String must be at least 1 characters",
                            target=1, value=value)
        elif len(value) > max_length:
            add_field_error(errors, field, "maxLength",
                            f"String must not be more than {max_length} characters",
                            target=max_length, value=value)
    realm = data.get("realm")
    if isinstance(realm, str) and realm and "realm" not in errors and not _REALM.match(realm):
        add_field_error(errors, "realm", "pattern", "Realm must be a valid DNS name",
                        target=_REALM.pattern, value=realm)
    return errors


def _remember(cache: dict, key: str, value: tuple) -> None:
    if len(cache) >= CACHE_LIMIT:
        cache.clear()  # rare, and cheaper than tracking order; entries are refetched on demand
    cache[key] = value


class AccountService:
    def __init__(self, store: RedisAccountStore, *, admin_token: str | None, token_ttl: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._admin_token = admin_token
        self._token_ttl = token_ttl
        self._clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}  # token digest -> (account id, until)
        self._accounts: dict[str, tuple[Account, float]] = {}  # account id -> (account, until)

    async def create(self, data: dict) -> Account:
        errors = _validate_account(data)
        if errors:
            raise ValidationFailedError(errors)
        account = Account(uuid.uuid4().hex, data["name"], data["realm"], secrets.token_hex(32))
        try:
            await self._store.create(
                {"id": account.id, "name": account.name, "realm": account.realm,
                 "api_key": account.api_key, "created": str(int(self._clock()))},
                _digest(account.api_key), self._clock(),
            )
        except ValueTakenError:
            errors = {}
            add_field_error(errors, "realm", "unique", "Realm already in use", cause=account.realm)
            raise ValidationFailedError(errors) from None
        return account

    async def get(self, account_id: str) -> Account:
        now = self._clock()
        cached = self._accounts.get(account_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        stored = await self._store.get(account_id) if _ACCOUNT_ID.match(account_id) else None
        if stored is None:
            raise NotFoundError("account", account_id)
        account = Account(stored["id"], stored["name"], stored["realm"], stored.get("api_key", ""))
        _remember(self._accounts, account_id, (account, now + ACCOUNT_CACHE_SECONDS))
        return account

    async def issue_token(self, api_key: object) -> tuple[str, Account]:
        """Trade an API key for a new auth token; raises AuthenticationError for a bad key."""
        if not isinstance(api_key, str) or not api_key:
            raise AuthenticationError("invalid credentials")
        account_id = await self._store.account_for_api_key(_digest(api_key))
        if account_id is None:
            raise AuthenticationError("invalid credentials")
        account = await self.get(account_id)
        token = secrets.token_urlsafe(32)
        await self._store.save_token(_digest(token), account.id, self._token_ttl)
        return token, account

    @property
    def token_ttl(self) -> int:
        return self._token_ttl

    async def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise AuthenticationError("missing credentials")
        if self._admin_token is not None and hmac.compare_digest(token.encode(), self._admin_token.encode()):
            return Principal(token, None)
        # Lookup by digest: the comparison happens on a hash, so timing reveals nothing of tokens.
        digest, now = _digest(token), self._clock()
        cached = self._tokens.get(digest)
        if cached is not None and cached[1] > now:
            return Principal(token, cached[0])
        found = await self._store.account_for_token(digest)
        if found is None:
            self._tokens.pop(digest, None)
            raise AuthenticationError("invalid credentials")
        account_id, seconds_left = found
        _remember(self._tokens, digest, (account_id, now + min(TOKEN_CACHE_SECONDS, seconds_left)))
        return Principal(token, account_id)

    @staticmethod
    def authorize(principal: Principal, account_id: str) -> None:
        if not principal.is_admin and principal.account_id != account_id:
            raise ForbiddenError("this token does not give access to that account")

    @staticmethod
    def require_admin(principal: Principal) -> None:
        if not principal.is_admin:
            raise ForbiddenError("only the admin token may do this")
