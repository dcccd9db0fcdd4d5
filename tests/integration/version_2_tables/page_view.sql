-- page_views as version 2 generated it, before issue 13 chose its sort key.
CREATE TABLE IF NOT EXISTS {database}.{table}
(
    event_id UUID COMMENT 'unique per event: re-deliveries share it and collapse',
    event LowCardinality(String) COMMENT 'the event name',
    timestamp DateTime64(3, 'UTC') COMMENT 'server receive time',
    user_id String COMMENT 'anonymous when the client sent no token',
    identity LowCardinality(String) COMMENT 'anonymous, verified or degraded',
    schema_version UInt16 DEFAULT 1 COMMENT 'version of the event type the data was validated by',
    page_view_id UUID COMMENT 'Made by the client; shared by the start and the end of a view.',
    page_type LowCardinality(String) COMMENT 'The kind of page: movie, category, promotion, ...',
    video_id Nullable(String) COMMENT 'The catalogue id of the video the page is about.',
    url Nullable(String) COMMENT 'The page''s URL.',
    referrer Nullable(String) COMMENT 'The URL the viewer came from.',
    visible_ms Nullable(UInt32) COMMENT 'How long the page was visible, measured by the client.'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (page_view_id, event, event_id)
