"""Schema evolution: each event type's schema now, against the last published OpenAPI document.

A change a client that follows the published document could notice (a field removed,
retyped, newly required, bounds narrowed) is breaking; it is accepted only when the
event type's ``version`` was bumped. Everything else (an optional field added, bounds
widened, a new event type) is safe. ``clickstream schema-check`` runs :func:`check` on the
project's document; ``clickstream openapi --plugin NAME --check FILE`` runs
:func:`check_fragment` on a plugin's own fragment (``core.api.openapi.fragment``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.api.openapi import VERSION_KEY, build_spec
from core.config import PROJECT_ROOT
from core.host.registry import Registry

#: The document the published schemas are read from, unless told otherwise.
PUBLISHED_DOCUMENT = PROJECT_ROOT / "docs" / "openapi.json"
#: What refreshes the project's document, once a change is accepted.
REFRESH_DOCUMENT = "refresh docs/openapi.json (make docs)"

#: Bounds a client's values must reach (raising them narrows) or stay under (lowering narrows).
LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")

Document = Mapping[str, Any]
#: (where, what, breaking): one difference found between two schemas.
Finding = tuple[str, str, bool]


@dataclass(frozen=True)
class Change:
    """One difference in one event type between the published and the current schemas."""

    event: str
    where: str
    what: str
    breaking: bool
    versioned: bool = False

    @property
    def refused(self) -> bool:
        """A breaking change without a version bump: clients of the published document break."""
        return self.breaking and not self.versioned

    def __str__(self) -> str:
        verdict = "ok"
        if self.breaking:
            verdict = "breaking, versioned" if self.versioned else "BREAKING"
        return f"{self.where}: {self.what} [{verdict}]"


def check(registry: Registry, published: Path = PUBLISHED_DOCUMENT) -> list[Change]:
    """Changes from the document at ``published`` to the one ``registry`` produces now."""
    document = json.loads(published.read_text(encoding="utf-8"))
    return compare(document, build_spec(registry))


@dataclass(frozen=True)
class FragmentCheck:
    """A plugin's committed fragment against the one its installed event types make now."""

    changes: list[Change]
    #: The committed fragment is not what the plugin makes now (compatible changes included).
    stale: bool

    @property
    def passed(self) -> bool:
        return not self.stale and not any(change.refused for change in self.changes)


def check_fragment(committed: Path, current: Document) -> FragmentCheck:
    """The fragment at ``committed`` against ``current`` (``core.api.openapi.fragment``)."""
    published = json.loads(committed.read_text(encoding="utf-8"))
    return FragmentCheck(compare(published, current), stale=published != current)


def compare(published: Document, current: Document) -> list[Change]:
    """Every change from the ``published`` OpenAPI document to the ``current`` one."""
    before, after = event_schemas(published), event_schemas(current)
    changes: list[Change] = []
    for event in sorted(before.keys() | after.keys()):
        if event not in after:
            changes.append(
                Change(event, event, "event type removed: clients sending it are refused", True)
            )
            continue
        new_version, new_schema = after[event]
        if event not in before:
            changes.append(Change(event, event, f"new event type (version {new_version})", False))
            continue
        old_version, old_schema = before[event]
        found = [
            Change(event, where, what, breaking, versioned=new_version > old_version)
            for where, what, breaking in _diff(
                f"{event}.data", old_schema, new_schema, published, current
            )
        ]
        if new_version < old_version:
            found.append(
                Change(event, event, f"version went back from {old_version} to {new_version}", True)
            )
        elif new_version > old_version:
            found.append(
                Change(event, event, f"version bumped from {old_version} to {new_version}", False)
            )
        changes.extend(found)
    return changes


def event_schemas(document: Document) -> dict[str, tuple[int, dict[str, Any]]]:
    """Each event name of an OpenAPI document with its version and its ``data`` schema."""
    body = document["paths"]["/api/v1/events"]["post"]["requestBody"]
    mapping = body["content"]["application/json"]["schema"]["discriminator"]["mapping"]
    schemas = {}
    for event, ref in mapping.items():
        variant = _resolve(document, {"$ref": ref})
        data = _resolve(document, variant["properties"]["data"])
        schemas[event] = (int(variant.get(VERSION_KEY, 1)), data)
    return schemas


