-- Version 2: the specification's fields. movie_id (a UUID) becomes video_id (the
-- catalogue's string id), which also leads the sort key. Rebuilds the table and keeps the old one.
INSERT INTO {database}.{next}
    (event_id, event, timestamp, user_id, identity, schema_version,
     video_id, old_quality, new_quality, reason, position_s)
SELECT event_id, event, timestamp, user_id, identity, schema_version,
       toString(movie_id), old_quality, new_quality, reason, position_s
FROM {database}.{table}
