"""Every curl example of the devices API page, replayed against the running app as written, and
its response compared with the page's example response (placeholders filled with real values).

The page is vendored in ``tests/data/devices-api.rst``. Two of its curl commands have broken
shell quoting (``-X "X-Auth-Token...``); the request they mean is still clear and is what is sent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

SPEC = Path(__file__).resolve().parents[1] / "data" / "devices-api.rst"
USER_ID = "a" * 32
OWNER_ID = "b" * 32
# Sections whose endpoints later issues build (registrar, check-sync).
LATER = {"Fetch registration statuses of all devices", "Reboot a device"}


@dataclass
class Example:
    title: str
    method: str
    path: str
    body: str | None
    headers: dict
    response: str


def _code_blocks(text: str):
    """(kind, content) of each ``.. code:: kind`` block, in order, with its section title."""
    lines = text.splitlines()
    title = ""
    i = 0
    while i < len(lines):
        if i + 1 < len(lines) and re.fullmatch(r"\^+", lines[i + 1]) and lines[i].strip():
            title = lines[i].strip()
        match = re.match(r"\.\. code:: (\w+)", lines[i])
        if match:
            block = []
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
                block.append(lines[i])
                i += 1
            yield title, match.group(1), "\n".join(block).strip()
            continue
        i += 1


def examples() -> list[Example]:
    found = []
    pending = None
    for title, kind, content in _code_blocks(SPEC.read_text()):
        if kind == "shell" and "curl" in content:
            method = re.search(r"-X (GET|PUT|POST|PATCH|DELETE)\b", content)
            url = re.search(r"http://\{SERVER\}:8000(\S+)", content).group(1)
            body = re.search(r"-d '(.*?)'", content, re.S)
            headers = dict(re.findall(r'-H "(Content-Type): ([^"]+)"', content))
            pending = Example(title, method.group(1) if method else "GET", url,
                              body.group(1) if body else None, headers, "")
        elif kind == "json" and pending is not None:
            pending.response = content
            found.append(pending)
            pending = None
    return found


def test_every_curl_example_is_replayed():
    titles = {e.title for e in examples()}
    assert titles - LATER == set(SETUP), "an example of the page has no replay test"


def _fill(text: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def _expect(example: Example, values: dict[str, str], body: dict) -> dict:
    """The page's response with placeholders filled; request id and revision taken from the
    actual response after checking their form."""
    assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])
    assert re.fullmatch(r"(\d+-)?[0-9a-f]{32}", body["revision"])
    values = {**values, "REQUEST_ID": body["request_id"], "REVISION": body["revision"]}
    return json.loads(_fill(example.response, values))


async def _setup_list(api, account):
    device = await api.new_device(account, {"name": "MyPolycom", "enabled": False,
                                            "mac_address": "00:04:F2:AB:7E:FD"})
    return {"DEVICE_ID": device["id"]}


async def _setup_new_device(api, account):
    device = await api.new_device(account, {"name": "New Device"})
    return {"DEVICE_ID": device["id"]}


async def _setup_patch(api, account):
    device = await api.new_device(account, {"name": "new device"})
    return {"DEVICE_ID": device["id"]}


async def _setup_user_devices(api, account):
    first = await api.new_device(account, {"name": "USER_ID_DEVICE", "owner_id": USER_ID})
    second = await api.new_device(account, {"name": "OWNER_ID_DEVICE", "owner_id": OWNER_ID,
                                            "hotdesk": {"users": {USER_ID: {}}}})
    return {"DEVICE_ID_1": first["id"], "DEVICE_ID_2": second["id"],
            "USER_ID": USER_ID, "OWNER_ID": OWNER_ID}


async def _setup_quickcall(api, account):
    device = await api.new_device(account, {
        "name": "Reception", "owner_id": USER_ID,
        "sip": {"username": "reception", "password": "s3cret-pass"},
        "media": {"audio": {"codecs": ["PCMU", "PCMA"]}},
        "caller_id": {"external": {"name": "Acme Reception", "number": "+14155550100"}},
    })
    return {"DEVICE_ID": device["id"], "USER_ID": USER_ID, "ACCOUNT_REALM": account["realm"],
            "PHONE_NUMBER": "+14158867900", "E164_NUMBER": "+14158867900",
            "DEVICE_CALLER_ID_NAME": "Acme Reception", "DEVICE_CALLER_ID_NUMBER": "+14155550100",
            "DEVICE_SIP_USER": "reception", "PRESENCE_ID": f"reception@{account['realm']}"}


def _call_id(body: dict) -> str:
    """The random part of the quickcall's call id, after checking its form (Kazoo's 36 hex)."""
    call_id = body["data"]["endpoints"][0]["outbound_call_id"]
    assert re.fullmatch(r"[0-9a-f]{36}-quickcall", call_id)
    return call_id.removesuffix("-quickcall")


async def _nothing(api, account):
    return {}


SETUP = {
    "Fetch summary of devices in account": _setup_list,
    "Create a new device": _nothing,
    "Remove a device": _setup_new_device,
    "Fetch a device": _setup_new_device,
    "Change a device doc": _setup_new_device,
    "Patch a device": _setup_patch,
    "Load a user's devices": _setup_user_devices,
    "Create an Authn-By-IP Device": lambda api, account: _nothing(api, account),
    "Execute a quick call": _setup_quickcall,
}


@pytest.mark.parametrize("example", [e for e in examples() if e.title not in LATER], ids=lambda e: e.title)
async def test_curl_example(api, example):
    account = await api.new_account()
    values = {"ACCOUNT_ID": account["id"], "AUTH_TOKEN": account["token"], "IP_ADDRESS": "192.0.2.10",
              **await SETUP[example.title](api, account)}
    response = await api.client.request(
        example.method, _fill(example.path, values),
        data=_fill(example.body, values).encode() if example.body else None,
        headers={"X-Auth-Token": account["token"], **example.headers},
    )
    body = await response.json(content_type=None)
    assert response.status == (201 if example.method == "PUT" else 200), body
    if example.method == "PUT":  # the new id is only known from the answer
        values["DEVICE_ID"] = body["data"]["id"]
    if "{CALL_ID}" in example.response:  # random per call
        values["CALL_ID"] = _call_id(body)
    expected = _expect(example, values, body)
    if isinstance(expected["data"], list):  # row order is the listing's (by id)
        expected["data"].sort(key=lambda row: row["id"])
    assert body == expected
    assert response.headers["ETag"] == f'"{body["revision"]}"'


async def test_ringtones_example_is_stored_as_given(api):
    account = await api.new_account()
    text = SPEC.read_text()
    example = text[text.index("Adding Ringtones"):text.index("Load a user's devices")]
    data = json.loads(example[example.index("{"):example.rindex("}") + 1])
    device = await api.new_device(account, data)
    assert device["ringtones"] == data["ringtones"]
    _, fetched = await api.call("GET", f"/v2/accounts/{account['id']}/devices/{device['id']}",
                                token=account["token"])
    assert fetched["data"]["ringtones"] == data["ringtones"]
