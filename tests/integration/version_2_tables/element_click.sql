-- element_clicks as version 2 generated it, before issue 13 chose its sort key.
CREATE TABLE IF NOT EXISTS {database}.{table}
(
    event_id UUID COMMENT 'unique per event: re-deliveries share it and collapse',
    event LowCardinality(String) COMMENT 'the event name',
    timestamp DateTime64(3, 'UTC') COMMENT 'server receive time',
    user_id String COMMENT 'anonymous when the client sent no token',
    identity LowCardinality(String) COMMENT 'anonymous, verified or degraded',
    schema_version UInt16 DEFAULT 1 COMMENT 'version of the event type the data was validated by',
    element_type LowCardinality(String) COMMENT 'What was clicked: movie, category, trailer, ...',
    page_type LowCardinality(String) COMMENT 'The page the element is on: movie, category, promotion, ...',
    element_id Nullable(String) COMMENT 'The client''s own identifier of the element.',
    video_id Nullable(String) COMMENT 'The catalogue id of the video behind a clicked card.',
    position Nullable(UInt32) COMMENT 'The rank of the element in its list, 0 for the first.'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (page_type, element_type, toDate(timestamp), event_id)
