CREATE TABLE IF NOT EXISTS {database}.{table}
(
    {envelope_columns},
    page_view_id UUID COMMENT 'client-generated, shared by the start and the end of one view',
    page_type LowCardinality(String) COMMENT 'main, movie, search, profile, ...',
    movie_id Nullable(UUID) COMMENT 'movie shown on the page, if any',
    url Nullable(String) COMMENT 'start only',
    referrer Nullable(String) COMMENT 'start only',
    visible_ms Nullable(UInt32) COMMENT 'end only: time the page was visible, measured by the client'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (page_view_id, event, event_id)
