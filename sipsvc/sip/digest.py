"""HTTP Digest authentication for SIP, server and client side.

Implements RFC 3261 §22.4 (Digest in SIP) with the auth-param grammar of RFC 3261 §25.1 and
RFC 7235 §2.1 (RFC 7230 §3.2.6 token / quoted-string, §7 empty list elements); RFC 7616 §3.3
(challenge), §3.4.1-§3.4.3 (response, A1 with -sess, A2), §3.7 (preferred challenge first),
checked against the §3.9.1 examples; RFC 8760 §2.1-§2.4 (SHA-256 in SIP, offered before MD5).

Decisions (where the RFCs leave a choice, or where we refuse something):
- Algorithms: MD5 and SHA-256, plus MD5-sess and SHA-256-sess when verifying. SHA-512-256,
  userhash and username* are not supported: such credentials raise DigestError.
- qop: only "auth". We always challenge with qop="auth", so a server-side response without qop
  (RFC 2069 style) is refused, as is qop=auth-int (we do not hash bodies). As a client we still
  answer challenges without qop, since phones may send them (RFC 2617 §3.2.2.1).
- nc must be exactly 8 lower-case hex digits (RFC 7616 nc-value = 8LHEX): it is kept as an int
  and re-rendered that way for the hash, so any other spelling would verify wrongly.
- Nonces are stateless: base64url(8-byte issue time in ms | salt | first 16 bytes of
  BLAKE2b keyed with the secret over realm | time | salt, personalised "sipsvc-nonce-v2"). BLAKE2b
  is a MAC when keyed (RFC 7693 §2.9); Python's own is four times cheaper than an OpenSSL
  HMAC-SHA256 call and every REGISTER checks or issues one. Any node sharing the secret can check them,
  with no storage. Within its lifetime a nonce can be replayed; refusing repeated nc values needs
  state and is left to the caller (keep the lifetime short).
- verify() checks only the response. The caller checks the realm, the nonce (NonceSigner.check)
  and that the uri names the Request-URI (RFC 7616 §3.4.6).
- Every refusal of text from the network is a DigestError with a human-readable reason; callers
  answer it with a fresh challenge. ValueError is kept for programming errors (bad secret, salt).
- Hashes are over UTF-8; surrogateescape restores octets that a bytes->str decode escaped.
"""

from __future__ import annotations

import base64
import enum
import functools
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import NamedTuple

from .errors import SipError


