CREATE TABLE IF NOT EXISTS {database}.{table}
(
    event_id UUID,
    event LowCardinality(String),
    timestamp DateTime64(3, 'UTC') COMMENT 'server receive time',
    user_id String COMMENT 'anonymous when the client sent no token',
    identity LowCardinality(String) COMMENT 'anonymous, verified or degraded',
    query String COMMENT 'search text as typed, empty when only filters were used',
    filters Map(LowCardinality(String), String) COMMENT 'filter name to value, e.g. genre, year, country',
    results_count Nullable(UInt32) COMMENT 'results the search returned'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (toDate(timestamp), query, event_id)
