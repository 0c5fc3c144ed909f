"""Service configuration: one frozen object built from defaults, a TOML file, the environment
and command-line flags (later sources win).

Every setting is declared once in ``SETTINGS``; its dotted name is the TOML key
(``api.token_ttl`` is ``token_ttl`` under ``[api]``), its environment variable and its parser
live beside it, so an error can always name the setting it is about.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from .sip.errors import SipParseError
from .sip.uri import SipUri, parse_uri


class ConfigError(Exception):
    """A setting has a value that cannot be used; the message names the setting."""


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_host_port(text: str) -> HostPort:
    """Parse ``HOST:PORT`` or ``[IPv6]:PORT``; the host may be a name or an address."""
    text = text.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"expected [IPv6]:PORT, got {text!r}")
        ipaddress.IPv6Address(host)
    else:
        host, sep, port = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"expected HOST:PORT, got {text!r}")
        if ":" in host:
            raise ValueError(f"an IPv6 address needs brackets: [{host}]:{port}")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"port must be a number from 0 to 65535, got {port!r}")
    return HostPort(host, int(port))


def _positive_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number")
    number = int(value)
    if number <= 0:
        raise ValueError(f"must be greater than 0, got {number}")
    return number


def _positive_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    number = float(value)
    if not number > 0:
        raise ValueError(f"must be greater than 0, got {value}")
    return number


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _optional_string(value: Any) -> str | None:
    return _string(value) or None


def _digest_algorithms(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError("expected a list such as [\"SHA-256\", \"MD5\"]")
    names = tuple(str(item).strip().upper() for item in items)
    unknown = [name for name in names if name not in ("SHA-256", "MD5")]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"expected SHA-256 and/or MD5, each once, got {list(items)}")
    return names


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _string(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _log_format(value: Any) -> str:
    text = _string(value).strip().lower()
    if text not in ("text", "json"):
        raise ValueError(f"expected text or json, got {value!r}")
    return text


def _gateway_uri(value: Any) -> str | None:
    """A SIP URI where quickcalls dial their number: ``sip:HOST[:PORT]`` (the number becomes the
    user part) or a URI with ``{number}`` as its user part; UDP only. Empty: none."""
    text = _string(value).strip()
    if not text:
        return None
    probe = text.replace("{number}", "0")
    if "{" in probe or "}" in probe:
        raise ValueError("the only placeholder is {number}")
    try:
        uri = parse_uri(probe)
    except SipParseError as exc:
        raise ValueError(f"not a SIP URI ({exc}); expected e.g. sip:192.0.2.10:5060") from None
    if not isinstance(uri, SipUri) or uri.scheme != "sip":
        raise ValueError("expected a sip: URI, e.g. sip:192.0.2.10:5060")
    if "{number}" in text and uri.user != "0":
        raise ValueError("{number} may only stand as the whole user part, e.g. sip:{number}@pbx.example.com")
    if "{number}" not in text and uri.user is not None:
        raise ValueError("leave the user part out (the number becomes it) or write it as {number}")
    if (uri.param("transport") or "udp").lower() != "udp":
        raise ValueError("only UDP is supported towards the gateway")
    return text


def _ban_action(value: Any) -> str:
    text = _string(value).strip().lower()
    if text not in ("forbid", "drop"):
        raise ValueError(f"expected forbid (answer 403) or drop (answer nothing), got {value!r}")
    return text


def _substrings(value: Any) -> tuple[str, ...]:
    """A list of strings (a comma-separated string from the environment); empty: none."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        raise ValueError('expected a list of strings such as ["friendly-scanner", "sipvicious"]')
    return tuple(item.strip() for item in items if item.strip())


def _non_negative_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    number = float(value)
    if not number >= 0:
        raise ValueError(f"must be 0 (off) or more, got {value}")
    return number


# User-Agent substrings of well-known SIP scanners (SIPVicious and its clones, sipcli, sip-scan,
# sundayddr, iWar); matched case-insensitively. Legitimate SDKs that attackers also use
# (e.g. "VaxSIPUserAgent") are left to the operator.
DEFAULT_SCANNERS = ("friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sundayddr", "iwar")


def _log_level(value: Any) -> str:
    level = _string(value).upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("expected one of debug, info, warning, error")
    return level


