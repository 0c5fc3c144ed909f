"""The registrar's one error family, and the one table mapping each code to a SIP response."""

from __future__ import annotations

import enum


class RegistrarErrorCode(enum.Enum):
    BAD_REQUEST = "bad_request"
    NOT_FOUND = "not_found"  # the AOR's domain is no account's realm
    FORBIDDEN = "forbidden"  # bad credentials, disabled device, or not this AOR's device
    INTERVAL_TOO_BRIEF = "interval_too_brief"
    OUT_OF_ORDER = "out_of_order"  # same Call-ID, CSeq not higher than the stored one
    TOO_MANY_CONTACTS = "too_many_contacts"
    STORE_UNAVAILABLE = "store_unavailable"


# code -> (status, reason phrase); the one place registrar errors become SIP statuses.
SIP_STATUS = {
    RegistrarErrorCode.BAD_REQUEST: (400, "Bad Request"),
    RegistrarErrorCode.NOT_FOUND: (404, "Not Found"),
    RegistrarErrorCode.FORBIDDEN: (403, "Forbidden"),
    RegistrarErrorCode.INTERVAL_TOO_BRIEF: (423, "Interval Too Brief"),
    RegistrarErrorCode.OUT_OF_ORDER: (500, "Request Out Of Order"),
    RegistrarErrorCode.TOO_MANY_CONTACTS: (403, "Too Many Contacts"),
    RegistrarErrorCode.STORE_UNAVAILABLE: (503, "Service Unavailable"),
}


class RegistrarError(Exception):
    def __init__(self, code: RegistrarErrorCode, detail: str = "", *, min_expires: int | None = None) -> None:
        super().__init__(detail or code.value)
        self.code = code
        self.detail = detail
        self.min_expires = min_expires

    @property
    def status(self) -> int:
        return SIP_STATUS[self.code][0]

    @property
    def reason(self) -> str:
        return self.detail if self.code is RegistrarErrorCode.BAD_REQUEST and self.detail else SIP_STATUS[self.code][1]
