"""/openapi.json: a loadable OpenAPI 3.1 document that describes exactly the app's routes."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import schemathesis

from tests.conftest import Api
from worker.api import openapi
from worker.api.app import build_app


def _router_routes(api: Api) -> set[tuple[str, str]]:
    app = build_app(api.deps)
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method not in ("HEAD", "*")
    }


def _documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, ops in doc["paths"].items() for method in ops}


async def test_served_document_is_openapi_3_1(api: Api) -> None:
    async with api.session.get(api.url + "/openapi.json") as resp:
        assert resp.status == 200
        served = await resp.json()
    assert served["openapi"] == "3.1.0"
    assert served == openapi.document()


async def test_document_lists_every_route_of_the_router_and_no_other(api: Api) -> None:
    routes = _router_routes(api)
    documented = _documented(openapi.document())
    assert sorted(routes - documented) == [], "routes without an OpenAPI entry: use worker.api.openapi.register"
    assert sorted(documented - routes) == [], "documented routes the app does not serve"


def test_every_operation_loads_in_schemathesis() -> None:
    schema = schemathesis.openapi.from_dict(openapi.document())
    results = list(schema.get_all_operations())
    assert len(results) == len(_documented(openapi.document()))
    assert all(result.ok() for result in results)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_every_ref_resolves_and_every_schema_compiles() -> None:
    doc = openapi.document()
    names = set(doc["components"]["schemas"])
    missing = {r for r in _refs(doc) if r.removeprefix("#/components/schemas/") not in names}
    assert missing == set()
    for name in names:
        jsonschema_rs.validator_for({"$ref": f"#/components/schemas/{name}", "components": doc["components"]})


def test_every_v3_operation_requires_the_bearer_token_and_declares_401() -> None:
    doc = openapi.document()
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, ops in doc["paths"].items():
        if not path.startswith("/v3/"):
            continue
        for method, op in ops.items():
            assert op.get("security") == [{"bearerAuth": []}], (method, path)
            assert "401" in op["responses"], (method, path)


def test_health_routes_need_no_token() -> None:
    paths = openapi.document()["paths"]
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert "security" not in paths[path]["get"], path


def test_register_adds_and_replaces_an_operation() -> None:
    path = "/v3/__test_only__/{thing}"
    try:
        openapi.register(path, "GET", openapi.operation("first", responses={200: openapi.NO_CONTENT}))
        openapi.register(path, "get", openapi.operation("second", responses={204: openapi.NO_CONTENT}))
        op = openapi.document()["paths"][path]["get"]
        assert op["summary"] == "second" and set(op["responses"]) == {"204", "401", "default"}
    finally:
        openapi.PATHS.pop(path, None)


def test_connection_example_conforms() -> None:
    """The serializer's output for a fresh pending connection validates against Connection."""
    from datetime import UTC, datetime

    from worker.api.schemas_calendars import connection_json
    from worker.db.tables import ExternalCalendar

    row = ExternalCalendar(id=7, resource_id="r", provider="google", status="pending", created_at=datetime.now(UTC))
    doc = openapi.document()
    validator = jsonschema_rs.validator_for(
        {"$ref": "#/components/schemas/Connection", "components": doc["components"]}
    )
    shown = connection_json(row, [])
    assert [e.message for e in validator.iter_errors(shown)] == []
    shown["provider"] = "yahoo"
    assert not validator.is_valid(shown)
