-- Version 2: the specification's fields. movie_id (a UUID) becomes video_id (the
-- catalogue's string id). Rebuilds the table and keeps the old one.
INSERT INTO {database}.{next}
    (event_id, event, timestamp, user_id, identity, schema_version,
     page_view_id, page_type, video_id, url, referrer, visible_ms)
SELECT event_id, event, timestamp, user_id, identity, schema_version,
       page_view_id, page_type, toString(movie_id), url, referrer, visible_ms
FROM {database}.{table}
