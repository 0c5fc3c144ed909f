"""Every Redis key name used by sipsvc, and nothing else formats one.

Keys of one account share the hash tag ``{a:<account_id>}`` so that a script touching an
account's devices and indexes stays in one Redis Cluster slot. Values that must be unique across
accounts (realms, SIP credentials, authn-by-IP addresses) are single-key *claims* outside any
account tag; they are taken and released with single-key scripts (see ``claims.py``).
"""

PREFIX = "sipsvc"
# Pub/sub channel: claim keys whose device auth record changed (see auth_cache.py).
AUTH_CHANNEL = f"{PREFIX}:auth-changed"


def _account(account_id: str) -> str:
    return f"{PREFIX}:{{a:{account_id}}}"


def account(account_id: str) -> str:
    """Hash: the account document."""
    return f"{_account(account_id)}:account"


ACCOUNT_PATTERN = f"{PREFIX}:{{a:*}}:account"  # SCAN pattern of every account document


def account_id_of(account_key: str) -> str:
    """The account id in a key made by ``account``."""
    return account_key[len(f"{PREFIX}:{{a:"):-len("}:account")]


def account_ids() -> str:
    """Set: every account id (for the metrics, which count registrations across accounts)."""
    return f"{PREFIX}:account-ids"


def account_ids_complete() -> str:
    """String: present once ``account_ids`` holds the accounts created before it existed."""
    return f"{PREFIX}:account-ids-complete"


def device(account_id: str, device_id: str) -> str:
    """Hash: ``rev`` and ``doc`` (JSON) of one device."""
    return f"{_account(account_id)}:device:{device_id}"


def device_ids(account_id: str) -> str:
    """Sorted set, all scores 0: the account's device ids in lexical order (for paging)."""
    return f"{_account(account_id)}:devices"


def device_summaries(account_id: str) -> str:
    """Hash: device id -> listing row (JSON)."""
    return f"{_account(account_id)}:device-summaries"


def device_macs(account_id: str) -> str:
    """Hash: normalised MAC address -> device id (MACs are unique per account)."""
    return f"{_account(account_id)}:device-macs"


def user_devices(account_id: str, user_id: str) -> str:
    """Set: ids of devices owned by, or hotdesked to, one user."""
    return f"{_account(account_id)}:user:{user_id}:devices"


def bindings(account_id: str, device_id: str) -> str:
    """Hash with a TTL: binding id -> binding (JSON) of one device's registered contacts."""
    return f"{_account(account_id)}:bindings:{device_id}"


def registered_devices(account_id: str) -> str:
    """Sorted set: device id -> expiry of its latest binding (registered while > now)."""
    return f"{_account(account_id)}:registered"


def registration_events(account_id: str) -> str:
    """Pub/sub channel: the account's registration events (JSON), published by the scripts
    that change bindings (see registration_events.py)."""
    return f"{_account(account_id)}:registration-events"


def account_of_registration_events(channel: str) -> str:
    """The account id of a ``registration_events`` channel name."""
    return channel[len(PREFIX) + 4:].partition("}")[0]


def sync_lock(account_id: str) -> str:
    """String with a TTL: held (by any node) while a bulk check-sync of the account runs."""
    return f"{_account(account_id)}:sync-lock"


def quickcall(account_id: str, call_id: str) -> str:
    """String with a TTL: the record (JSON) of a quickcall placed over SIP."""
    return f"{_account(account_id)}:quickcall:{call_id}"


def nonce_count(account_id: str, nonce: str) -> str:
    """String with a TTL: the highest digest nonce count seen for one nonce (replay guard)."""
    return f"{_account(account_id)}:nonce:{nonce}"


def nonce_secret() -> str:
    """String: the HMAC secret of digest nonces, shared by every node."""
    return f"{PREFIX}:nonce-secret"


def realm_claim(realm: str) -> str:
    """String claim: lower-cased realm -> account id."""
    return f"{PREFIX}:claim:realm:{realm.lower()}"


def sip_credentials_claim(realm: str, username: str) -> str:
    """String claim: SIP username within a realm (both lower-cased) -> device reference."""
    return f"{PREFIX}:claim:sip-user:{realm.lower()}:{username.lower()}"


SIP_CLAIMS_PATTERN = f"{PREFIX}:claim:sip-*"  # SCAN pattern of both kinds of SIP claims


def sip_ip_claim(ip: str) -> str:
    """String claim: address of an authn-by-IP device -> device reference."""
    return f"{PREFIX}:claim:sip-ip:{ip}"


def api_key(key_digest: str) -> str:
    """String: SHA-256 of an account API key -> account id."""
    return f"{PREFIX}:api-key:{key_digest}"


def auth_token(token_digest: str) -> str:
    """String with a TTL: SHA-256 of an auth token -> account id."""
    return f"{PREFIX}:auth-token:{token_digest}"


# -- password guessing (see bans.py) -----------------------------------------------------------
# Keys about one source address share the hash tag ``{src:<ip>}``, so the one script that counts
# a failed digest attempt and bans stays in one Redis Cluster slot.
BANS_CHANNEL = f"{PREFIX}:bans-changed"  # pub/sub: a ban was set or lifted (JSON)


def _source(ip: str) -> str:
    return f"{PREFIX}:{{src:{ip}}}"


def source_failures(ip: str) -> str:
    """String with a TTL (the window): failed digest attempts from one source address."""
    return f"{_source(ip)}:failures"


def user_source_failures(ip: str, account_id: str, username: str) -> str:
    """String with a TTL (the window): failed attempts from one source for one account's username."""
    return f"{_source(ip)}:failures:{account_id}:{username.lower()}"


def source_ban(ip: str) -> str:
    """String with a TTL (the ban): the source address is banned."""
    return f"{_source(ip)}:ban"


def user_source_ban(ip: str, account_id: str, username: str) -> str:
    """String with a TTL (the ban): the source may not try this account's username."""
    return f"{_source(ip)}:ban:{account_id}:{username.lower()}"


def username_failures(account_id: str) -> str:
    """Sorted set with a TTL (the window, from the latest failure): lower-cased username ->
    failed digest attempts on it from any address, while attempts keep coming."""
    return f"{_account(account_id)}:auth-failures"


def ban_index() -> str:
    """Hash: ban id -> ban record (JSON) of every ban, for the API and each node's ban cache;
    records past their ``until`` are ignored and pruned."""
    return f"{PREFIX}:bans"


def node_channel(node: str) -> str:
    """Pub/sub channel: messages for one sipsvc node (SIP it must send or pass on; relay.py)."""
    return f"{PREFIX}:node:{node}"


def nodes() -> str:
    """Sorted set: node id -> Redis time (seconds) of its latest heartbeat (relay.py)."""
    return f"{PREFIX}:nodes"
