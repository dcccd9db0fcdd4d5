-- Issue 13: a sort key for what analysts ask (a time range, a user, both).
-- ORDER BY (video_id, timestamp, event_id) becomes
-- (toDate(timestamp), user_id, video_id, event_id).
-- Rebuilds the table and keeps the old one; every row is copied unchanged.
INSERT INTO {database}.{next}
    (event_id, event, timestamp, user_id, identity, schema_version, video_id,
     duration_total, watched_s, duration_s)
SELECT event_id, event, timestamp, user_id, identity, schema_version, video_id,
       duration_total, watched_s, duration_s
FROM {database}.{table}
