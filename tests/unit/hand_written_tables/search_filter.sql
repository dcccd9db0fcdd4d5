CREATE TABLE IF NOT EXISTS {database}.{table}
(
    {envelope_columns},
    search_query String COMMENT 'search text as typed, empty when only filters were used',
    filters String COMMENT 'the filters as the client sent them, e.g. genre=драма; empty when none',
    results_count Nullable(UInt32) COMMENT 'optional: results the search returned'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (toDate(timestamp), search_query, event_id)