class DigestError(SipError):
    """A malformed, unsupported or unusable Digest header; `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Algorithm(NamedTuple):
    name: str  # canonical spelling, as rendered in headers
    hash_name: str  # hashlib name
    sess: bool  # RFC 7616 §3.4.2: A1 also covers nonce and cnonce
    hex_len: int


_ALGORITHMS = {a.name.lower(): a for a in (
    _Algorithm("MD5", "md5", False, 32), _Algorithm("MD5-sess", "md5", True, 32),
    _Algorithm("SHA-256", "sha256", False, 64), _Algorithm("SHA-256-sess", "sha256", True, 64),
)}

# The constructors themselves: hashlib.new(name) looks the name up on every call.
_HASHES = {"md5": hashlib.md5, "sha256": hashlib.sha256}


def _algorithm(name: str) -> _Algorithm:
    # RFC 7616 §3.3: algorithm names are case-insensitive.
    found = _ALGORITHMS.get(name.lower())
    if found is None:
        raise DigestError(f"unsupported algorithm {name[:32]!r}")
    return found


# Each pattern is a single character class: a match can never backtrack, so parsing stays O(n).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 7230 tchar (a superset of RFC 3261)
_LWS = re.compile(r"[ \t\r\n]*")
_LWS_OR_COMMA = re.compile(r"[ \t\r\n,]*")
_QDTEXT = re.compile(r'[^"\\\x00-\x08\x0a-\x1f\x7f]*')
_CTL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # HTAB is allowed in quoted strings


def _token(text: str, pos: int, what: str) -> tuple[str, int]:
    match = _TOKEN.match(text, pos)
    if match is None:
        raise DigestError(f"expected {what} at offset {pos}")
    return match.group(), match.end()


def _quoted(text: str, pos: int) -> tuple[str, int]:
    """Read the quoted-string whose opening quote is at `pos`; returns (unescaped, end)."""
    pieces = []
    pos += 1
    while True:
        match = _QDTEXT.match(text, pos)
        pieces.append(match.group())
        pos = match.end()
        if pos >= len(text):
            raise DigestError("unterminated quoted-string")
        char = text[pos]
        if char == '"':
            return "".join(pieces), pos + 1
        if char != "\\" or pos + 1 >= len(text):
            raise DigestError(f"control character or dangling escape at offset {pos}")
        if _CTL.match(text, pos + 1):
            # quoted-pair allows most CTLs, but none can be re-sent safely; refuse them all.
            raise DigestError(f"escaped control character at offset {pos}")
        pieces.append(text[pos + 1])
        pos += 2


_TCHAR = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
# One whole auth-param and the separator after it, in one match (the per-REGISTER fast path).
# The alternatives of the quoted-string start with different characters, so matching stays linear.
_FAST_SCHEME = re.compile(rf"[ \t]*({_TCHAR}+)[ \t]+")
_QDTEXT_RUN = r'[^"\\\x00-\x08\x0a-\x1f\x7f]*'
_QUOTED_PAIR = r"\\[^\x00-\x08\x0a-\x1f\x7f]"
# The quoted-string as "unrolled loop" (a run of plain characters, then quoted-pairs each
# followed by another run): the same language as (qdtext|quoted-pair)*, matched a run at a time
# instead of one alternation per character.
_FAST_PARAM = re.compile(
    rf'({_TCHAR}+)[ \t]*=[ \t]*(?:"({_QDTEXT_RUN}(?:{_QUOTED_PAIR}{_QDTEXT_RUN})*)"'
    rf"|({_TCHAR}+))[ \t]*(?:,[ \t,]*|\Z)"
)
_ESCAPED = re.compile(r"\\(.)")


def _parse_fast(value: str) -> tuple[str, dict[str, str]] | None:
    """The common, well-formed case in a few regex matches; None sends the value to the
    careful parser, which also explains what is wrong."""
    match = _FAST_SCHEME.match(value)
    if match is None:
        return None
    scheme, pos, params = match.group(1), match.end(), {}
    while pos < len(value):
        match = _FAST_PARAM.match(value, pos)
        if match is None:
            return None
        key, quoted, token = match.group(1).lower(), match.group(2), match.group(3)
        if key in params:
            return None
        if quoted is None:
            params[key] = token
        else:
            params[key] = _ESCAPED.sub(r"\1", quoted) if "\\" in quoted else quoted
        pos = match.end()
    return scheme, params


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """Parse `scheme auth-param, ...` from one (Proxy-)Authorization or -Authenticate value
    (SIP never comma-joins these headers, RFC 3261 §7.3.1).

    Returns the scheme as written and the params (lower-cased names, unquoted values).
    Raises DigestError on any syntax error or repeated param, and nothing else; linear time.
    """
    if not isinstance(value, str):
        raise DigestError("header value is not text")
    return _parse_fast(value) or _parse_careful(value)


def _parse_careful(value: str) -> tuple[str, dict[str, str]]:
    """Character by character, with an error that says where the value goes wrong."""
    pos = _LWS.match(value).end()
    scheme, pos = _token(value, pos, "auth scheme")
    if pos < len(value) and value[pos] not in " \t\r\n":
        raise DigestError("auth scheme must be followed by whitespace")
    params: dict[str, str] = {}
    pos = _LWS_OR_COMMA.match(value, pos).end()
    while pos < len(value):
        name, pos = _token(value, pos, "parameter name")
        pos = _LWS.match(value, pos).end()
        if pos >= len(value) or value[pos] != "=":
            raise DigestError(f"parameter {name[:32]!r} has no value")
        pos = _LWS.match(value, pos + 1).end()
        if pos < len(value) and value[pos] == '"':
            param, pos = _quoted(value, pos)
        else:
            param, pos = _token(value, pos, "parameter value")
        key = name.lower()
        if key in params:
            raise DigestError(f"duplicate parameter {key[:32]!r}")
        params[key] = param
        pos = _LWS.match(value, pos).end()
        if pos < len(value) and value[pos] != ",":
            raise DigestError(f"expected ',' at offset {pos}")
        pos = _LWS_OR_COMMA.match(value, pos).end()
    return scheme, params


def _quote(text: str) -> str:
    """Render a quoted-string (RFC 3261 §25.1), escaping quote and backslash."""
    if _CTL.search(text):
        raise DigestError("control characters cannot be sent in a quoted-string")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'



def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise DigestError("text cannot be encoded as UTF-8") from None


def _h(alg: _Algorithm, *parts: str) -> str:
    return _HASHES[alg.hash_name](b":".join(map(_encode, parts))).hexdigest()


def ha1(username: str, realm: str, password: str, algorithm: str) -> str:
    """H(username:realm:password), storable; for -sess the inner hash of A1 (RFC 7616 §3.4.2)."""
    return _h(_algorithm(algorithm), username, realm, password)


def _response(alg: _Algorithm, ha1_hex: str, nonce: str, cnonce: str, nc_hex: str,
              qop: str | None, method: str, uri: str) -> str:
    if alg.sess:
        ha1_hex = _h(alg, ha1_hex, nonce, cnonce)  # RFC 7616 §3.4.2
    ha2 = _h(alg, method, uri)  # RFC 7616 §3.4.3, qop=auth
    if qop is None:
        return _h(alg, ha1_hex, nonce, ha2)  # RFC 2069 form, client side only
    return _h(alg, ha1_hex, nonce, nc_hex, cnonce, qop, ha2)  # RFC 7616 §3.4.1



@dataclass(frozen=True)
class Credentials:
    """Digest credentials from an Authorization / Proxy-Authorization header (RFC 7616 §3.4)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str  # lower-case hex
    algorithm: str  # canonical name, e.g. "SHA-256"
    qop: str  # as sent; always "auth" in some letter case
    nc: int
    cnonce: str
    opaque: str | None = None

    # Written out for speed (see "Written-out __init__" at the top of sip/message.py).
    def __init__(self, username: str, realm: str, nonce: str, uri: str, response: str, algorithm: str,
                 qop: str, nc: int, cnonce: str, opaque: str | None = None) -> None:
        fields = self.__dict__
        fields["username"] = username
        fields["realm"] = realm
        fields["nonce"] = nonce
        fields["uri"] = uri
        fields["response"] = response
        fields["algorithm"] = algorithm
        fields["qop"] = qop
        fields["nc"] = nc
        fields["cnonce"] = cnonce
        fields["opaque"] = opaque


