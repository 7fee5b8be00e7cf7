"""docs/api.md lists every operation of the OpenAPI document (regenerate with openapi_docs)."""

from __future__ import annotations

from worker.api import openapi_docs

HINT = "docs/api.md is missing operations: run `python -m worker.api.openapi_docs`"


def test_api_md_lists_every_operation_of_the_document() -> None:
    doc = openapi_docs.load_document()
    text = openapi_docs.DOC_PATH.read_text()
    listed = {line.strip("#` ") for line in text.splitlines() if line.startswith("### `")}
    wanted = {f"{method} {path}" for method, path, _ in openapi_docs.operations(doc)}
    assert wanted, "the document has no operations"
    assert sorted(wanted - listed) == [], HINT


def test_rendering_shows_parameters_bodies_responses_and_schemas() -> None:
    doc = {
        "paths": {
            "/v3/things/{thingId}": {
                "put": {
                    "summary": "Replace a thing",
                    "security": [{"bearerAuth": []}],
                    "tags": ["things"],
                    "parameters": [{"name": "thingId", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "requestBody": {
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}
                    },
                    "responses": {"200": {"description": "Replaced"}, "404": {"description": "No | such thing"}},
                }
            }
        },
        "components": {
            "schemas": {
                "Thing": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {"size": {"type": "integer"}, "tags": {"type": "array", "items": {"enum": ["a"]}}},
                }
            }
        },
    }
    text = openapi_docs.render(doc)
    assert "### `PUT /v3/things/{thingId}`" in text and "Auth: **bearer**" in text
    assert "| `thingId` | path | yes | string |" in text
    assert "Body (application/json): [Thing](#schema-thing)" in text
    assert "| 404 | No \\| such thing | - |" in text
    assert '<a id="schema-thing"></a>' in text
    assert "| `size` | integer | yes |  |" in text and "| `tags` | array of one of `a` | no |  |" in text
