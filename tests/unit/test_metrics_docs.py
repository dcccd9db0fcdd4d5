"""docs/alerts.yml parses and names only real metrics; docs/operations.md covers them all."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from core.api.metrics import ApiMetrics
from core.config import Settings
from etl.metrics import EtlMetrics

DOCS = Path(__file__).resolve().parents[2] / "docs"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def families() -> dict[str, str]:
    """Every metric family of the API and the ETL, with its type."""
    registries = [ApiMetrics().registry, EtlMetrics(Settings(), registry=None).registry]  # type: ignore[arg-type]
    return {f.name: f.type for r in registries for f in r.collect()}


def sample_names() -> set[str]:
    return {name + suffix for name, kind in families().items() for suffix in SUFFIXES[kind]}


def rules() -> list[dict]:
    document = yaml.safe_load((DOCS / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_alert_rule_is_complete():
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names)) and names
    for rule in rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
        anchor = rule["annotations"]["runbook"].split("#")[1]
        assert f"### {anchor.replace('-', ' ')}".lower() in (
            (DOCS / "operations.md").read_text().lower()
        ), rule["alert"]


def test_every_metric_an_alert_names_exists():
    known = sample_names()
    for rule in rules():
        used = set(re.findall(r"\bclickstream_[a-z_]+", rule["expr"]))
        assert used, rule["alert"]
        assert used <= known, (rule["alert"], used - known)


def test_every_metric_is_documented_and_the_alerts_watch_gaps_duplicates_lag_spool_errors():
    operations = (DOCS / "operations.md").read_text()
    missing = [name for name in families() if f"`{name}" not in operations]
    assert not missing
    watched = " ".join(rule["expr"] for rule in rules())
    for metric in (
        "clickstream_etl_missing_offsets_total",
        "clickstream_warehouse_duplicate_events",
        "clickstream_etl_consumer_lag_messages",
        "clickstream_spool_depth_events",
        "clickstream_http_requests_total",
    ):
        assert metric in watched
