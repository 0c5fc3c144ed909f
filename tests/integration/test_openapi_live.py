"""schemathesis against ``sipsvc serve`` (a real process, real Redis): for every documented
operation, a bounded number of generated requests (valid and invalid), each answer checked
against the document: never a 5xx, a documented status, content type, headers and body shape.

The registration events stream is left out: it is infinite by design (its own tests read it).
"""

from __future__ import annotations

import zlib

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_headers_conformance, response_schema_conformance,
    status_code_conformance,
)

from sipsvc.api.openapi import build_document
from tests.live import LiveServer

MAX_EXAMPLES = 6  # per operation: the whole run stays within seconds
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]

schema = schemathesis.openapi.from_dict(build_document()).exclude(
    path="/v2/accounts/{account_id}/registrations/events")


@pytest.fixture(scope="module")
def live(redis_url):
    server = LiveServer(redis_url)
    account = server.new_account()
    device = server.new_device(account, {"name": "desk", "sip": {"username": "desk", "password": "secret123"}})
    yield server, account, device
    returncode, stderr = server.stop()
    assert returncode == 0, stderr
    assert "Traceback" not in stderr, stderr


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_every_answer_matches_the_document(case, live):
    server, account, device = live
    # The account and (half the time) the device exist, so answers go past the 404s.
    if case.path_parameters:
        if "account_id" in case.path_parameters:
            case.path_parameters["account_id"] = account["id"]
        if "device_id" in case.path_parameters and zlib.crc32(repr(case.body).encode()) % 2:
            case.path_parameters["device_id"] = device["id"]
    headers = {"X-Auth-Token": account["token"]}
    if case.path == "/v2/accounts" and case.method == "PUT":
        headers = {"X-Auth-Token": "live-test-admin-token"}
    case.call_and_validate(base_url=server.base, headers=headers, checks=CHECKS, timeout=30)
