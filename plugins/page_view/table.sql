CREATE TABLE IF NOT EXISTS {database}.{table}
(
    event_id UUID,
    event LowCardinality(String) COMMENT 'page_view_start or page_view_end',
    timestamp DateTime64(3, 'UTC') COMMENT 'server receive time',
    user_id String COMMENT 'anonymous when the client sent no token',
    identity LowCardinality(String) COMMENT 'anonymous, verified or degraded',
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
