"""SIPp phones for check-sync tests: one SIPp process registers one or many users (an injection
file) and then stays up, answering the NOTIFYs the service sends to where it registered from
with an out-of-call scenario. What reached the phone is read back from SIPp's message trace."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path

from sipsvc.sip.message import Request
from sipsvc.sip.parser import parse_datagram
from tests.conftest import free_port
from tests.integration.test_sipp import SCENARIOS, sipp_binary

_TRACE_ENTRY = re.compile(r"^-{20,} [0-9-]+ [0-9:.]+\n(?P<what>.*?)\n\n(?P<message>.*?)(?=^-{20,} |\Z)",
                          re.S | re.M)


@dataclass
class SippPhones:
    """``async with`` starts SIPp; ``stop()`` ends it and reads what arrived."""

    tmp_path: Path
    address: tuple[str, int]
    realm: str
    users: list[tuple[str, str]]  # (username, password)
    uas: str = "uas-notify-answer-200.xml"
    main: str = "uac-register-then-wait.xml"
    transport: str = "u1"
    keys: dict[str, str] = field(default_factory=dict)
    rate: int = 100
    port: int = field(default_factory=free_port)
    _process: asyncio.subprocess.Process | None = None

    @property
    def trace(self) -> Path:
        return self.tmp_path / f"sipp-{self.port}-messages.log"

    async def __aenter__(self) -> "SippPhones":
        users = self.tmp_path / f"users-{self.port}.csv"
        users.write_text("SEQUENTIAL\n" + "".join(
            f"{user};[authentication username={user} password={password}];\n" for user, password in self.users))
        keys = [arg for name, value in self.keys.items() for arg in ("-key", name, value)]
        self._process = await asyncio.create_subprocess_exec(
            sipp_binary(), f"{self.address[0]}:{self.address[1]}", "-sf", str(SCENARIOS / self.main),
            "-oocsf", str(SCENARIOS / self.uas), "-inf", str(users), "-key", "domain", self.realm, *keys,
            "-i", "127.0.0.1", "-p", str(self.port), "-t", self.transport, "-m", str(len(self.users)),
            "-r", str(self.rate), "-l", str(len(self.users) + 10), "-d", "60000", "-timeout", "90s",
            "-max_socket", "2000", "-nostdin", "-trace_msg", "-message_file", str(self.trace),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 10)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()

    def received(self, method: str = "NOTIFY", *, sent: bool = False) -> list[Request]:
        """The requests of ``method`` SIPp has logged as received (or ``sent``) so far, in order."""
        if not self.trace.exists():
            return []
        out = []
        for entry in _TRACE_ENTRY.finditer(self.trace.read_text(errors="replace")):
            if ("message sent" if sent else "message received") not in entry["what"]:
                continue
            text = entry["message"].strip("\n")
            if not text.startswith(f"{method} "):
                continue
            head, _, body = text.partition("\n\n")
            if body:  # the trace turns CRLF into LF and drops the last one: the body is what is left
                head = "\n".join(line for line in head.split("\n")
                                 if not line.lower().startswith(("content-length:", "l:")))
                body = body.replace("\n", "\r\n")
            out.append(parse_datagram((head.replace("\n", "\r\n") + "\r\n\r\n" + body).encode()))
        return out


async def wait_registered(api, account: dict, device_ids: list[str], timeout: float = 20.0) -> None:
    """Poll the registration status until every device is registered (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    wanted = set(device_ids)
    while True:
        _, body = await api.call("GET", f"/v2/accounts/{account['id']}/devices/status", token=account["token"])
        if wanted <= {row["device_id"] for row in body["data"]}:
            return
        if loop.time() > deadline:
            missing = len(wanted - {row["device_id"] for row in body["data"]})
            raise AssertionError(f"{missing} of {len(wanted)} devices did not register within {timeout} s")
        await asyncio.sleep(0.1)


async def wait_for(condition, timeout: float = 10.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
