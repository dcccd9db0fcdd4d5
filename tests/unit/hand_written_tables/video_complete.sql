CREATE TABLE IF NOT EXISTS {database}.{table}
(
    {envelope_columns},
    video_id String COMMENT 'catalogue id of the video',
    duration_total Bool COMMENT 'true: the viewer watched the entire duration',
    watched_s Nullable(UInt32) COMMENT 'optional: seconds actually played',
    duration_s Nullable(UInt32) COMMENT 'optional: length of the video in seconds'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (video_id, timestamp, event_id)
