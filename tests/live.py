"""``sipsvc serve`` as a real process on the test Redis, for tests whose client is synchronous
(schemathesis, the operator CLI, a browser): the server must not share their thread."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from tests.conftest import UNREACHABLE_FAILURES, free_port

ADMIN = "live-test-admin-token"


class LiveServer:
    def __init__(self, redis_url: str, *args: str, env: dict | None = None) -> None:
        self.port = free_port()
        self.sip_port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data_dir = tempfile.mkdtemp(prefix="sipsvc-live-")
        # 127.0.0.1 is every test's address and its failures are counted in the shared Redis:
        # never ban it as a whole (a ban per username, as by default, touches one test's account).
        environment = {**os.environ, "SIPSVC_ADMIN_TOKEN": ADMIN,
                       "SIPSVC_MAX_FAILURES_PER_SOURCE": UNREACHABLE_FAILURES, **(env or {})}
        # A file, not a pipe: a chatty server must never block on a pipe nobody reads yet.
        self.log = open(os.path.join(self.data_dir, "stderr.log"), "w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sipsvc", "serve", "--redis-url", redis_url, "--data-dir", self.data_dir,
             "--http", f"127.0.0.1:{self.port}", "--sip", f"127.0.0.1:{self.sip_port}", *args],
            env=environment, stdout=subprocess.DEVNULL, stderr=self.log, text=True,
        )
        deadline = time.monotonic() + 20
        while True:
            assert self.process.poll() is None, self.stderr()
            try:
                urllib.request.urlopen(self.base + "/v2/openapi.json", timeout=2).close()
                return
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "sipsvc serve did not start"
                time.sleep(0.05)

    def request(self, method: str, path: str, data: dict | None = None, token: str | None = ADMIN):
        body = json.dumps({"data": data}).encode() if data is not None else None
        headers = {"X-Auth-Token": token} if token else {}
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def new_account(self, name: str = "Acme") -> dict:
        realm = f"{os.urandom(6).hex()}.sip.test"
        status, body = self.request("PUT", "/v2/accounts", {"name": name, "realm": realm})
        assert status == 201, body
        account = body["data"]
        status, auth = self.request("PUT", "/v2/api_auth", {"api_key": account["api_key"]}, token=None)
        assert status == 201, auth
        account["token"] = auth["auth_token"]
        return account

    def new_device(self, account: dict, data: dict) -> dict:
        status, body = self.request("PUT", f"/v2/accounts/{account['id']}/devices", data, token=account["token"])
        assert status == 201, body
        return body["data"]

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        stderr = self.stderr()
        self.log.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        return self.process.returncode, stderr
