CREATE TABLE IF NOT EXISTS {database}.{table}
(
    {envelope_columns},
    element_type LowCardinality(String) COMMENT 'button, link, poster, banner, ...',
    element_id String COMMENT 'client-side identifier of the element',
    page_type LowCardinality(String) COMMENT 'page the element is on: main, movie, search, profile, ...',
    movie_id Nullable(UUID) COMMENT 'movie behind a clicked card or poster',
    position Nullable(UInt32) COMMENT 'rank of the element in its list, 0 = first'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (page_type, element_type, toDate(timestamp), event_id)
