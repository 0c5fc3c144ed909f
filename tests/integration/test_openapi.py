"""The OpenAPI document: valid OpenAPI 3.1, served as built, and exactly the routes the app
serves (a new route without its entry in ``sipsvc/api/openapi.py`` fails here)."""

from __future__ import annotations

from openapi_spec_validator import validate

from sipsvc.api.openapi import OPERATIONS, build_document
from sipsvc.app import create_app
from sipsvc.devices.schema import DEVICE_SCHEMA


def test_the_document_is_valid_openapi_3_1():
    document = build_document()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_is_documented_and_every_documented_route_is_served(config):
    app = create_app(config)
    # aiohttp adds HEAD beside every GET by itself; it answers as GET without a body.
    served = {(route.method, route.resource.canonical) for route in app.router.routes() if route.method != "HEAD"}
    assert served == set(OPERATIONS)
    documented = {(method.upper(), path) for path, item in build_document()["paths"].items() for method in item}
    assert documented == served


def test_the_device_schema_is_the_one_the_api_validates_with():
    assert build_document()["components"]["schemas"]["Device"] == DEVICE_SCHEMA


def test_every_operation_documents_its_errors_in_the_kazoo_error_envelope():
    document = build_document()
    error = document["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"data", "error", "message", "status"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                content = response["content"]
                assert "X-Request-ID" in response["headers"], (method, path, status)
                if int(status) >= 400 and path.startswith("/v2/"):  # /readyz's 503 is a probe's answer
                    assert content == {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            if path.startswith("/v2/accounts/"):
                assert {"401", "403"} <= set(operation["responses"]), (method, path)


async def test_the_served_document_is_the_built_one(api):
    response = await api.client.get("/v2/openapi.json")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert await response.json() == build_document()
