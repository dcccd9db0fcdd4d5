CREATE TABLE IF NOT EXISTS {database}.{table}
(
    event_id UUID,
    event LowCardinality(String),
    timestamp DateTime64(3, 'UTC') COMMENT 'server receive time',
    user_id String COMMENT 'anonymous when the client sent no token',
    identity LowCardinality(String) COMMENT 'anonymous, verified or degraded',
    movie_id UUID,
    duration_total Bool COMMENT 'true: the viewer watched the entire duration',
    watched_s Nullable(UInt32) COMMENT 'seconds actually played',
    duration_s Nullable(UInt32) COMMENT 'length of the video in seconds'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (movie_id, timestamp, event_id)
