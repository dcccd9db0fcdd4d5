-- Issue 13: a sort key for what analysts ask (a time range, a user, both).
-- ORDER BY (toDate(timestamp), search_query, event_id) becomes
-- (toDate(timestamp), user_id, event_id): free text leaves the key.
-- Rebuilds the table and keeps the old one; every row is copied unchanged.
INSERT INTO {database}.{next}
    (event_id, event, timestamp, user_id, identity, schema_version, search_query, filters,
     results_count)
SELECT event_id, event, timestamp, user_id, identity, schema_version, search_query,
       filters, results_count
FROM {database}.{table}
