CREATE TABLE IF NOT EXISTS {database}.{table}
(
    {envelope_columns},
    element_type LowCardinality(String) COMMENT 'movie, category, trailer, ...',
    page_type LowCardinality(String) COMMENT 'page the element is on: movie, category, promotion, ...',
    element_id Nullable(String) COMMENT 'optional: client-side identifier of the element',
    video_id Nullable(String) COMMENT 'optional: catalogue id of the video behind a clicked card',
    position Nullable(UInt32) COMMENT 'optional: rank of the element in its list, 0 = first'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (page_type, element_type, toDate(timestamp), event_id)
