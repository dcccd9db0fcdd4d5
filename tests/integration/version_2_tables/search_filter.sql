-- search_filters as version 2 generated it, before issue 13 chose its sort key.
CREATE TABLE IF NOT EXISTS {database}.{table}
(
    event_id UUID COMMENT 'unique per event: re-deliveries share it and collapse',
    event LowCardinality(String) COMMENT 'the event name',
    timestamp DateTime64(3, 'UTC') COMMENT 'server receive time',
    user_id String COMMENT 'anonymous when the client sent no token',
    identity LowCardinality(String) COMMENT 'anonymous, verified or degraded',
    schema_version UInt16 DEFAULT 1 COMMENT 'version of the event type the data was validated by',
    search_query String COMMENT 'The search text as typed; empty when only filters were used.',
    filters String COMMENT 'The filters as the client sends them (genre=драма); or empty.',
    results_count Nullable(UInt32) COMMENT 'How many results the search returned.'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (toDate(timestamp), search_query, event_id)
