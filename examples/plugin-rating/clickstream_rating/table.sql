CREATE TABLE IF NOT EXISTS {database}.{table}
(
    {envelope_columns},
    video_id String COMMENT 'catalogue id of the rated video',
    score UInt8 COMMENT 'from 1 (worst) to 10 (best)',
    review Nullable(String) COMMENT 'the viewer''s text, UTF-8; NULL when none was written'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (video_id, timestamp, event_id)