_REQUIRED = ("username", "realm", "nonce", "uri", "response")
_HEX = frozenset("0123456789abcdefABCDEF")
_LHEX = frozenset("0123456789abcdef")


def parse_credentials(value: str) -> Credentials:
    """Parse and validate Digest credentials; DigestError says what is malformed or refused."""
    scheme, params = parse_auth_params(value)
    if scheme.lower() != "digest":
        raise DigestError(f"unsupported auth scheme {scheme[:32]!r}")
    missing = [name for name in _REQUIRED if name not in params]
    if missing:
        raise DigestError("missing " + ", ".join(missing))
    alg = _algorithm(params.get("algorithm", "MD5"))  # RFC 7616 §3.3: absent means MD5
    qop = params.get("qop")
    if qop is None:
        raise DigestError("qop is required (RFC 2069 responses are refused)")
    if qop.lower() != "auth":
        raise DigestError(f"unsupported qop {qop[:32]!r}")
    if "nc" not in params or "cnonce" not in params:
        raise DigestError("nc and cnonce are required with qop")
    if params.get("userhash", "false").lower() != "false":
        raise DigestError("userhash is not supported")
    nc = params["nc"]
    if len(nc) != 8 or not set(nc) <= _LHEX:
        raise DigestError("nc must be 8 lower-case hex digits")
    response = params["response"]
    if len(response) != alg.hex_len or not set(response) <= _HEX:
        raise DigestError(f"response must be {alg.hex_len} hex digits for {alg.name}")
    creds = Credentials(
        username=params["username"], realm=params["realm"], nonce=params["nonce"],
        uri=params["uri"], response=response.lower(), algorithm=alg.name, qop=qop,
        nc=int(nc, 16), cnonce=params["cnonce"], opaque=params.get("opaque"),
    )
    for text in (creds.username, creds.realm, creds.nonce, creds.uri, creds.cnonce):
        _encode(text)  # refuse now what could not be hashed later
    return creds


def expected_response(creds: Credentials, method: str, ha1_hex: str) -> str:
    """The request-digest the client should have sent (RFC 7616 §3.4.1), as lower-case hex."""
    alg = _algorithm(creds.algorithm)
    return _response(alg, ha1_hex, creds.nonce, creds.cnonce, f"{creds.nc:08x}", creds.qop,
                     method, creds.uri)


