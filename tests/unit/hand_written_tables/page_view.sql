CREATE TABLE IF NOT EXISTS {database}.{table}
(
    {envelope_columns},
    page_view_id UUID COMMENT 'client-generated, shared by the start and the end of one view',
    page_type LowCardinality(String) COMMENT 'movie, category, promotion, ...',
    video_id Nullable(String) COMMENT 'optional: catalogue id of the video the page is about',
    url Nullable(String) COMMENT 'optional, start only',
    referrer Nullable(String) COMMENT 'optional, start only',
    visible_ms Nullable(UInt32) COMMENT 'optional, end only: time the page was visible, measured by the client'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (page_view_id, event, event_id)
