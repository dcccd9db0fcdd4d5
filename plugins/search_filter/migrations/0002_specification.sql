-- Version 2: the specification's fields. query becomes search_query, and filters, a map,
-- becomes the string clients send, written here as name=value pairs joined by '&'.
-- Rebuilds the table and keeps the old one.
INSERT INTO {database}.{next}
    (event_id, event, timestamp, user_id, identity, schema_version,
     search_query, filters, results_count)
SELECT event_id, event, timestamp, user_id, identity, schema_version,
       query,
       arrayStringConcat(
           arrayMap((name, value) -> concat(name, '=', value), mapKeys(filters), mapValues(filters)),
           '&'),
       results_count
FROM {database}.{table}
