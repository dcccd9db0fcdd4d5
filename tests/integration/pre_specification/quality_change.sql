CREATE TABLE IF NOT EXISTS {database}.{table}
(
    {envelope_columns},
    movie_id UUID,
    old_quality UInt16 COMMENT 'video height in pixels before the change: 480, 720, 1080, 2160, ...',
    new_quality UInt16 COMMENT 'video height in pixels after the change',
    reason LowCardinality(Nullable(String)) COMMENT 'auto (adaptive streaming) or manual (the viewer chose)',
    position_s Nullable(UInt32) COMMENT 'seconds into the video when quality changed'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (movie_id, timestamp, event_id)
