-- video_completes as version 2 generated it, before issue 13 chose its sort key.
CREATE TABLE IF NOT EXISTS {database}.{table}
(
    event_id UUID COMMENT 'unique per event: re-deliveries share it and collapse',
    event LowCardinality(String) COMMENT 'the event name',
    timestamp DateTime64(3, 'UTC') COMMENT 'server receive time',
    user_id String COMMENT 'anonymous when the client sent no token',
    identity LowCardinality(String) COMMENT 'anonymous, verified or degraded',
    schema_version UInt16 DEFAULT 1 COMMENT 'version of the event type the data was validated by',
    video_id String COMMENT 'The catalogue id of the video.',
    duration_total Bool COMMENT 'true: the viewer watched the whole video.',
    watched_s Nullable(UInt32) COMMENT 'Seconds actually played.',
    duration_s Nullable(UInt32) COMMENT 'The length of the video in seconds.'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (video_id, timestamp, event_id)
