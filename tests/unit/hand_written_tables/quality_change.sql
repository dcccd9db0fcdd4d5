CREATE TABLE IF NOT EXISTS {database}.{table}
(
    {envelope_columns},
    video_id String COMMENT 'catalogue id of the video',
    old_quality UInt16 COMMENT 'quality before the change, e.g. video height in pixels: 480, 720, 1080',
    new_quality UInt16 COMMENT 'quality after the change',
    reason LowCardinality(Nullable(String)) COMMENT 'optional: auto (adaptive streaming) or manual (the viewer chose)',
    position_s Nullable(UInt32) COMMENT 'optional: seconds into the video when quality changed'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (video_id, timestamp, event_id)
