"""pjsua2 (PJSIP, the stack in many softphones) registers over UDP and TCP, shows up in
devices/status, unregisters and disappears."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest

PHONE = Path(__file__).resolve().parents[1] / "pjsua_phone.py"
PASSWORD = "secret123"


async def read_line(process, timeout: float = 25.0) -> str:
    """The phone's next report (pjsua2's own start-up log lines are skipped)."""
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), timeout)).decode().strip()
        if not line or line.split()[0] in ("REGISTERED", "UNREGISTERED", "TIMEOUT"):
            return line


async def registered(api, account) -> list[str]:
    _, body = await api.call("GET", f"/v2/accounts/{account['id']}/devices/status", token=account["token"])
    return [row["device_id"] for row in body["data"]]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_pjsua2_registers_and_unregisters(api, transport):
    if importlib.util.find_spec("pjsua2") is None:
        pytest.fail("pjsua2 is not installed (PyPI pjsua2-python, in the test extras)")
    account = await api.new_account()
    device = await api.new_device(account, {"name": "soft", "sip": {"username": "soft", "password": PASSWORD}})
    host, port = api.sip_address
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(PHONE), f"{host}:{port}", transport, "soft", PASSWORD, account["realm"],
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert (await read_line(process)).split()[:2] == ["REGISTERED", "200"]
        assert await registered(api, account) == [device["id"]]
        _, body = await api.call("GET", f"/v2/accounts/{account['id']}/devices/{device['id']}/registrations",
                                 token=account["token"])
        (binding,) = body["data"]
        assert binding["transport"] == transport and binding["user_agent"] == "pjsua2-tests"
        process.stdin.write(b"unregister\n")
        await process.stdin.drain()
        assert (await read_line(process)).split()[:2] == ["UNREGISTERED", "200"]
        assert await registered(api, account) == []
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
