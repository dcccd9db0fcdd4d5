-- Version 2: the specification's fields. element_id becomes optional, movie_id (a UUID)
-- becomes video_id (the catalogue's string id). Rebuilds the table and keeps the old one.
INSERT INTO {database}.{next}
    (event_id, event, timestamp, user_id, identity, schema_version,
     element_type, page_type, element_id, video_id, position)
SELECT event_id, event, timestamp, user_id, identity, schema_version,
       element_type, page_type, element_id, toString(movie_id), position
FROM {database}.{table}