@dataclass(frozen=True)
class Config:
    http: HostPort = HostPort("127.0.0.1", 8000)
    sip: HostPort = HostPort("127.0.0.1", 5060)
    redis_url: str | None = None
    data_dir: Path = Path("./var")
    admin_token: str | None = field(default=None, repr=False)
    log_level: str = "INFO"
    log_format: str = "text"
    sip_trace: bool = False
    workers: int = 1
    token_ttl: int = 3600
    max_body_bytes: int = 1024 * 1024
    default_page_size: int = 50
    max_page_size: int = 1000
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    max_message_bytes: int = 65536
    tcp_idle_timeout: float = 600.0
    max_headers: int = 128
    max_line_length: int = 8192
    max_uri_length: int = 2048
    max_vias: int = 70
    tcp_message_timeout: float = 10.0
    tcp_max_buffered_bytes: int = 262144
    tcp_max_connections_per_source: int = 128
    tcp_max_connections: int = 4096
    max_pending_requests: int = 4096
    max_transactions: int = 200000
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    max_contacts: int = 10
    nonce_lifetime: int = 300
    digest_algorithms: tuple[str, ...] = ("SHA-256", "MD5")
    notify_rate: float = 200.0
    quickcall_allow_anonymous: bool = True
    quickcall_gateway: str | None = None
    max_failures_per_source: int = 20
    max_failures_per_user: int = 5
    failure_window: int = 300
    ban_seconds: int = 900
    ban_action: str = "forbid"
    drop_scanners: bool = True
    scanner_user_agents: tuple[str, ...] = DEFAULT_SCANNERS
    max_json_depth: int = 32
    rate_limit: float = 2000.0
    rate_burst: int = 4000
    cors_origins: tuple[str, ...] = ()


