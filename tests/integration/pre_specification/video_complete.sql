CREATE TABLE IF NOT EXISTS {database}.{table}
(
    {envelope_columns},
    movie_id UUID,
    duration_total Bool COMMENT 'true: the viewer watched the entire duration',
    watched_s Nullable(UInt32) COMMENT 'seconds actually played',
    duration_s Nullable(UInt32) COMMENT 'length of the video in seconds'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (movie_id, timestamp, event_id)
