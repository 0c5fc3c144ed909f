"""The services' one error family (accounts, devices, and the services to come).

``sipsvc.api.errors`` turns each into an HTTP answer in Kazoo's error envelope, in one table;
nothing below the API knows about HTTP.
"""

from __future__ import annotations

from typing import Any

# Kazoo's validation error shape: dotted field path -> rule -> details.
FieldErrors = dict[str, dict[str, dict]]


class ServiceError(Exception):
    """Base of every error a service raises for its caller to answer."""


class NotFoundError(ServiceError):
    """No such document (or not visible to the caller)."""

    def __init__(self, kind: str, identifier: str) -> None:
        super().__init__(f"{kind} {identifier} not found")
        self.kind = kind
        self.identifier = identifier


class ValidationFailedError(ServiceError):
    def __init__(self, errors: FieldErrors) -> None:
        super().__init__("validation error")
        self.errors = errors


class ConflictError(ServiceError):
    """The write was based on a revision that is no longer current."""

    def __init__(self, current_revision: str) -> None:
        super().__init__("conflicting documents")
        self.current_revision = current_revision


class NotRegisteredError(ServiceError):
    """A check-sync for a device that no NOTIFY can reach (no live registration, or only TCP
    ones whose connection is gone); nothing was sent."""

    def __init__(self, device_id: str, reason: str) -> None:
        super().__init__(reason)
        self.device_id = device_id
        self.reason = reason


class SyncRunningError(ServiceError):
    """A bulk check-sync of the account is already running (on this node or another)."""


class AuthenticationError(ServiceError):
    """Missing, unknown or expired credentials."""


class ForbiddenError(ServiceError):
    """Valid credentials that do not reach the requested account or action."""


_SECRET_FIELDS = frozenset({"sip.password", "api_key"})


def add_field_error(errors: FieldErrors, path: str, rule: str, message: str, **details: Any) -> None:
    """Add one error under ``errors[path][rule]``; secrets are never echoed back."""
    entry = {"message": message, **details}
    if path in _SECRET_FIELDS:
        entry.pop("value", None)
        entry.pop("cause", None)
    errors.setdefault(path, {})[rule] = entry
