"""The store layer's one error family."""


class StoreError(Exception):
    """Base of every error raised by ``sipsvc.store``."""


class StoreUnavailableError(StoreError):
    """Redis cannot be reached; ``setting`` names the configuration setting at fault."""

    def __init__(self, message: str, setting: str = "redis_url") -> None:
        super().__init__(message)
        self.setting = setting


class RevisionConflictError(StoreError):
    """The document changed since the revision the write was based on."""


class DocumentExistsError(StoreError):
    """A create found a document already stored under the same id."""


class DocumentMissingError(StoreError):
    """An update or delete found no stored document."""


class ValueTakenError(StoreError):
    """A value that must be unique is held by another document.

    ``kind`` names the index (``mac``, ``sip_username``, ``sip_ip``, ``realm``), ``value`` the
    contested value and ``holder`` the id of the document that holds it.
    """

    def __init__(self, kind: str, value: str, holder: str) -> None:
        super().__init__(f"{kind} {value!r} is held by {holder}")
        self.kind = kind
        self.value = value
        self.holder = holder


def _redis_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import RedisClusterException, RedisError

    # RedisClusterException (no reachable cluster node) is not a RedisError.
    return (RedisError, RedisClusterException, OSError)


# What a Redis command can raise when the store is unreachable or failing: catch this tuple.
REDIS_ERRORS = _redis_errors()
