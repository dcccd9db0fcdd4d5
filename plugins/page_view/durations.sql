-- page_view_durations: one row per page_view_id, its start and end paired, and its status.
-- {page_view_timeout_s} is the plugin's setting; {database} the warehouse's database.
SELECT
    page_view_id,
    user_id,
    page_type,
    if(has_start, started, NULL) AS started_at,
    if(has_end, ended, NULL) AS ended_at,
    if(has_start AND has_end, dateDiff('millisecond', started, ended) / 1000, NULL) AS duration_s,
    multiIf(
        has_start AND has_end, 'closed',
        has_end, 'orphan_end',
        dateDiff('second', started, now64(3)) > {page_view_timeout_s}, 'timed_out',
        'open'
    ) AS status
FROM (
    SELECT
        page_view_id,
        if(countIf(event = 'page_view_start') > 0,
           anyIf(user_id, event = 'page_view_start'), any(user_id)) AS user_id,
        if(countIf(event = 'page_view_start') > 0,
           anyIf(page_type, event = 'page_view_start'), any(page_type)) AS page_type,
        countIf(event = 'page_view_start') > 0 AS has_start,
        countIf(event = 'page_view_end') > 0 AS has_end,
        minIf(timestamp, event = 'page_view_start') AS started,
        maxIf(timestamp, event = 'page_view_end') AS ended
    FROM {database}.page_views FINAL
    GROUP BY page_view_id
)