@dataclass(frozen=True)
class Setting:
    name: str  # dotted TOML name
    attr: str  # Config attribute
    env: str
    parse: Callable[[Any], Any]
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("http", "http", "SIPSVC_HTTP", lambda v: parse_host_port(_string(v)),
            "HTTP API listen address HOST:PORT"),
    Setting("sip", "sip", "SIPSVC_SIP", lambda v: parse_host_port(_string(v)),
            "SIP listen address HOST:PORT (UDP and TCP)"),
    Setting("redis_url", "redis_url", "SIPSVC_REDIS_URL", _optional_string,
            "Redis URL; empty starts an embedded Redis under data_dir"),
    Setting("data_dir", "data_dir", "SIPSVC_DATA_DIR", lambda v: Path(_string(v)),
            "directory for the embedded store and generated secrets"),
    Setting("admin_token", "admin_token", "SIPSVC_ADMIN_TOKEN", _optional_string,
            "admin token (works on every account); generated into data_dir if unset"),
    Setting("log_level", "log_level", "SIPSVC_LOG_LEVEL", _log_level, "debug, info, warning or error"),
    Setting("log_format", "log_format", "SIPSVC_LOG_FORMAT", _log_format,
            "text (one line per record) or json (one JSON object per line)"),
    Setting("sip_trace", "sip_trace", "SIPSVC_SIP_TRACE", _boolean,
            "log every SIP message sent and received, whole (Authorization values redacted)"),
    Setting("workers", "workers", "SIPSVC_WORKERS", _positive_int,
            "worker processes sharing the addresses (SO_REUSEPORT); use one per core"),
    Setting("api.token_ttl", "token_ttl", "SIPSVC_TOKEN_TTL", _positive_int,
            "seconds an auth token from /v2/api_auth stays valid"),
    Setting("api.max_body_bytes", "max_body_bytes", "SIPSVC_MAX_BODY_BYTES", _positive_int,
            "largest accepted request body in bytes"),
    Setting("api.default_page_size", "default_page_size", "SIPSVC_DEFAULT_PAGE_SIZE", _positive_int,
            "rows per page of a listing when page_size is not given"),
    Setting("api.max_page_size", "max_page_size", "SIPSVC_MAX_PAGE_SIZE", _positive_int,
            "largest page_size a listing accepts"),
    Setting("transactions.t1", "t1", "SIPSVC_T1", _positive_float, "RFC 3261 T1, seconds (RTT estimate)"),
    Setting("transactions.t2", "t2", "SIPSVC_T2", _positive_float, "RFC 3261 T2, seconds (retransmit cap)"),
    Setting("transactions.t4", "t4", "SIPSVC_T4", _positive_float, "RFC 3261 T4, seconds (network lifetime)"),
    Setting("transport.max_message_bytes", "max_message_bytes", "SIPSVC_MAX_MESSAGE_BYTES", _positive_int,
            "largest SIP message accepted (UDP: dropped; TCP: 413 and the connection closed)"),
    Setting("transport.tcp_idle_timeout", "tcp_idle_timeout", "SIPSVC_TCP_IDLE_TIMEOUT", _positive_float,
            "seconds a TCP connection may stay silent before it is closed"),
    Setting("transport.max_headers", "max_headers", "SIPSVC_MAX_HEADERS", _positive_int,
            "most header lines in a SIP message (more: 400, or dropped without a usable Via)"),
    Setting("transport.max_line_length", "max_line_length", "SIPSVC_MAX_LINE_LENGTH", _positive_int,
            "longest start or header line of a SIP message, characters (longer: 400)"),
    Setting("transport.max_uri_length", "max_uri_length", "SIPSVC_MAX_URI_LENGTH", _positive_int,
            "longest Request-URI (longer: 414) and From/To URI (longer: 400), characters"),
    Setting("transport.max_vias", "max_vias", "SIPSVC_MAX_VIAS", _positive_int,
            "most Via values in a request (more: 400)"),
    Setting("transport.tcp_message_timeout", "tcp_message_timeout", "SIPSVC_TCP_MESSAGE_TIMEOUT",
            _positive_float, "seconds a TCP message may take from its first byte to its last (slower: closed)"),
    Setting("transport.tcp_max_buffered_bytes", "tcp_max_buffered_bytes", "SIPSVC_TCP_MAX_BUFFERED_BYTES",
            _positive_int, "bytes held for one TCP connection, unframed input plus unsent output (more: closed)"),
    Setting("transport.tcp_max_connections_per_source", "tcp_max_connections_per_source",
            "SIPSVC_TCP_MAX_CONNECTIONS_PER_SOURCE", _positive_int,
            "open TCP connections from one IP address, per worker (more are closed at once)"),
    Setting("transport.tcp_max_connections", "tcp_max_connections", "SIPSVC_TCP_MAX_CONNECTIONS", _positive_int,
            "open TCP connections in all, per worker (more are closed at once)"),
    Setting("transport.max_pending_requests", "max_pending_requests", "SIPSVC_MAX_PENDING_REQUESTS",
            _positive_int, "requests waiting for the registrar, per worker (more get 503 with Retry-After)"),
    Setting("transport.max_transactions", "max_transactions", "SIPSVC_MAX_TRANSACTIONS", _positive_int,
            "SIP transactions alive per worker, about 2.4 KB each (past it new requests are dropped)"),
    Setting("registrar.min_expires", "min_expires", "SIPSVC_MIN_EXPIRES", _positive_int,
            "shortest registration accepted (shorter gets 423 with Min-Expires)"),
    Setting("registrar.max_expires", "max_expires", "SIPSVC_MAX_EXPIRES", _positive_int,
            "longest registration granted (longer requests are shortened)"),
    Setting("registrar.default_expires", "default_expires", "SIPSVC_DEFAULT_EXPIRES", _positive_int,
            "registration time when a REGISTER names none"),
    Setting("registrar.max_contacts", "max_contacts", "SIPSVC_MAX_CONTACTS", _positive_int,
            "most contacts one device may have registered"),
    Setting("registrar.nonce_lifetime", "nonce_lifetime", "SIPSVC_NONCE_LIFETIME", _positive_int,
            "seconds a digest nonce stays valid (then stale=true)"),
    Setting("registrar.digest_algorithms", "digest_algorithms", "SIPSVC_DIGEST_ALGORITHMS", _digest_algorithms,
            "digest algorithms offered, most preferred first (one WWW-Authenticate each)"),
    Setting("notify.rate", "notify_rate", "SIPSVC_NOTIFY_RATE", _positive_float,
            "check-sync NOTIFYs per second sent by a bulk sync of an account"),
    Setting("quickcall.allow_anonymous", "quickcall_allow_anonymous", "SIPSVC_QUICKCALL_ALLOW_ANONYMOUS",
            _boolean, "GET .../quickcall/{number} without a token rings any device (Kazoo's default)"),
    Setting("quickcall.gateway", "quickcall_gateway", "SIPSVC_QUICKCALL_GATEWAY", _gateway_uri,
            "SIP URI (UDP) where a placed quickcall dials the number, e.g. sip:192.0.2.10:5060; "
            "empty: calls are not placed"),
    Setting("security.max_failures_per_source", "max_failures_per_source", "SIPSVC_MAX_FAILURES_PER_SOURCE",
            _positive_int, "failed digest attempts from one address within failure_window that ban the address"),
    Setting("security.max_failures_per_user", "max_failures_per_user", "SIPSVC_MAX_FAILURES_PER_USER",
            _positive_int, "failed attempts on one account username from one address that ban that address "
            "from that username (other addresses are unaffected)"),
    Setting("security.failure_window", "failure_window", "SIPSVC_FAILURE_WINDOW", _positive_int,
            "seconds over which failed digest attempts are counted"),
    Setting("security.ban_seconds", "ban_seconds", "SIPSVC_BAN_SECONDS", _positive_int, "seconds a ban lasts"),
    Setting("security.ban_action", "ban_action", "SIPSVC_BAN_ACTION", _ban_action,
            "forbid (answer a banned source 403) or drop (answer it nothing)"),
    Setting("security.drop_scanners", "drop_scanners", "SIPSVC_DROP_SCANNERS", _boolean,
            "drop requests whose User-Agent contains one of scanner_user_agents, unanswered"),
    Setting("security.scanner_user_agents", "scanner_user_agents", "SIPSVC_SCANNER_USER_AGENTS", _substrings,
            "User-Agent substrings of SIP scanners (case-insensitive)"),
    Setting("api.max_json_depth", "max_json_depth", "SIPSVC_MAX_JSON_DEPTH", _positive_int,
            "deepest nesting of objects and arrays accepted in a request body (deeper: 400)"),
    Setting("api.rate_limit", "rate_limit", "SIPSVC_RATE_LIMIT", _non_negative_float,
            "requests per second allowed per token, per worker process (more: 429); 0: no limit"),
    Setting("api.rate_burst", "rate_burst", "SIPSVC_RATE_BURST", _positive_int,
            "requests a token may make at once above rate_limit"),
    Setting("api.cors_origins", "cors_origins", "SIPSVC_CORS_ORIGINS", _substrings,
            "origins (https://app.example.com, or *) whose browsers may call the API; empty: CORS off"),
)
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}
assert {s.attr for s in SETTINGS} == {f.name for f in fields(Config)}


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _apply(config: Config, values: Mapping[str, Any], source: str) -> Config:
    changes = {}
    for name, raw in values.items():
        setting = SETTINGS_BY_NAME.get(name)
        if setting is None:
            raise ConfigError(f"{name}: unknown setting in {source}")
        try:
            changes[setting.attr] = setting.parse(raw)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{name}: {exc} (from {source})") from None
    return replace(config, **changes)


