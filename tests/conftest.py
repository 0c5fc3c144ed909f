"""Shared fixtures: a real Redis (the one at SIPSVC_TEST_REDIS_URL, else 127.0.0.1:6379 db 15,
else an embedded server started for the session), and the real app served over loopback HTTP.

Only the test database is ever flushed, once per session: every test makes its own accounts,
so tests never see each other's data.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, replace

import pytest
import redis

from sipsvc.config import Config, HostPort
from sipsvc.store.connection import redis_server_binary

DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/15"
# Failed digest attempts are counted per source address in the shared test Redis, and nearly
# every test registers from 127.0.0.1 (many with a wrong password on purpose): the apps of the
# session never ban it. Tests of bans set their own thresholds and use addresses of their own.
UNREACHABLE_FAILURES = "1000000"


def _reachable(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.ping()
        client.close()
        return True
    except (redis.RedisError, OSError):
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url():
    url = os.environ.get("SIPSVC_TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)
    server = None
    workdir = None
    if not _reachable(url):
        if "SIPSVC_TEST_REDIS_URL" in os.environ:
            pytest.fail(f"SIPSVC_TEST_REDIS_URL={url} is not reachable")
        # No Redis here (a user's machine): start the embedded server binary for the session.
        workdir = tempfile.mkdtemp(prefix="sipsvc-test-redis-")
        port = free_port()
        server = subprocess.Popen(
            [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/15"
        deadline = time.monotonic() + 10
        while not _reachable(url):
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail("could not start an embedded redis-server for the tests")
            time.sleep(0.05)
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    yield url
    if server is not None:
        server.terminate()
        server.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


ADMIN_TOKEN = "test-admin-token-0123456789"


@pytest.fixture
def config(redis_url, tmp_path) -> Config:
    return Config(redis_url=redis_url, admin_token=ADMIN_TOKEN, data_dir=tmp_path,
                  sip=HostPort("127.0.0.1", 0), max_failures_per_source=int(UNREACHABLE_FAILURES),
                  max_failures_per_user=int(UNREACHABLE_FAILURES))


@dataclass
class Api:
    """A client of the running app, with helpers that keep tests short."""

    client: object  # aiohttp TestClient

    async def call(self, method: str, path: str, *, token: str | None = ADMIN_TOKEN,
                   json=None, data=None, headers=None, params=None):
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["X-Auth-Token"] = token
        response = await self.client.request(
            method, path, json=json, data=data, headers=all_headers, params=params
        )
        body = await response.json(content_type=None)
        return response, body

    @property
    def sip_address(self) -> tuple[str, int]:
        from sipsvc.app import SIP_LISTENERS

        return self.client.server.app[SIP_LISTENERS].address

    async def new_account(self, name: str = "Acme", realm: str | None = None) -> dict:
        realm = realm or f"{os.urandom(6).hex()}.sip.test"
        response, body = await self.call("PUT", "/v2/accounts", json={"data": {"name": name, "realm": realm}})
        assert response.status == 201, body
        account = body["data"]
        _, auth = await self.call("PUT", "/v2/api_auth", token=None,
                                  json={"data": {"api_key": account["api_key"]}})
        account["token"] = auth["auth_token"]
        return account

    async def new_device(self, account: dict, data: dict) -> dict:
        response, body = await self.call(
            "PUT", f"/v2/accounts/{account['id']}/devices", token=account["token"], json={"data": data}
        )
        assert response.status == 201, body
        return body["data"]


@pytest.fixture
async def api(aiohttp_client, config) -> Api:
    from sipsvc.app import create_app

    return Api(await aiohttp_client(create_app(config)))


@pytest.fixture
def make_api(aiohttp_client, config):
    """For tests that need a differently configured app."""
    from sipsvc.app import create_app

    async def make(**changes) -> Api:
        return Api(await aiohttp_client(create_app(replace(config, **changes))))

    return make
