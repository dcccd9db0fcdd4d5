"""Every hook a clickstream plugin can implement; the docstrings are the reference for authors."""

from __future__ import annotations

import pluggy

from core.host.registry import EventType, PluginSetting, Report, TrackerScript, View

PROJECT_NAME = "clickstream"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_event_types() -> list[EventType]:
    """Return the event types this plugin adds to clickstream.

    Each `EventType` (import it with `from core import EventType, hookimpl`) is one
    event name clients may send, `{"event": name, "token": ..., "data": {...}}`,
    together with everything the pipeline needs to handle it:

    * `name`: the event name clients send: a lower-case letter, then lower-case
      letters, digits and underscores, 64 characters at most (`rating_submitted`),
      unique across all plugins. Name it as the client team will call it:
      clickstream imposes no tense or form (the built-in event types keep the
      names the specification gives them).
    * `schema`: a marshmallow schema class validating `data`. Unknown fields are
      refused, so list every field a client may send. Build it of the field kinds of
      `core`, which refuse silent coercion and each know their column: `Text`
      (bounded), `Choice` (one of fixed values), `Integer` (bounded), `Number`,
      `Boolean`, `UUID` and `Timestamp`. Each takes `validate=` (one validator or a
      list) on top of its own rules.
    * `table` and `ddl`: the ClickHouse table the ETL writes the event into and,
      optionally, its DDL. Left out, `ddl` is generated from `schema`
      (`clickstream ddl` prints it): the columns every table has (`event_id`,
      `event`, `timestamp`, `user_id`, `identity`, `schema_version`), then one per
      field in declaration order, of its kind's type, `Nullable` when the field is
      optional, commented with its `metadata["description"]`; a `ReplacingMergeTree`
      partitioned by month. To write it yourself, ship `table.sql` beside your code:
      `CREATE TABLE IF NOT EXISTS {database}.{table}` (the ETL fills in both
      placeholders) with columns starting `{envelope_columns},`, read with
      `core.load_ddl(__name__)`. Event types of one plugin may share a table:
      leave `ddl` out of each (with one `order_by`) and it is generated with the
      fields of all their schemas, or give each the same DDL.
    * `example`: a valid `data` object, shown in the OpenAPI document; it must pass
      `schema`.
    * `to_row` (optional): turns an enriched message (see `docs/message.md`) whose
      `data` has been loaded by `schema` into a dict of column values, in the
      table's column order. The default, `core.default_row`, gives the envelope
      columns followed by one column per `data` field; with it and a generated
      table, the ETL leaves the mapping to ClickHouse, which reads the rows
      from the messages' JSON.
    * `description` (optional): one sentence for readers, shown in the OpenAPI document.
    * `version` (optional, default 1): the version of `schema`, recorded with each
      event as `schema_version`. Bump it for a breaking change (a field removed,
      retyped or newly required, bounds narrowed); `clickstream schema-check`
      refuses such a change without a bump.
    * `order_by` (optional): the sort key of a generated table, column names or
      expressions (`("video_id", "timestamp")`); `event_id` ends it unless it is there,
      so that a re-delivered event collapses into one row. The default is
      `(toDate(timestamp), event, event_id)`. A written `ddl` has its own `ORDER BY`.
    * `plugin`: set by clickstream to the plugin that returned the event type; leave it.
    * `generated`, `columns`: set by clickstream in its copy of the event type: whether
      the table is generated, and its columns after the envelope's; leave them.

    A plugin contributes all of its event types or none: an invalid one stops
    start-up. Two plugins claiming one event name stop start-up too, with a
    message naming both.
    """


@hookspec
def register_settings() -> list[PluginSetting]:
    """Return the settings this plugin reads.

    Each `PluginSetting(name, default, doc)` (from `core`) is read, like clickstream's own
    settings, from the environment variable `CLICKSTREAM_<NAME>` and parsed to the type
    of `default` (int, float, str or bool); a bad value stops start-up with a message
    naming the variable. `docs/configuration.md` lists them with the plugin's name.
    Read its value with `settings.plugin_value(setting)` (`settings` is the `Settings`
    the API or the ETL runs with); a view's query may also use it as `{name}`. Names are
    lower case, digits and underscores, and unique across plugins.
    """


@hookspec
def register_views(tables: tuple[str, ...]) -> list[View]:
    """Return the SQL views this plugin adds over its tables.

    Each `View(name, query, tables, description)` (from `core`) becomes
    `CREATE OR REPLACE VIEW {database}.{name} AS {query}`, made by the ETL once every
    table in `tables` (event tables of registered event types) exists, and made again
    when one of them changes or when the query changes (a query's `{setting}` placeholders
    are filled from the plugin's settings, so a changed setting takes effect at the next
    pass). In `query`, `{database}` is the warehouse database. A view that cannot be made
    is logged and retried; it never stops loading. Views are made in the order plugins
    return them, so a view may read one returned before it.

    The hook's argument `tables` (take it only if you need it: a hook implementation may
    leave out arguments) names every event table of every installed plugin, sorted: a view
    over every event (`UNION ALL` of each table's envelope columns, which all of them have,
    see `register_event_types`) lists them all as its `tables`, so that every plugin's
    events take part. The ETL's own tables (`docs/warehouse.md`), such as
    `identity_links`, may be read too; they exist before any view is made.
    """


@hookspec
def register_reports() -> list[Report]:
    """Return the reports this plugin adds.

    Each `Report(name, description, query, figures, needs)` (from `core`) is printed by
    `clickstream report NAME`: the rows of `query` as a table, then its figures. `figures`
    (optional) is a query returning one row whose columns are named numbers (say `open`,
    `timed_out`); the quality report lists them and the ETL exports each as the metric
    `clickstream_report_figure{report, figure}`. Both queries may use `{database}`.
    `needs` names the tables or views the report reads: while one is missing, the report
    is empty and its figures are not exported. `counts` and `quality` are taken.
    """


@hookspec
def register_tracker_scripts() -> list[TrackerScript]:
    """Return the scripts the browser tracker runs to send this plugin's events.

    The API serves one tracker, `GET /static/clickstream.js` (guide: `docs/clients.md`):
    clickstream's own part sends events, and each `TrackerScript(name, source,
    description)` (from `core`) follows it, in the order of their names. `source` is the
    body of a function that is called once, when the page loads the tracker, with one
    argument, `tracker`:

    * `tracker.track(event, data)` sends an event (with the page's token) and resolves to
      `{status, body}`, retrying 429, 503 and network failures;
    * `tracker.sendOnExit(event, data)` sends an event while the page is being hidden or
      closed (a beacon, which outlives the page);
    * `tracker.page()` is the page's context, `{pageType, videoId}`, from the script tag's
      `data-page-type` / `data-video-id` or `window.clickstreamConfig`;
    * `tracker.onPageChange(before, after)` calls `before()` when a single-page app moves
      to another page (`clickstream.newPage(options)`) and `after()` once it is there;
    * `tracker.uuid()` makes a version 4 UUID; `tracker.expose(functions)` adds functions
      to `window.clickstream` for the page's own code;
    * `tracker.visitor()` is `{anonymousId, sessionId}`, the ids every event carries.

    Ship the source as a `.js` file beside your code and read it with
    `importlib.resources`. A script that throws is logged to the browser console and the
    other scripts still run.
    """