def load_config(
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the configuration: defaults, then the TOML file, then ``SIPSVC_*`` variables,
    then ``overrides`` (dotted names, from command-line flags; ``None`` values are ignored)."""
    config = Config()
    if config_file is not None:
        try:
            with open(config_file, "rb") as handle:
                table = tomllib.load(handle)
        except OSError as exc:
            raise ConfigError(f"config: cannot read {config_file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config: {config_file} is not valid TOML: {exc}") from None
        config = _apply(config, _flatten(table), str(config_file))
    env = os.environ if env is None else env
    from_env = {s.name: env[s.env] for s in SETTINGS if s.env in env}
    config = _apply(config, from_env, "environment")
    flags = {name: value for name, value in (overrides or {}).items() if value is not None}
    config = _apply(config, flags, "command line")
    if config.default_page_size > config.max_page_size:
        raise ConfigError("api.default_page_size: must not exceed api.max_page_size")
    if config.min_expires > config.max_expires:
        raise ConfigError("registrar.max_expires: must not be shorter than min_expires")
    if not config.min_expires <= config.default_expires <= config.max_expires:
        raise ConfigError("registrar.default_expires: must lie between min_expires and max_expires")
    if config.t2 < config.t1:
        raise ConfigError("transactions.t2: must not be shorter than t1")
    if config.tcp_max_buffered_bytes < config.max_message_bytes:
        raise ConfigError("transport.tcp_max_buffered_bytes: must not be less than max_message_bytes")
    return config


def _safe_url(url: str) -> str:
    """``url`` without a password (``redis://:secret@host`` shows as ``redis://:***@host``)."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.partition(':')[0]}:***@{host}"


def summarize(config: Config) -> list[str]:
    """A short description of ``config`` for ``sipsvc config check``: where it listens, which
    store it uses, and which settings differ from their defaults (secrets are never shown)."""
    store = _safe_url(config.redis_url) if config.redis_url else f"embedded redis in {config.data_dir}"
    workers = "1 worker" if config.workers == 1 else f"{config.workers} workers"
    changed = [s.name for s in SETTINGS if getattr(config, s.attr) != getattr(Config(), s.attr)]
    return [
        f"HTTP API on {config.http}, SIP on udp+tcp {config.sip}, store {store}, {workers}",
        f"log level {config.log_level.lower()}, format {config.log_format}"
        + (", SIP trace on" if config.sip_trace else ""),
        f"differ from the defaults: {', '.join(changed) if changed else 'none'}",
    ]
