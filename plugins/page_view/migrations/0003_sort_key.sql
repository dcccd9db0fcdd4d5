-- Issue 13: a sort key for what analysts ask (a time range, a user, both).
-- ORDER BY (page_view_id, event, event_id) becomes
-- (toDate(timestamp), user_id, page_view_id, event, event_id); page_type, free text a client
-- chooses, becomes String instead of LowCardinality(String).
-- Rebuilds the table and keeps the old one; every row is copied unchanged.
INSERT INTO {database}.{next}
    (event_id, event, timestamp, user_id, identity, schema_version, page_view_id,
     page_type, video_id, url, referrer, visible_ms)
SELECT event_id, event, timestamp, user_id, identity, schema_version, page_view_id,
       page_type, video_id, url, referrer, visible_ms
FROM {database}.{table}
