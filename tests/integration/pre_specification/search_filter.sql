CREATE TABLE IF NOT EXISTS {database}.{table}
(
    {envelope_columns},
    query String COMMENT 'search text as typed, empty when only filters were used',
    filters Map(LowCardinality(String), String) COMMENT 'filter name to value, e.g. genre, year, country',
    results_count Nullable(UInt32) COMMENT 'results the search returned'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (toDate(timestamp), query, event_id)