def verify(creds: Credentials, method: str, password: str) -> bool:
    """True if the response matches (constant time); realm, nonce and uri are the caller's."""
    digest = ha1(creds.username, creds.realm, password, creds.algorithm)
    expected = expected_response(creds, method, digest).encode()
    return hmac.compare_digest(expected, creds.response.lower().encode("utf-8", "surrogatepass"))


class NonceStatus(enum.Enum):
    VALID = "valid"
    STALE = "stale"  # genuine but expired: re-challenge with stale=true (RFC 7616 §3.3)
    INVALID = "invalid"


_STAMP_LEN, _MAC_LEN = 8, 16  # a 128-bit BLAKE2b tag
_MIN_SALT, _MAX_SALT = 8, 64
_MAX_NONCE_CHARS = -(-(_STAMP_LEN + _MAX_SALT + _MAC_LEN) * 4 // 3)
_NONCE_PERSON = b"sipsvc-nonce-v2"  # domain separation if the secret is reused (at most 16 bytes)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class NonceSigner:
    """Stateless MAC-signed, time-stamped nonces (format: module docstring). `now` is
    wall-clock seconds (time.time()), so that every node sharing `secret` agrees."""

    def __init__(self, secret: bytes, lifetime: float, *, max_skew: float = 5.0) -> None:
        if len(secret) < 16:
            raise ValueError("the nonce secret must be at least 16 bytes")
        if not lifetime > 0 or not max_skew >= 0:
            raise ValueError("lifetime must be positive and max_skew not negative")
        # BLAKE2b takes keys of up to 64 bytes; a longer secret is hashed down to one.
        self._key = bytes(secret) if len(secret) <= 64 else hashlib.blake2b(bytes(secret)).digest()
        self._lifetime = lifetime
        self._max_skew = max_skew  # clocks of nodes sharing the secret differ a little

    def _mac(self, realm: str, body: bytes) -> bytes:
        realm_bytes = _encode(realm)
        message = len(realm_bytes).to_bytes(4, "big") + realm_bytes + body
        return hashlib.blake2b(message, key=self._key, digest_size=_MAC_LEN, person=_NONCE_PERSON).digest()

    def issue(self, realm: str, now: float, salt: bytes) -> str:
        """A fresh nonce for `realm`; `salt` is 8-64 random bytes from the caller's source."""
        if not _MIN_SALT <= len(salt) <= _MAX_SALT:
            raise ValueError(f"salt must be {_MIN_SALT} to {_MAX_SALT} bytes")
        if not 0 <= now < 1e15:  # also refuses NaN and infinities
            raise ValueError("now must be a wall-clock time in seconds")
        body = int(now * 1000).to_bytes(_STAMP_LEN, "big") + bytes(salt)
        return _b64(body + self._mac(realm, body))

    def check(self, nonce: str, realm: str, now: float) -> NonceStatus:
        """VALID, STALE (genuine, older than the lifetime) or INVALID. Never raises on `nonce`."""
        raw = _unb64(nonce)
        if raw is None or len(raw) < _STAMP_LEN + _MIN_SALT + _MAC_LEN:
            return NonceStatus.INVALID
        body, mac = raw[:-_MAC_LEN], raw[-_MAC_LEN:]
        if not hmac.compare_digest(mac, self._mac(realm, body)):
            return NonceStatus.INVALID
        age = now - int.from_bytes(body[:_STAMP_LEN], "big") / 1000
        if not age >= -self._max_skew:  # from the future (or now is NaN)
            return NonceStatus.INVALID
        return NonceStatus.STALE if age > self._lifetime else NonceStatus.VALID


def _unb64(nonce: str) -> bytes | None:
    if not (isinstance(nonce, str) and 0 < len(nonce) <= _MAX_NONCE_CHARS and nonce.isascii()):
        return None
    try:
        raw = base64.b64decode(nonce + "=" * (-len(nonce) % 4), altchars=b"-_", validate=True)
    except ValueError:  # binascii.Error included
        return None
    # Only the canonical spelling is accepted, so one nonce has exactly one string form.
    return raw if _b64(raw) == nonce else None


@dataclass(frozen=True)
class Challenge:
    """One WWW-Authenticate / Proxy-Authenticate Digest challenge (RFC 7616 §3.3)."""

    realm: str
    nonce: str
    algorithm: str
    opaque: str | None = None
    stale: bool = False
    qop: str = "auth"

    def __post_init__(self) -> None:
        object.__setattr__(self, "algorithm", _algorithm(self.algorithm).name)
        if self.qop != "auth":
            raise DigestError("only qop=auth is supported")

    def header_value(self) -> str:
        parts = [f"realm={_quote(self.realm)}", f"nonce={_quote(self.nonce)}",
                 f"algorithm={self.algorithm}", f"qop={_quote(self.qop)}"]
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        return "Digest " + ", ".join(parts)


SERVER_ALGORITHMS = ("SHA-256", "MD5")


def challenges(realm: str, nonce: str, stale: bool = False,
               algorithms: tuple[str, ...] = SERVER_ALGORITHMS) -> list[Challenge]:
    """The challenges to send, one header each, most preferred first (RFC 8760 §2.4,
    RFC 7616 §3.7): by default SHA-256, then MD5 for phones that know nothing better."""
    return [Challenge(realm, nonce, algorithm, stale=stale) for algorithm in algorithms]


_PLAIN_NONCE = re.compile(r"[A-Za-z0-9_\-]+")  # what NonceSigner issues: base64url, nothing to escape


def challenge_values(realm: str, nonce: str, stale: bool = False,
                     algorithms: tuple[str, ...] = SERVER_ALGORITHMS) -> tuple[str, ...]:
    """The header values of ``challenges`` (the registrar sends one per REGISTER without
    credentials): everything but the nonce is the same for a realm, so it is rendered once."""
    if not _PLAIN_NONCE.fullmatch(nonce):
        return tuple(c.header_value() for c in challenges(realm, nonce, stale, algorithms))
    return tuple(f"{before}{nonce}{after}" for before, after in _challenge_frames(realm, stale, algorithms))


@functools.lru_cache(maxsize=1024)
def _challenge_frames(realm: str, stale: bool, algorithms: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(text before the nonce, text after it) of each challenge; a placeholder nonce marks the
    spot, and ``Challenge.header_value`` stays the one place that knows the format."""
    marker = "n0nceM4rk"
    frames = []
    for challenge in challenges(realm, marker, stale, algorithms):
        before, quoted_marker, after = challenge.header_value().rpartition(f'nonce="{marker}"')
        frames.append((f'{before}nonce="', f'"{after}'))
    return tuple(frames)


def _choose_qop(offered: str | None) -> str | None:
    if offered is None:
        return None  # RFC 2617 §3.2.2.1 compatibility with RFC 2069 servers
    if "auth" in {item.strip().lower() for item in offered.split(",")}:
        return "auth"
    raise DigestError(f"no supported qop in {offered[:32]!r}")


def authorization_header(challenge_params: dict[str, str], method: str, uri: str,
                         username: str, password: str, cnonce: str, nc: int) -> str:
    """Answer a challenge (params from parse_auth_params) with an Authorization value.

    `cnonce` is fresh random text from the caller's source; `nc` is 1 for a new nonce, then +1.
    Raises DigestError if the challenge lacks realm or nonce or offers nothing we support,
    ValueError if nc does not fit in 8 hex digits.
    """
    realm, nonce = challenge_params.get("realm"), challenge_params.get("nonce")
    if realm is None or nonce is None:
        raise DigestError("challenge lacks realm or nonce")
    alg = _algorithm(challenge_params.get("algorithm", "MD5"))
    qop = _choose_qop(challenge_params.get("qop"))
    if qop is None and alg.sess:
        raise DigestError(f"{alg.name} needs qop (A1 covers the cnonce)")
    if not 0 < nc <= 0xFFFFFFFF:
        raise ValueError("nc must fit in 8 hex digits and be positive")
    nc_hex = f"{nc:08x}"
    response = _response(alg, ha1(username, realm, password, alg.name), nonce, cnonce, nc_hex,
                         qop, method, uri)
    parts = [f"username={_quote(username)}", f"realm={_quote(realm)}",
             f"nonce={_quote(nonce)}", f"uri={_quote(uri)}", f"algorithm={alg.name}",
             f"response={_quote(response)}"]
    if qop is not None:
        parts += [f"qop={qop}", f"nc={nc_hex}", f"cnonce={_quote(cnonce)}"]
    if "opaque" in challenge_params:
        parts.append(f"opaque={_quote(challenge_params['opaque'])}")
    return "Digest " + ", ".join(parts)
