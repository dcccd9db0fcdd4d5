-- page_view_durations, version 3: one row per page view, that is per page_view_id and user_id,
-- its start and end paired whatever order they arrived in, with its duration and its status.
-- {page_view_timeout_s} is the plugin's setting; {database} the warehouse's database.
-- Only a 'closed' view has a duration: the client's visible_ms where the end carries it,
-- else end minus start by server time. Every other status is an anomaly to count, not a
-- duration to average (docs/warehouse.md lists them).
SELECT
    page_view_id,
    user_id,
    page_type,
    started_at,
    ended_at,
    visible_ms,
    server_s,
    if(status = 'closed', if(visible_ms IS NULL, server_s, visible_ms / 1000), NULL) AS duration_s,
    starts,
    ends,
    status
FROM (
    SELECT
        *,
        if(starts > 0 AND ends > 0, dateDiff('millisecond', started_at, ended_at) / 1000, NULL)
            AS server_s,
        multiIf(
            users > 1 AND (starts = 0 OR ends = 0), 'other_user',
            starts > 1, 'several_starts',
            ends > 1, 'several_ends',
            starts = 1 AND ends = 1 AND visible_ms IS NULL AND ended_at < started_at,
                'end_before_start',
            starts = 1 AND ends = 1, 'closed',
            ends = 1, 'orphan_end',
            dateDiff('second', started_at, now64(3)) > {page_view_timeout_s}, 'timed_out',
            'open'
        ) AS status
    FROM (
        SELECT
            *,
            -- Another user sending this page_view_id (a sign-in in between, a copied id):
            -- what that user sent is not this user's start or end.
            count() OVER (PARTITION BY page_view_id) AS users
        FROM (
            SELECT
                page_view_id,
                user_id,
                countIf(event = 'page_view_start') AS starts,
                countIf(event = 'page_view_end') AS ends,
                if(starts > 0, anyIf(page_type, event = 'page_view_start'), any(page_type))
                    AS page_type,
                if(starts > 0, minIf(timestamp, event = 'page_view_start'), NULL) AS started_at,
                if(ends > 0, maxIf(timestamp, event = 'page_view_end'), NULL) AS ended_at,
                maxIf(visible_ms, event = 'page_view_end') AS visible_ms
            FROM {database}.page_views FINAL
            GROUP BY page_view_id, user_id
        )
    )
)
