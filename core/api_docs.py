"""The OpenAPI document as one self-contained HTML page: no script, no CDN, readable offline.

``python -m core.api_docs > docs/api.html`` writes the published page (``make docs``); the API
serves the same page for its installed plugins at ``GET /docs``.
"""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

REF_PREFIX = "#/components/schemas/"
STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem 2rem;color:#222}
h1,h2,h3{line-height:1.2}h2{border-bottom:1px solid #ccc;margin-top:2.5rem}
code,pre{font:13px ui-monospace,monospace;background:#f4f4f4;border-radius:3px}
code{padding:0 .2em}pre{padding:.6rem;overflow-x:auto}
table{border-collapse:collapse;margin:.5rem 0 1rem;width:100%}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}.method{font-weight:bold;color:#fff;background:#2a7;padding:0 .4em;
border-radius:3px}.get{background:#27a}nav ul{columns:2}summary{cursor:pointer}
"""
_CODE = re.compile(r"`([^`]+)`")


def _text(value: str) -> str:
    """Escaped text, with Markdown's `code` spans kept as code."""
    return _CODE.sub(r"<code>\1</code>", escape(value))


def _anchor(name: str) -> str:
    return "schema-" + name


def _type(schema: dict[str, Any]) -> str:
    """A property's type in a few words, with links to the schemas it refers to."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(REF_PREFIX)
        return f'<a href="#{_anchor(name)}">{escape(name)}</a>'
    kind = schema.get("type", "any")
    if kind == "array":
        text = f"array of {_type(schema.get('items', {}))}"
    elif kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        text = f"object of string → {_type(schema['additionalProperties'])}"
    else:
        text = escape(kind)
    if "format" in schema:
        text += f" ({escape(schema['format'])})"
    if schema.get("nullable"):
        text += " or null"
    return text


def _constraints(schema: dict[str, Any]) -> str:
    """Bounds, pattern, enum and default of a property."""
    parts = []
    for key, label in (
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minimum", "min"),
        ("maximum", "max"),
        ("minItems", "min items"),
        ("pattern", "pattern"),
    ):
        if key in schema:
            parts.append(f"{label} <code>{escape(str(schema[key]))}</code>")
    if "enum" in schema:
        values = ", ".join(f"<code>{escape(json.dumps(v))}</code>" for v in schema["enum"])
        parts.append(f"one of {values}")
    if schema.get("default") is not None:
        parts.append(f"default <code>{escape(json.dumps(schema['default']))}</code>")
    return "; ".join(parts)


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    out = [f'<h3 id="{_anchor(name)}">{escape(name)}</h3>']
    if "description" in schema:
        out.append(f"<p>{_text(schema['description'])}</p>")
    if "x-schema-version" in schema:
        out.append(f"<p>Schema version <code>{schema['x-schema-version']}</code>.</p>")
    properties = schema.get("properties", {})
    if not properties:
        out.append(f"<p>Type: {_type(schema)}.</p>")
        return out
    required = set(schema.get("required", []))
    out.append(
        "<table><tr><th>field</th><th>type</th><th>required</th><th>constraints</th>"
        "<th>description</th></tr>"
    )
    for field, spec in properties.items():
        out.append(
            f"<tr><td><code>{escape(field)}</code></td><td>{_type(spec)}</td>"
            f"<td>{'yes' if field in required else 'no'}</td><td>{_constraints(spec)}</td>"
            f"<td>{_text(spec.get('description', ''))}</td></tr>"
        )
    out.append("</table>")
    if schema.get("additionalProperties") is False:
        out.append("<p>Other fields are refused.</p>")
    return out


def _example(title: str, value: Any) -> str:
    body = escape(json.dumps(value, indent=2, ensure_ascii=False))
    return f"<details><summary>{_text(title)}</summary><pre>{body}</pre></details>"


def _operation(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    anchor = operation.get("operationId", f"{method}-{path}")
    out = [
        f'<h2 id="{escape(anchor)}"><span class="method {method}">{method.upper()}</span> '
        f"<code>{escape(path)}</code></h2>",
        f"<p><strong>{_text(operation.get('summary', ''))}</strong></p>",
    ]
    if "description" in operation:
        out.append(f"<p>{_text(operation['description'])}</p>")
    for content_type, body in operation.get("requestBody", {}).get("content", {}).items():
        out.append(f"<h4>Request body (<code>{escape(content_type)}</code>)</h4>")
        schema = body.get("schema", {})
        if "discriminator" in schema:
            field = schema["discriminator"]["propertyName"]
            out.append(f"<p>One of these, chosen by <code>{escape(field)}</code>:</p><ul>")
            for value, ref in schema["discriminator"]["mapping"].items():
                out.append(f"<li><code>{escape(value)}</code>: {_type({'$ref': ref})}</li>")
            out.append("</ul>")
        else:
            out.append(
                f"<p>{_type(schema)}. {_text(schema.get('items', {}).get('description', ''))}</p>"
            )
        for name, example in body.get("examples", {}).items():
            out.append(_example(f"Example: `{name}`", example["value"]))
        if "example" in body:
            out.append(_example("Example", body["example"]))
    out.append("<h4>Responses</h4><table><tr><th>status</th><th>meaning</th><th>body</th></tr>")
    for status, response in operation.get("responses", {}).items():
        schemas = [c.get("schema", {}) for c in response.get("content", {}).values()]
        body = ", ".join(_type(schema) for schema in schemas)
        out.append(
            f"<tr><td>{escape(status)}</td><td>{_text(response.get('description', ''))}</td>"
            f"<td>{body}</td></tr>"
        )
    out.append("</table>")
    return out


def render_html(spec: dict[str, Any]) -> str:
    """The whole page for an OpenAPI 3 document ``spec``."""
    info = spec.get("info", {})
    title = f"{info.get('title', 'API')} {info.get('version', '')}".strip()
    operations = [
        (path, method, operation)
        for path, methods in spec.get("paths", {}).items()
        for method, operation in methods.items()
    ]
    schemas = spec.get("components", {}).get("schemas", {})
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)} API reference</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)} API reference</h1>",
        f"<p>{_text(info.get('description', ''))}</p>",
        f"<p>OpenAPI {escape(spec.get('openapi', ''))}. Generated from the OpenAPI document "
        "(<code>GET /openapi.json</code>, <code>docs/openapi.json</code>) by "
        "<code>core/api_docs.py</code>; guides: <code>docs/index.md</code>.</p>",
        "<nav><h2>Contents</h2><ul>",
    ]
    for path, method, operation in operations:
        anchor = operation.get("operationId", f"{method}-{path}")
        out.append(f'<li><a href="#{escape(anchor)}">{method.upper()} {escape(path)}</a></li>')
    out.extend(f'<li><a href="#{_anchor(name)}">{escape(name)}</a></li>' for name in schemas)
    out.append("</ul></nav>")
    for path, method, operation in operations:
        out.extend(_operation(path, method, operation))
    out.append("<h2>Schemas</h2>")
    for name, schema in schemas.items():
        out.extend(_schema(name, schema))
    out.append("</body></html>")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    from core.openapi import build_spec
    from core.plugin_manager import build_registry, make_plugin_manager

    print(render_html(build_spec(build_registry(make_plugin_manager()))), end="")
