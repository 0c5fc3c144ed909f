"""SIPp, a real SIP implementation, against the running service: one scenario per outcome
(``sipp-scenarios/``), each run with ``-m 1``; exit status 0 means the expected outcome."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from tests.conftest import free_port

SCENARIOS = Path(__file__).resolve().parents[2] / "sipp-scenarios"
PASSWORD = "secret123"


def sipp_binary() -> str:
    binary = shutil.which("sipp")
    if binary is None:
        pytest.fail("sipp is not installed (Debian package sip-tester; scripts/test.sh installs it)")
    return binary


async def run_sipp(tmp_path: Path, address, scenario: str, realm: str, user: str, password: str,
                   transport: str = "u1") -> tuple[int, str]:
    users = tmp_path / "users.csv"
    users.write_text(f"SEQUENTIAL\n{user};[authentication username={user} password={password}];\n")
    errors = tmp_path / "errors.log"
    process = await asyncio.create_subprocess_exec(
        sipp_binary(), f"{address[0]}:{address[1]}", "-sf", str(SCENARIOS / scenario),
        "-inf", str(users), "-key", "domain", realm, "-i", "127.0.0.1", "-p", str(free_port()),
        "-t", transport, "-m", "1", "-recv_timeout", "5000", "-timeout", "20s", "-timeout_error",
        "-nostdin", "-trace_err", "-error_file", str(errors),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    log = errors.read_text(errors="replace") if errors.exists() else ""
    return process.returncode, stderr.decode(errors="replace") + log


async def registered(api, account) -> list[str]:
    _, body = await api.call("GET", f"/v2/accounts/{account['id']}/devices/status", token=account["token"])
    return [row["device_id"] for row in body["data"]]


@pytest.fixture
async def api(make_api):
    """SIPp 3.6 answers only the first challenge and only knows MD5: offer MD5 first."""
    return await make_api(digest_algorithms=("MD5", "SHA-256"))


@pytest.fixture
async def alice(api):
    account = await api.new_account()
    device = await api.new_device(account, {"name": "alice", "sip": {"username": "alice", "password": PASSWORD}})
    return account, device


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_sipp_registers_and_shows_up(api, alice, tmp_path, transport):
    account, device = alice
    code, log = await run_sipp(tmp_path, api.sip_address, "uac-register-expect-200.xml", account["realm"],
                               "alice", PASSWORD, transport)
    assert code == 0, log
    assert await registered(api, account) == [device["id"]]


@pytest.mark.parametrize("scenario,registered_after", [
    ("uac-register-wrong-password-expect-403.xml", False),
    ("uac-unregister-expect-200.xml", False),
    ("uac-register-star-expect-200.xml", False),
    ("uac-register-expect-423.xml", False),
    ("uac-register-several-contacts-expect-200.xml", True),
    ("uac-register-retransmit-expect-200.xml", True),
])
async def test_sipp_scenario(api, alice, tmp_path, scenario, registered_after):
    account, device = alice
    password = "not-the-password" if "wrong-password" in scenario else PASSWORD
    code, log = await run_sipp(tmp_path, api.sip_address, scenario, account["realm"], "alice", password)
    assert code == 0, log
    assert await registered(api, account) == ([device["id"]] if registered_after else [])


async def test_sipp_ip_authenticated_device(api, tmp_path):
    account = await api.new_account()
    device = await api.new_device(account, {"name": "pbx", "sip": {"method": "ip", "ip": "127.0.0.1"}})
    try:
        code, log = await run_sipp(tmp_path, api.sip_address, "uac-register-ip-auth-expect-200.xml",
                                   account["realm"], "pbx", "unused")
        assert code == 0, log
        assert await registered(api, account) == [device["id"]]
    finally:  # 127.0.0.1 is unique among IP devices: free it for other tests
        await api.call("DELETE", f"/v2/accounts/{account['id']}/devices/{device['id']}", token=account["token"])


def test_every_scenario_is_run():
    here = Path(__file__).parent
    source = "".join((here / name).read_text() for name in ("test_sipp.py", "test_sync.py", "sipp_phones.py",
                                                        "test_quickcall_call.py"))
    assert all(path.name in source for path in SCENARIOS.glob("*.xml"))
