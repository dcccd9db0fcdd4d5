"""What the gap monitor reports, on the real Kafka and chDB: offsets the group expected and
never received, and nothing for offsets it never expected."""

from __future__ import annotations

import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.structs import OffsetAndMetadata, TopicPartition

from core.config import Settings
from core.host.plugin_manager import build_registry, make_plugin_manager
from etl.reports import consumer_lag, quality_report
from etl.runner import run_pass
from tests.etl_helpers import create_topic, envelope, produce, query

pytestmark = pytest.mark.integration

REGISTRY = build_registry(make_plugin_manager())


@pytest.fixture
def etl_settings(settings: Settings, kafka_bootstrap: str) -> Settings:
    settings = settings.replace(etl_poll_timeout_s=0.2)
    create_topic(settings)
    return settings


def searches(n: int) -> list[dict]:
    return [envelope("search_filter", {"search_query": f"q{i}", "filters": ""}) for i in range(n)]


def delete_records_before(settings: Settings, offset: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap.split(","))
    try:
        admin.delete_records({TopicPartition(settings.kafka.topic, 0): offset})
    finally:
        admin.close()


def commit_for_the_group(settings: Settings, offset: int) -> None:
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap.split(","),
        group_id=settings.etl.group,
        enable_auto_commit=False,
    )
    try:
        consumer.commit(
            {TopicPartition(settings.kafka.topic, 0): OffsetAndMetadata(offset, "", -1)}
        )
    finally:
        consumer.close()


def stored(settings: Settings) -> tuple[int, int]:
    return query(settings, "SELECT count(), uniqExact(event_id) FROM {db}.search_filters")[0]


def test_a_group_that_never_committed_expects_nothing_before_the_beginning(etl_settings):
    produce(etl_settings, searches(5))
    delete_records_before(etl_settings, 3)  # gone before this group ever existed

    result = run_pass(etl_settings, REGISTRY)

    assert (result.messages, result.gaps) == (2, [])
    report = quality_report(etl_settings, REGISTRY)
    assert (report.gaps, report.missing_offsets) == ([], 0)


def test_records_deleted_after_the_group_committed_are_a_gap(etl_settings):
    produce(etl_settings, searches(2))
    run_pass(etl_settings, REGISTRY)
    produce(etl_settings, searches(4))
    delete_records_before(etl_settings, 4)  # offsets 2 and 3: expected, never read

    result = run_pass(etl_settings, REGISTRY)

    assert (result.messages, result.gaps) == (2, [(0, 2, 4)])
    report = quality_report(etl_settings, REGISTRY)
    assert [(g.partition, g.start, g.stop) for g in report.gaps] == [(0, 2, 4)]


def test_a_committed_offset_above_the_log_end_is_recorded_and_nothing_is_skipped(etl_settings):
    produce(etl_settings, searches(3))
    commit_for_the_group(etl_settings, 10)  # a truncated log: the group is past its end

    result = run_pass(etl_settings, REGISTRY)

    assert result.messages == 3
    assert stored(etl_settings) == (3, 3)
    assert consumer_lag(etl_settings) == {0: 0}
    report = quality_report(etl_settings, REGISTRY)
    assert [(r.partition, r.committed, r.end) for r in report.rewinds] == [(0, 10, 3)]
    assert report.gaps == []
