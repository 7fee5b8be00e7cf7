"""docs/api.md from the OpenAPI document: `python -m worker.api.openapi_docs [--check]`.

The document is the source of truth (tests check it against the router); this renders it
as Markdown for readers. `--check` exits 1 when docs/api.md differs from what it would write.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

Json = dict[str, Any]
DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "api.md"
METHODS = ("get", "post", "put", "patch", "delete")
HEADER = """# calsync control API

Generated from the OpenAPI 3.1 document that the daemon serves at `GET /openapi.json`, by
`python -m worker.api.openapi_docs`; do not edit by hand (`--check` tells whether it is current).

Routes marked **bearer** need `Authorization: Bearer <JWT>` (HS256 secret or RS256/ES256 key,
issuer and audience checked, the company claim must own the resource: another company's
resource is a 404). Every error is `{"error": {"code": "...", "message": "..."}}`.
"""


def load_document() -> Json:
    """The document with every route module imported (modules register their routes on import)."""
    import worker.api.app  # noqa: F401  (imports every ROUTE_MODULES entry)
    from worker.api import openapi

    return openapi.document()


def operations(doc: Json) -> list[tuple[str, str, Json]]:
    """(METHOD, path, operation) for every operation, grouped by tag then path."""
    found = [
        (method.upper(), path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]
    return sorted(found, key=lambda o: (_tag(o[2]), o[1], METHODS.index(o[0].lower())))


def _tag(op: Json) -> str:
    return str((op.get("tags") or ["operations" if not op.get("security") else "other"])[0])


def type_of(schema: Json | None) -> str:
    """A short human type for a JSON schema: `string`, `array of Connection`, `one of a, b`."""
    if not schema:
        return "any"
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#schema-{name.lower()})"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(type_of(s) for s in schema[key])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array":
        return f"array of {type_of(schema.get('items'))}"
    fmt = schema.get("format")
    return f"{kind} ({fmt})" if fmt else str(kind)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_operation(method: str, path: str, op: Json) -> list[str]:
    lines = [f"### `{method} {path}`", "", _cell(op.get("summary", "")), ""]
    lines.append("Auth: **bearer**" if op.get("security") else "Auth: none")
    params = op.get("parameters") or []
    if params:
        lines += ["", "| parameter | in | required | type |", "| --- | --- | --- | --- |"]
        lines += [
            f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} | {type_of(p.get('schema'))} |"
            for p in params
        ]
    body = op.get("requestBody", {}).get("content", {})
    for media, content in body.items():
        lines += ["", f"Body ({media}): {type_of(content.get('schema'))}"]
    lines += ["", "| status | meaning | body |", "| --- | --- | --- |"]
    for status, answer in op.get("responses", {}).items():
        content = answer.get("content") or {}
        shown = ", ".join(f"{m}: {type_of(c.get('schema'))}" if c.get("schema") else m for m, c in content.items())
        lines.append(f"| {status} | {_cell(answer.get('description', ''))} | {shown or '-'} |")
    return [*lines, ""]


def render_schema(name: str, schema: Json) -> list[str]:
    lines = [f'<a id="schema-{name.lower()}"></a>', f"### {name}", ""]
    if schema.get("description"):
        lines += [_cell(schema["description"]), ""]
    props = schema.get("properties") or {}
    if not props:
        return [*lines, f"Type: {type_of(schema)}", ""]
    required = set(schema.get("required") or [])
    lines += ["| field | type | required | notes |", "| --- | --- | --- | --- |"]
    for field, sub in props.items():
        notes = _cell(sub.get("description", ""))
        lines.append(f"| `{field}` | {type_of(sub)} | {'yes' if field in required else 'no'} | {notes} |")
    return [*lines, ""]


def render(doc: Json) -> str:
    """The whole Markdown page."""
    ops = operations(doc)
    lines = [HEADER, "## Contents", ""]
    lines += [f"- `{method} {path}`: {_cell(op.get('summary', ''))}" for method, path, op in ops]
    tag = None
    for method, path, op in ops:
        if _tag(op) != tag:
            tag = _tag(op)
            lines += ["", f"## {tag.capitalize()}", ""]
        lines += render_operation(method, path, op)
    lines += ["", "## Schemas", ""]
    for name, schema in sorted(doc.get("components", {}).get("schemas", {}).items()):
        lines += render_schema(name, schema)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.api.openapi_docs", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/api.md is out of date")
    parser.add_argument("--output", type=Path, default=DOC_PATH)
    args = parser.parse_args(argv)
    text = render(load_document())
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run python -m worker.api.openapi_docs", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
