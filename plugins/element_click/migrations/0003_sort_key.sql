-- Issue 13: a sort key for what analysts ask (a time range, a user, both).
-- ORDER BY (page_type, element_type, toDate(timestamp), event_id) becomes
-- (toDate(timestamp), user_id, event_id); element_type and page_type, free text
-- a client chooses, become String instead of LowCardinality(String).
-- Rebuilds the table and keeps the old one; every row is copied unchanged.
INSERT INTO {database}.{next}
    (event_id, event, timestamp, user_id, identity, schema_version, element_type,
     page_type, element_id, video_id, position)
SELECT event_id, event, timestamp, user_id, identity, schema_version, element_type,
       page_type, element_id, video_id, position
FROM {database}.{table}
