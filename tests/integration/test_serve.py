"""``sipsvc serve`` as a user runs it: a real process on the embedded store, restarted (cleanly
and by SIGKILL) without losing a device, and refusing bad configuration with one clear line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

ADMIN = "serve-test-admin-token"


class Service:
    def __init__(self, data_dir: Path, *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "SIPSVC_ADMIN_TOKEN": ADMIN}
        env.pop("SIPSVC_REDIS_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sipsvc", "serve", "--data-dir", str(data_dir),
             "--http", f"127.0.0.1:{self.port}", "--sip", "127.0.0.1:0", *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 20
        while True:
            assert self.process.poll() is None, self.process.communicate()
            try:
                self.request("GET", "/v2/accounts/x")
                return
            except urllib.error.URLError:
                assert time.monotonic() < deadline, "sipsvc serve did not start"
                time.sleep(0.05)

    def request(self, method: str, path: str, data: dict | None = None, token: str = ADMIN):
        body = json.dumps({"data": data}).encode() if data is not None else None
        request = urllib.request.Request(self.base + path, data=body, method=method,
                                         headers={"X-Auth-Token": token})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        self.process.send_signal(sig)
        _, stderr = self.process.communicate(timeout=20)
        return self.process.returncode, stderr


def _fill(service: Service, count: int) -> tuple[str, dict[str, dict]]:
    status, account = service.request("PUT", "/v2/accounts", {"name": "Acme", "realm": "acme.sip.test"})
    assert status == 201
    account_id = account["data"]["id"]
    devices = {}
    for i in range(count):
        status, body = service.request("PUT", f"/v2/accounts/{account_id}/devices",
                                       {"name": f"phone {i}", "sip": {"username": f"u{i}", "password": "secret1"}})
        assert status == 201
        devices[body["data"]["id"]] = body["data"]
    return account_id, devices


def _assert_all_there(service: Service, account_id: str, devices: dict[str, dict]) -> None:
    status, listing = service.request("GET", f"/v2/accounts/{account_id}/devices?paginate=false")
    assert status == 200
    assert sorted(row["id"] for row in listing["data"]) == sorted(devices)
    for device_id, device in devices.items():
        assert service.request("GET", f"/v2/accounts/{account_id}/devices/{device_id}")[1]["data"] == device


def test_serve_logs_its_store_and_address_and_keeps_devices_across_a_restart(tmp_path):
    service = Service(tmp_path)
    account_id, devices = _fill(service, 25)
    code, stderr = service.stop()
    assert code == 0
    assert "store: embedded redis" in stderr and f"http://127.0.0.1:{service.port}" in stderr
    assert (tmp_path / "appendonlydir").exists() or (tmp_path / "sipsvc.aof").exists()
    restarted = Service(tmp_path)
    _assert_all_there(restarted, account_id, devices)
    # Credentials are still enforced after the restart.
    status, body = restarted.request("PUT", f"/v2/accounts/{account_id}/devices",
                                     {"name": "dup", "sip": {"username": "U3", "password": "secret1"}})
    assert status == 400 and "sip.username" in body["data"]
    assert restarted.stop()[0] == 0


def test_a_killed_service_loses_no_acknowledged_write(tmp_path):
    service = Service(tmp_path)
    account_id, devices = _fill(service, 10)
    service.stop(signal.SIGKILL)
    restarted = Service(tmp_path)
    _assert_all_there(restarted, account_id, devices)
    assert restarted.stop()[0] == 0


@pytest.mark.parametrize("args,setting", [
    (["--http", "nonsense"], "http"),
    (["--sip", "127.0.0.1:70000"], "sip"),
    (["--redis-url", "redis://127.0.0.1:1/0"], "redis_url"),
    (["--redis-url", "nosuch://x"], "redis_url"),
    (["--log-level", "loud"], "log_level"),
])
def test_bad_configuration_exits_with_one_line_naming_the_setting(tmp_path, args, setting):
    result = subprocess.run([sys.executable, "-m", "sipsvc", "serve", "--data-dir", str(tmp_path),
                             "--sip", "127.0.0.1:0", *args],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"sipsvc: error: {setting}:"), lines[0]


def test_an_unknown_config_key_is_named(tmp_path):
    config = tmp_path / "sipsvc.toml"
    config.write_text('http = "127.0.0.1:0"\nredis_uri = "redis://x"\n')
    result = subprocess.run([sys.executable, "-m", "sipsvc", "serve", "--config", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert result.stderr.strip() == f"sipsvc: error: redis_uri: unknown setting in {config}"


def test_a_second_service_on_the_same_data_dir_is_refused_and_harms_nothing(tmp_path):
    service = Service(tmp_path)
    account_id, devices = _fill(service, 3)
    result = subprocess.run(
        [sys.executable, "-m", "sipsvc", "serve", "--data-dir", str(tmp_path), "--http", f"127.0.0.1:{free_port()}",
         "--sip", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=30, env={**os.environ, "SIPSVC_ADMIN_TOKEN": ADMIN},
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("sipsvc: error: data_dir:"), result.stderr
    _assert_all_there(service, account_id, devices)
    assert service.stop()[0] == 0


def test_an_http_address_in_use_is_named_and_stops_the_embedded_store(tmp_path):
    service = Service(tmp_path / "first")
    result = subprocess.run(
        [sys.executable, "-m", "sipsvc", "serve", "--data-dir", str(tmp_path / "second"),
         "--http", f"127.0.0.1:{service.port}", "--sip", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=30, env={**os.environ, "SIPSVC_ADMIN_TOKEN": ADMIN},
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("sipsvc: error: http:"), result.stderr
    pid_file = tmp_path / "second" / "redis.pid"
    assert not pid_file.exists() or not Path(f"/proc/{pid_file.read_text().strip()}").exists()
    assert service.stop()[0] == 0
