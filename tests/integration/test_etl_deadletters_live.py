"""Dead letters (``etl.deadletters``) on the real Kafka broker and warehouse: listed, and
requeued to load once their plugin is installed."""

from __future__ import annotations

import pytest

from core.host.plugin_manager import build_registry, make_plugin_manager
from etl.deadletters import list_dead_letters, requeue
from etl.runner import run_pass
from tests.etl_helpers import produce, query, rating

pytestmark = pytest.mark.integration


def test_requeued_dead_letters_load_once_their_plugin_is_installed(etl_settings, etl_registry):
    produce(etl_settings, [rating(comment="Спасибо"), rating()])
    without_plugin = build_registry(make_plugin_manager())
    assert run_pass(etl_settings, without_plugin).dead_letters == {"unknown_event": 2}

    requeued = requeue(etl_settings, reason="unknown_event")
    result = run_pass(etl_settings, etl_registry)

    assert len(requeued) == 2
    assert result.rows == {"test_ratings": 2}
    assert sorted(query(etl_settings, "SELECT comment FROM {db}.test_ratings")) == [
        ("Отличный фильм",),
        ("Спасибо",),
    ]
    assert list_dead_letters(etl_settings) == []
    assert all(d.requeued for d in list_dead_letters(etl_settings, include_requeued=True))