def format_changes(changes: list[Change], refresh: str = REFRESH_DOCUMENT) -> str:
    """The changes, one per line, and a verdict a person can act on; ``refresh`` says how
    the published document is brought up to date."""
    lines = [str(change) for change in changes]
    refused = [change for change in changes if change.refused]
    if refused:
        events = ", ".join(sorted({change.event for change in refused}))
        lines.append(
            f"{len(refused)} breaking change(s) in {events}: make the change compatible "
            "(add fields as optional, widen rather than narrow), or bump the event type's "
            f"version, then {refresh}"
        )
    elif changes:
        lines.append(f"compatible with the published document; {refresh}")
    else:
        lines.append("no change since the published document")
    return "\n".join(lines)


def format_fragment_check(result: FragmentCheck, path: str, plugin: str) -> str:
    """What ``clickstream openapi --check`` prints about the fragment of ``plugin`` at ``path``."""
    if not result.stale:
        return f"{path} is up to date"
    rewrite = f"rewrite {path} (clickstream openapi --plugin {plugin} > {path}) and commit it"
    if any(change.refused for change in result.changes):
        return format_changes(result.changes, rewrite)
    what = (
        "no unversioned breaking change"
        if result.changes
        else "the event types' data is unchanged; descriptions, examples or clickstream's "
        "parts of the variants differ"
    )
    lines = [str(change) for change in result.changes]
    return "\n".join([*lines, f"{path} is stale ({what}): {rewrite}"])


def outside_note(plugin: str, events: list[str]) -> str:
    """``schema-check``'s line for a plugin kept outside this repository: not in its document."""
    return (
        f"{', '.join(events)}: from {plugin}, outside this repository, so not in "
        f"docs/openapi.json; check its own fragment with "
        f"`clickstream openapi --plugin {plugin} --check FILE`"
    )


def _resolve(document: Document, schema: Mapping[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return dict(schema)


def _diff(
    where: str, old: Mapping[str, Any], new: Mapping[str, Any], old_doc: Document, new_doc: Document
) -> Iterator[Finding]:
    """Each difference between two JSON schemas of one value."""
    old, new = _resolve(old_doc, old), _resolve(new_doc, new)
    for key in ("type", "format"):
        if old.get(key) != new.get(key):
            yield where, f"{key} changed from {old.get(key)} to {new.get(key)}", True
            return
    if old.get("nullable") and not new.get("nullable"):
        yield where, "null no longer accepted", True
    yield from _bounds(where, old, new)
    yield from _choices(where, old, new)
    old_fields, new_fields = old.get("properties", {}), new.get("properties", {})
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    for name in sorted(old_fields.keys() - new_fields.keys()):
        yield f"{where}.{name}", "field removed", True
    for name in sorted(new_fields.keys() - old_fields.keys()):
        if name in new_required:
            yield f"{where}.{name}", "required field added", True
        else:
            yield f"{where}.{name}", "optional field added", False
    for name in sorted(old_fields.keys() & new_fields.keys()):
        if name in new_required and name not in old_required:
            yield f"{where}.{name}", "now required", True
        elif name in old_required and name not in new_required:
            yield f"{where}.{name}", "now optional", False
        yield from _diff(f"{where}.{name}", old_fields[name], new_fields[name], old_doc, new_doc)
    old_extra, new_extra = (
        old.get("additionalProperties", True),
        new.get("additionalProperties", True),
    )
    if old_extra is not False and new_extra is False:
        yield where, "other fields no longer accepted", True
    elif isinstance(old_extra, Mapping) and isinstance(new_extra, Mapping):
        yield from _diff(f"{where}.*", old_extra, new_extra, old_doc, new_doc)
    if "items" in old and "items" in new:
        yield from _diff(f"{where}[]", old["items"], new["items"], old_doc, new_doc)


def _bounds(where: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Finding]:
    for key in LOWER_BOUNDS + UPPER_BOUNDS:
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        lower = key in LOWER_BOUNDS
        narrowed = after is not None and (
            before is None or (after > before if lower else after < before)
        )
        yield where, f"{key} changed from {before} to {after}", narrowed
    if old.get("pattern") != new.get("pattern"):
        yield where, f"pattern changed from {old.get('pattern')} to {new.get('pattern')}", True


def _choices(where: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Finding]:
    if "enum" not in new:
        if "enum" in old:
            yield where, "any value accepted, not only the listed ones", False
        return
    if "enum" not in old:
        yield where, f"now limited to {new['enum']}", True
        return
    dropped = [value for value in old["enum"] if value not in new["enum"]]
    added = [value for value in new["enum"] if value not in old["enum"]]
    if dropped:
        yield where, f"values no longer accepted: {dropped}", True
    if added:
        yield where, f"values added: {added}", False
