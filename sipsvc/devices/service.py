"""The devices service: create, fetch, replace, patch, delete and list device documents.

Every write is optimistic: it reads the stored revision, builds and validates the new document,
and saves it only if the revision is still current (checked inside the save script). A client
that sent ``If-Match`` gets a conflict when it lost that race; one that did not is retried on
the fresh document, which gives Kazoo's last-write-wins without ever losing a concurrent write
or leaving the indexes out of step with the document.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from ..errors import ConflictError, FieldErrors, NotFoundError, ValidationFailedError, add_field_error
from ..registrar.policy import Binding
from ..store.devices import NO_INDEXES, RedisDeviceStore
from ..store.errors import (
    DocumentExistsError, DocumentMissingError, RevisionConflictError, ValueTakenError,
)
from . import document
from .validation import apply_defaults, validate

MAX_WRITE_ATTEMPTS = 16

_UNIQUE_ERRORS = {
    "mac": ("mac_address", "MAC address already in use"),
    "sip_username": ("sip.username", "SIP credentials already in use"),
    "sip_ip": ("sip.ip", "SIP IP already in use"),
}


@dataclass(frozen=True)
class AccountRef:
    """What the devices service needs to know of the account a device belongs to."""

    id: str
    realm: str


@dataclass(frozen=True)
class Dropped:
    """Registrations a credentials change dropped, and the document those phones still use."""

    old_doc: dict = field(repr=False)
    bindings: list[Binding]


@dataclass(frozen=True)
class Device:
    id: str
    revision: str
    data: dict  # the public document
    # What a write leaves for check-sync (never stored): "sync": true was asked for, and the
    # registrations a credentials change dropped.
    sync: bool = False
    dropped: Dropped | None = None


@dataclass(frozen=True)
class Page:
    rows: list[dict]
    start_key: str | None
    next_start_key: str | None


def _new_revision(previous: str | None) -> str:
    generation = int(previous.partition("-")[0]) + 1 if previous else 1
    return f"{generation}-{uuid.uuid4().hex}"


def _unique_errors(taken: list[ValueTakenError]) -> FieldErrors:
    errors: FieldErrors = {}
    for error in taken:
        path, message = _UNIQUE_ERRORS[error.kind]
        add_field_error(errors, path, "unique", message, cause=error.value)
    return errors


class DeviceService:
    def __init__(self, store: RedisDeviceStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def get(self, account: AccountRef, device_id: str) -> Device:
        stored = await self._store.get(account.id, device_id)
        if stored is None:
            raise NotFoundError("device", device_id)
        return Device(device_id, stored.revision, document.public_view(stored.doc))

    async def create(self, account: AccountRef, data: dict, *, is_admin: bool) -> Device:
        device_id = uuid.uuid4().hex
        data = {key: value for key, value in data.items() if key != "id"}
        doc = await self._prepare(account, device_id, data, previous=None, is_admin=is_admin)
        now = self._clock()
        doc.update(pvt_type="device", pvt_account_id=account.id, pvt_created=int(now),
                   pvt_modified=int(now))
        revision = _new_revision(None)
        await self._save(account, doc, revision, expected=None, old=None, now=now)
        return Device(device_id, revision, document.public_view(doc))

    async def replace(self, account: AccountRef, device_id: str, data: dict, *,
                      if_match: str | None, is_admin: bool) -> Device:
        """POST: the public fields become exactly ``data`` (private fields are kept)."""
        return await self._update(account, device_id, lambda stored: data, if_match, is_admin)

    async def patch(self, account: AccountRef, device_id: str, data: dict, *,
                    if_match: str | None, is_admin: bool) -> Device:
        """PATCH: ``data`` is deep-merged onto the stored public fields."""
        return await self._update(
            account, device_id,
            lambda stored: document.deep_merge(document.public_view(stored), data),
            if_match, is_admin,
        )

    async def delete(self, account: AccountRef, device_id: str, *, if_match: str | None) -> Device:
        for _ in range(MAX_WRITE_ATTEMPTS):
            stored = await self._store.get(account.id, device_id)
            if stored is None:
                raise NotFoundError("device", device_id)
            self._check_if_match(stored.revision, if_match)
            try:
                await self._store.delete(
                    account.id, device_id, expected_revision=stored.revision,
                    indexes=document.indexes(stored.doc, account.realm),
                )
            except DocumentMissingError:
                raise NotFoundError("device", device_id) from None
            except RevisionConflictError as exc:
                self._raise_if_pinned(if_match, exc)
                continue
            return Device(device_id, stored.revision, document.public_view(stored.doc))
        raise ConflictError("")

    async def list(self, account: AccountRef, *, start_key: str | None, page_size: int,
                   filters: dict[str, str]) -> Page:
        """One page of listing rows matching every ``filters`` entry (field -> text)."""
        rows: list[dict] = []
        chunk = page_size + 1 if not filters else max(page_size + 1, 500)
        cursor, inclusive = start_key, True
        while True:
            batch = await self._store.list_page(account.id, cursor, chunk, inclusive=inclusive)
            for device_id, row in batch:
                if row is None or not all(_matches(row.get(f), t) for f, t in filters.items()):
                    continue
                if len(rows) == page_size:
                    return Page(rows, start_key, device_id)
                rows.append(row)
            if len(batch) < chunk:
                return Page(rows, start_key, None)
            cursor, inclusive = batch[-1][0], False

    async def for_user(self, account: AccountRef, user_id: str) -> list[dict]:
        return [document.user_row(row, user_id) for _, row in await self._store.user_rows(account.id, user_id)]

    # -- internals ---------------------------------------------------------------------------

    async def _update(self, account: AccountRef, device_id: str, build: Callable[[dict], dict],
                      if_match: str | None, is_admin: bool) -> Device:
        for _ in range(MAX_WRITE_ATTEMPTS):
            stored = await self._store.get(account.id, device_id)
            if stored is None:
                raise NotFoundError("device", device_id)
            self._check_if_match(stored.revision, if_match)
            data = {key: value for key, value in build(stored.doc).items() if key != "id"}
            sync = _sync_flag(data)
            previous = document.public_view(stored.doc)
            doc = await self._prepare(account, device_id, data, previous=previous, is_admin=is_admin)
            now = self._clock()
            doc.update(document.private_fields(stored.doc), pvt_modified=int(now))
            revision = _new_revision(stored.revision)
            try:
                dropped = await self._save(account, doc, revision, expected=stored.revision,
                                           old=stored.doc, now=now)
            except RevisionConflictError as exc:
                self._raise_if_pinned(if_match, exc)
                continue
            told = dropped and document.credentials_changed(stored.doc, doc)
            return Device(device_id, revision, document.public_view(doc), sync=sync,
                          dropped=Dropped(stored.doc, dropped) if told else None)
        raise ConflictError("")

    async def _prepare(self, account: AccountRef, device_id: str, data: dict, *,
                       previous: dict | None, is_admin: bool) -> dict:
        """Normalise, default and validate ``data`` into a full document, or raise with every
        error found (schema, rules and uniqueness)."""
        doc = document.normalise(dict(data), account.realm)
        document.take_sync_flag(doc)
        apply_defaults(doc)
        doc["id"] = device_id
        errors = validate(doc, previous=previous, may_change_type=is_admin)
        if errors:
            # Report taken unique values alongside; a valid document skips this read, since
            # the save enforces uniqueness anyway and reports conflicts then.
            await self._add_unique_errors(errors, account, doc)
            raise ValidationFailedError(errors)
        return doc

    async def _add_unique_errors(self, errors: FieldErrors, account: AccountRef, doc: dict) -> None:
        taken = await self._store.holders(account.id, doc["id"], document.indexes(doc, account.realm))
        for path, rules in _unique_errors(taken).items():
            errors.setdefault(path, {}).update(rules)

    async def _save(self, account: AccountRef, doc: dict, revision: str, *, expected: str | None,
                    old: dict | None, now: float) -> list[Binding]:
        """Save; returns the registrations the change dropped."""
        try:
            return await self._store.save(
                account.id, doc["id"], doc=doc, summary=document.summary(doc),
                auth=document.sip_auth(doc, account.id), revision=revision,
                expected_revision=expected,
                old=document.indexes(old, account.realm) if old else NO_INDEXES,
                new=document.indexes(doc, account.realm), now=now,
                flush_bindings=old is not None and document.registrations_invalidated(old, doc),
            )
        except ValueTakenError as exc:
            errors = _unique_errors([exc])
            await self._add_unique_errors(errors, account, doc)  # every other value taken, too
            raise ValidationFailedError(errors) from None
        except DocumentMissingError:
            raise NotFoundError("device", doc["id"]) from None
        except DocumentExistsError:  # a fresh uuid4 never collides; treat as a lost race
            raise ConflictError("") from None

    @staticmethod
    def _check_if_match(current: str, if_match: str | None) -> None:
        if if_match is not None and if_match not in ("*", current):
            raise ConflictError(current)

    @staticmethod
    def _raise_if_pinned(if_match: str | None, exc: RevisionConflictError) -> None:
        if if_match is not None:
            raise ConflictError(str(exc.args[0]) if exc.args else "") from None


def _sync_flag(data: dict) -> bool:
    """Take the ``sync`` request flag out of ``data`` (it is never stored)."""
    flag = data.pop("sync", False)
    if not isinstance(flag, bool):
        errors: FieldErrors = {}
        add_field_error(errors, "sync", "type", "Value did not match type(s): boolean", value=flag)
        raise ValidationFailedError(errors)
    return flag


def _matches(value: object, text: str) -> bool:
    if isinstance(value, bool):
        return text.lower() == ("true" if value else "false")
    return value is not None and str(value) == text
