"""Loads the Lua scripts in ``scripts/`` once and registers them with a client.

``register_script`` runs EVALSHA and reloads the script by itself after a NOSCRIPT (a Redis
restart or failover), so callers never see that error.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript


def _source(name: str) -> str:
    return resources.files(__package__).joinpath("scripts", f"{name}.lua").read_text()


@dataclass(frozen=True)
class Scripts:
    claim: AsyncScript
    release: AsyncScript
    save_device: AsyncScript
    delete_device: AsyncScript
    list_devices: AsyncScript
    save_bindings: AsyncScript
    record_auth_failure: AsyncScript

    @classmethod
    def register(cls, redis: aioredis.Redis) -> "Scripts":
        names = cls.__dataclass_fields__
        return cls(**{name: redis.register_script(_source(name)) for name in names})
