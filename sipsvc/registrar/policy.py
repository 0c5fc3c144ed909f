"""Registrar policy (RFC 3261 §10.3 steps 6–8, RFC 5626/5627 instances, RFC 3327 Path): what a
REGISTER asks for, decided in pure code. The store applies the decision atomically and checks
what needs the stored state (Call-ID/CSeq ordering, the contact limit).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..sip.errors import SipParseError
from ..sip.headers import cseq_of, parse_name_addr
from ..sip.message import Request
from ..sip.uri import SipUri, format_params
from .errors import RegistrarError, RegistrarErrorCode as Code

MAX_USER_AGENT = 256


@dataclass(frozen=True)
class RegistrarPolicy:
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    max_contacts: int = 10


@dataclass(frozen=True)
class Binding:
    """One contact bound to a device (the AOR), with where and how it registered."""

    id: str  # "+sip.instance|reg-id" or the normalised contact URI
    contact: str  # the Contact URI exactly as the phone sent it
    expires_at: float
    registered_at: float
    call_id: str
    cseq: int
    source: str  # "ip:port" the REGISTER came from
    transport: str  # "udp" or "tcp"
    user_agent: str = ""
    path: tuple[str, ...] = ()
    instance: str | None = None
    reg_id: str | None = None
    q: str | None = None
    connection: str | None = None  # node/connection holding a TCP flow

    # Written out for speed (see "Written-out __init__" at the top of sip/message.py).
    def __init__(self, id: str, contact: str, expires_at: float, registered_at: float, call_id: str,  # noqa: A002
                 cseq: int, source: str, transport: str, user_agent: str = "", path: tuple[str, ...] = (),
                 instance: str | None = None, reg_id: str | None = None, q: str | None = None,
                 connection: str | None = None) -> None:
        fields = self.__dict__
        fields["id"] = id
        fields["contact"] = contact
        fields["expires_at"] = expires_at
        fields["registered_at"] = registered_at
        fields["call_id"] = call_id
        fields["cseq"] = cseq
        fields["source"] = source
        fields["transport"] = transport
        fields["user_agent"] = user_agent
        fields["path"] = path
        fields["instance"] = instance
        fields["reg_id"] = reg_id
        fields["q"] = q
        fields["connection"] = connection


@dataclass(frozen=True)
class RegisterPlan:
    """What one REGISTER asks the store to do."""

    call_id: str
    cseq: int
    remove_all: bool = False  # Contact: * with Expires: 0
    bindings: tuple[Binding, ...] = field(default_factory=tuple)  # expires_at <= now removes


@dataclass(frozen=True)
class Source:
    ip: str
    port: int
    transport: str  # "udp" or "tcp"
    connection: str | None = None

    # Written out for speed (see "Written-out __init__" at the top of sip/message.py).
    def __init__(self, ip: str, port: int, transport: str, connection: str | None = None) -> None:
        fields = self.__dict__
        fields["ip"] = ip
        fields["port"] = port
        fields["transport"] = transport
        fields["connection"] = connection

    @property
    def address(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


def _expires_value(text: str | None, policy: RegistrarPolicy) -> int | None:
    """An Expires value as a number of seconds; None when absent. Values that are not numbers
    fall back to the default, huge ones are capped (RFC 4475 §3.1.2.4)."""
    if text is None:
        return None
    text = text.strip()
    if not text.isdigit():
        return policy.default_expires
    return min(int(text[:12]), 2**31 - 1)


def _grant(requested: int, policy: RegistrarPolicy) -> int:
    """The interval granted for a requested one (0 stays 0: a removal)."""
    if requested == 0:
        return 0
    if requested < policy.min_expires:
        raise RegistrarError(Code.INTERVAL_TOO_BRIEF, min_expires=policy.min_expires)
    return min(requested, policy.max_expires)


def binding_id(uri: SipUri, instance: str | None, reg_id: str | None) -> str:
    """RFC 5626 §6: one binding per instance and flow; otherwise per contact URI, compared with
    a lower-cased scheme and host (RFC 3261 §19.1.4)."""
    if instance:
        return f"{instance}|{reg_id or ''}"
    host = uri.host.lower()
    if host == uri.host:  # the usual case: the URI as it is
        return str(uri)
    return str(SipUri(uri.scheme, uri.user, uri.password, host, uri.port, uri.params, uri.headers))


def plan_register(request: Request, source: Source, now: float, policy: RegistrarPolicy) -> RegisterPlan:
    """Read a REGISTER's contacts and intervals into a plan, or raise RegistrarError."""
    try:
        cseq = cseq_of(request)
        contacts = request.values("Contact")
        header_expires = _expires_value(request.header("Expires"), policy)
        call_id = request.header("Call-ID") or ""
        if contacts == ["*"]:
            if header_expires != 0:
                raise RegistrarError(Code.BAD_REQUEST, "Contact: * needs Expires: 0")
            return RegisterPlan(call_id, cseq.number, remove_all=True)
        if "*" in contacts:
            raise RegistrarError(Code.BAD_REQUEST, "Contact: * must be the only contact")
        user_agent = (request.header("User-Agent") or "")[:MAX_USER_AGENT]
        path = tuple(request.values("Path"))
        bindings = []
        for text in contacts:
            contact = parse_name_addr(text)
            if not isinstance(contact.uri, SipUri):
                raise RegistrarError(Code.BAD_REQUEST, "Contact must be a SIP or SIPS URI")
            requested = _expires_value(contact.param("expires"), policy)
            if requested is None:
                requested = header_expires if header_expires is not None else policy.default_expires
            interval = _grant(requested, policy)
            instance, reg_id = contact.param("+sip.instance"), contact.param("reg-id")
            bindings.append(Binding(
                id=binding_id(contact.uri, instance, reg_id), contact=str(contact.uri),
                expires_at=now + interval, registered_at=now, call_id=call_id, cseq=cseq.number,
                source=source.address, transport=source.transport, user_agent=user_agent,
                path=path, instance=instance, reg_id=reg_id, q=contact.param("q"),
                connection=source.connection,
            ))
    except SipParseError as exc:
        raise RegistrarError(Code.BAD_REQUEST, exc.reason) from None
    return RegisterPlan(call_id, cseq.number, bindings=tuple(bindings))


def contact_values(bindings: list[Binding], now: float) -> list[str]:
    """The Contact values of a 200 OK: every current binding with its remaining time (§10.3 step 8)."""
    values = []
    for binding in bindings:
        params = [("expires", str(max(int(binding.expires_at - now), 0)))]
        if binding.instance:
            params.append(("+sip.instance", binding.instance))
        if binding.reg_id:
            params.append(("reg-id", binding.reg_id))
        if binding.q:
            params.append(("q", binding.q))
        values.append(f"<{binding.contact}>{format_params(tuple(params))}")
    return values
