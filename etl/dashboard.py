"""The dashboard: figures of the warehouse gathered in one short session and written as one
self-contained HTML page (Chart.js inlined, no network), by ``clickstream dashboard --out``
and by the ETL after its passes, for the API to serve at ``GET /ops/dashboard``.

What it draws is discovered: every event table of the registry, every plugin report, a view
of visits wherever one has ``session_id``, ``started_at`` and ``duration_s`` columns, the
DAU / MAU figures of whichever report has ``dau`` and ``mau``. What is missing says so.
"""

from __future__ import annotations

import html
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from importlib.resources import files
from pathlib import Path

import orjson
from clickhouse_connect.driver.client import Client

from core.config import Settings
from core.host.registry import Registry
from core.message import ANONYMOUS
from etl import availability, reports
from etl.ledger import PassResult
from etl.warehouse import Warehouse

log = logging.getLogger(__name__)

#: Chart.js 4.6.1 (MIT, etl/assets/chart.js-LICENSE.md), from the npm package's dist/.
CHART_JS = "chart.umd.min.js"
#: How far back the charts over time reach, from the newest event.
WINDOW_DAYS = 14
#: The columns that make a relation a table of visits (one row per session id).
VISIT_COLUMNS = frozenset({"session_id", "started_at", "duration_s"})
#: The figures of a report of active users, in the order they are shown.
AUDIENCE_FIGURES = ("dau", "wau", "mau", "sessions_per_day", "median_session_s", "dau_wow_change")
NOT_YET = "not available yet"
#: The steps of the charts over time, in seconds, and the most points one chart draws.
STEPS = (1, 5, 15, 60, 300, 900, 3600, 21600, 86400)
MOST_POINTS = 120


@dataclass
class Chart:
    """One chart: ``labels`` along the x axis, one series of values per name."""

    title: str
    kind: str  # "line" or "bar"
    labels: list[str]
    series: dict[str, list[float]]


@dataclass
class Tile:
    """One figure shown large."""

    label: str
    value: str


@dataclass
class Section:
    """A part of the page; ``missing`` says what it lacks, and then it has no chart."""

    title: str
    description: str = ""
    tiles: list[Tile] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    missing: str = ""


@dataclass
class Dashboard:
    generated_at: str
    database: str
    sections: list[Section]


def collect(settings: Settings, registry: Registry) -> Dashboard:
    """Every figure of the page. The warehouse is held for one session (the chDB lock: the
    ETL waits meanwhile), Kafka's lag is asked after it is released."""
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        columns = _columns(client, warehouse)
        tables = [table for table in registry.tables() if "timestamp" in columns.get(table, {})]
        step = _step(client, warehouse, tables)
        sections = [
            _events(client, warehouse, tables, step),
            _active(client, warehouse, tables, columns),
            _visits(client, warehouse, registry, columns, step),
        ]
        plugin_reports = [
            (report, reports.plugin_report(settings, registry, report.name))
            for report in registry.reports.values()
        ]
        quality = reports.quality_report(settings, registry, with_lag=False)
        passes = _passes(client, warehouse, settings)
        scrapes = availability.load(client, warehouse, settings.availability.window_s)
    sections[1].tiles[:0] = _audience_tiles(plugin_reports)
    sections += [_report_section(report, result) for report, result in plugin_reports]
    quality.lag = reports.consumer_lag(settings)
    sections.append(_quality(quality, passes))
    sections.append(_availability(scrapes, settings))
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Dashboard(generated_at=now, database=warehouse.database, sections=sections)


def _columns(client: Client, warehouse: Warehouse) -> dict[str, dict[str, str]]:
    """Every table and view of the warehouse's database: its columns and their types."""
    found: dict[str, dict[str, str]] = {}
    for table, name, kind in client.query(
        "SELECT table, name, type FROM system.columns WHERE database = {db:String}",
        parameters={"db": warehouse.database},
    ).result_rows:
        found.setdefault(table, {})[name] = kind
    return found


def _union(warehouse: Warehouse, tables: list[str], select: str) -> str:
    return " UNION ALL ".join(f"SELECT {select} FROM {warehouse.table(t)}" for t in tables)


def _step(client: Client, warehouse: Warehouse, tables: list[str]) -> int:
    """Seconds per point of the charts over time: the shortest of :data:`STEPS` that draws
    the events' span in at most :data:`MOST_POINTS` points (seconds for a demo's minute)."""
    if not tables:
        return 3600
    first, last = client.query(
        "SELECT min(t), max(t) FROM ("
        + _union(warehouse, tables, "min(timestamp) AS t")
        + " UNION ALL "
        + _union(warehouse, tables, "max(timestamp) AS t")
        + ") WHERE t > toDateTime64(0, 3, 'UTC')"
    ).result_rows[0]
    if first is None or last is None:
        return 3600
    span = (last - first).total_seconds()
    return next((step for step in STEPS if span / step <= MOST_POINTS), STEPS[-1])


def _window(column: str) -> str:
    return f"{column} >= (SELECT max({column}) FROM rows) - INTERVAL {WINDOW_DAYS} DAY"


def _label(moment: datetime | object, step: int) -> str:
    if not isinstance(moment, datetime):
        return str(moment)
    if step >= 86400:
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%H:%M:%S" if step < 60 else "%m-%d %H:%M")


def _pivot(rows: list[tuple], step: int) -> tuple[list[str], dict[str, list[float]]]:
    """(bucket, name, value) rows as labels and one series per name, zeros where missing."""
    buckets = sorted({row[0] for row in rows})
    names = sorted({row[1] for row in rows})
    at = {bucket: index for index, bucket in enumerate(buckets)}
    series = {name: [0.0] * len(buckets) for name in names}
    for bucket, name, value in rows:
        series[name][at[bucket]] = _number(value)
    return [_label(bucket, step) for bucket in buckets], series


def _number(value: object) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    return 0.0


def _events(client: Client, warehouse: Warehouse, tables: list[str], step: int) -> Section:
    section = Section(
        "Events", f"Distinct events per type, per {_unit(step)}, over the last {WINDOW_DAYS} days."
    )
    if not tables:
        section.missing = "no event table yet: the ETL creates them at its first pass"
        return section
    rows = client.query(
        "WITH rows AS (" + _union(warehouse, tables, "event, event_id, timestamp") + ") "
        f"SELECT toStartOfInterval(timestamp, INTERVAL {step} SECOND) AS bucket, event, "
        f"uniqExact(event_id) FROM rows WHERE {_window('timestamp')} "
        "GROUP BY bucket, event ORDER BY bucket, event"
    ).result_rows
    if not rows:
        section.missing = "no event loaded yet"
        return section
    labels, series = _pivot(rows, step)
    totals = {name: int(sum(values)) for name, values in series.items()}
    section.tiles = [Tile("events", str(sum(totals.values())))]
    section.tiles += [Tile(name, str(total)) for name, total in totals.items()]
    section.charts = [Chart("Events per type", "line", labels, series)]
    return section


def _unit(step: int) -> str:
    named = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
    if step in named:
        return named[step]
    return f"{step} s" if step < 60 else f"{step // 60} min" if step < 3600 else f"{step // 3600} h"


def _active(
    client: Client,
    warehouse: Warehouse,
    tables: list[str],
    columns: dict[str, dict[str, str]],
) -> Section:
    """Active users per day, counted from the event tables themselves: by user id, and by
    anonymous id for logged-out events where the tables have one; bots left out."""
    with_anonymous = bool(tables) and all("anonymous_id" in columns[t] for t in tables)
    with_bots = bool(tables) and all("is_bot" in columns[t] for t in tables)
    who = (
        f"if(user_id = '{ANONYMOUS.user_id}', ifNull(anonymous_id, ''), user_id)"
        if with_anonymous
        else f"if(user_id = '{ANONYMOUS.user_id}', '', user_id)"
    )
    counted = "user ids, and anonymous ids of logged-out events" if with_anonymous else "user ids"
    section = Section(
        "Active users (DAU / MAU)",
        f"Distinct {counted} per day"
        + (", bots excluded" if with_bots else "")
        + "; the tiles are the figures of the report of active users (one person counted once).",
    )
    if not tables:
        section.missing = "no event table yet"
        return section
    bot = "is_bot" if with_bots else "false"
    rows = client.query(
        "WITH rows AS ("
        + _union(warehouse, tables, f"timestamp, {who} AS who, {bot} AS bot")
        + ") SELECT toDate(timestamp) AS day, 'active users', uniqExact(who) FROM rows "
        f"WHERE who != '' AND NOT bot AND {_window('timestamp')} GROUP BY day ORDER BY day"
    ).result_rows
    if rows:
        labels, series = _pivot(rows, 86400)
        section.charts = [Chart("Active users per day", "bar", labels, series)]
    else:
        section.missing = "no logged-in event yet"
    return section


def _audience_tiles(plugin_reports: list) -> list[Tile]:
    for _report, result in plugin_reports:
        if result.available and {"dau", "mau"} <= set(result.figures):
            return [
                Tile(name.replace("_", " "), _show(result.figures[name]))
                for name in AUDIENCE_FIGURES
                if name in result.figures
            ]
    return [Tile("DAU / MAU", NOT_YET)]


def _show(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.1f}" if value != int(value) else str(int(value))
    return str(value)


def _visits(
    client: Client,
    warehouse: Warehouse,
    registry: Registry,
    columns: dict[str, dict[str, str]],
    step: int,
) -> Section:
    section = Section("Sessions", "Visits started, and their median length, over time.")
    candidates = [name for name in registry.views if set(columns.get(name, {})) >= VISIT_COLUMNS]
    candidates += sorted(
        name
        for name, have in columns.items()
        if name not in candidates and set(have) >= VISIT_COLUMNS
    )
    if not candidates:
        section.missing = (
            f"{NOT_YET}: no view with session_id, started_at and duration_s "
            "(they come with session ids on events)"
        )
        return section
    name = candidates[0]
    bots = "WHERE NOT is_bot" if "is_bot" in columns[name] else ""
    rows = client.query(
        f"WITH rows AS (SELECT * FROM {warehouse.table(name)} {bots}) "
        f"SELECT toStartOfInterval(started_at, INTERVAL {step} SECOND) AS bucket, "
        "count(), quantile(0.5)(duration_s) FROM rows "
        f"WHERE {_window('started_at')} GROUP BY bucket ORDER BY bucket"
    ).result_rows
    if not rows:
        section.missing = f"no visit in {name} yet"
        return section
    labels = [_label(row[0], step) for row in rows]
    section.description += f" From the view {name}."
    total, *_ = client.query(f"SELECT count() FROM {warehouse.table(name)} {bots}").result_rows[0]
    median = client.query(
        f"SELECT quantile(0.5)(duration_s) FROM {warehouse.table(name)} {bots}"
    ).result_rows[0][0]
    section.tiles = [Tile("visits", str(total)), Tile("median length s", _show(median))]
    section.charts = [
        Chart(f"Visits started per {_unit(step)}", "bar", labels, {"visits": [r[1] for r in rows]}),
        Chart(
            "Median visit length (s)",
            "line",
            labels,
            {"median s": [_number(r[2]) for r in rows]},
        ),
    ]
    return section


def _report_section(report, result: reports.ReportResult) -> Section:
    section = Section(f"Report {report.name}", report.description)
    if not result.available:
        section.missing = f"{NOT_YET}: {', '.join(report.needs)} missing"
        return section
    numeric = [
        index
        for index in range(len(result.columns))
        if any(isinstance(row[index], (int, float, Decimal)) for row in result.rows)
    ]
    text = [index for index in range(len(result.columns)) if index not in numeric]
    if result.rows and numeric:
        label_at = text[0] if text else None
        labels = [
            str(row[label_at]) if label_at is not None else str(number)
            for number, row in enumerate(result.rows, start=1)
        ]
        series = {result.columns[i]: [_number(row[i]) for row in result.rows] for i in numeric}
        by = f" by {result.columns[label_at]}" if label_at is not None else ""
        section.charts.append(Chart(f"{report.name}{by}", "bar", labels, series))
    if result.figures:
        section.tiles = [Tile(name, _show(value)) for name, value in result.figures.items()]
        section.charts.append(
            Chart(
                f"{report.name}: figures",
                "bar",
                list(result.figures),
                {"count": [_number(value) for value in result.figures.values()]},
            )
        )
    if not section.charts:
        section.missing = "nothing to report yet"
    return section


def _passes(client: Client, warehouse: Warehouse, settings: Settings) -> Chart | None:
    """What the last passes that loaded something did, message by message."""
    if not warehouse.has_table(client, "etl_passes"):
        return None
    rows = client.query(
        "SELECT updated_at, rows, dead_letters, skipped, forgotten FROM ("
        f"SELECT * FROM {warehouse.table('etl_passes')} FINAL WHERE status = 'loaded' "
        "AND messages > 0 AND consumer_group = {g:String} "
        f"ORDER BY updated_at DESC LIMIT {MOST_POINTS}) ORDER BY updated_at",
        parameters={"g": settings.etl.group},
    ).result_rows
    if not rows:
        return None
    names = ("rows loaded", "dead letters", "skipped", "forgotten")
    return Chart(
        "Messages per ETL pass",
        "bar",
        [moment.strftime("%m-%d %H:%M:%S") for moment, *_ in rows],
        {name: [_number(row[i + 1]) for row in rows] for i, name in enumerate(names)},
    )


def _quality(quality: reports.QualityReport, passes: Chart | None = None) -> Section:
    absorbed = sum(d.absorbed for d in quality.duplicates)
    pending = sum(d.pending for d in quality.duplicates)
    redelivered = sum(d.redelivered for d in quality.duplicates)
    lag = quality.total_lag
    figures = {
        "missing offsets (gaps)": quality.missing_offsets,
        "duplicates absorbed": absorbed,
        "duplicates pending merge": pending,
        "redelivered": redelivered,
        "dead letters waiting": quality.dead_letters,
        "consumer lag": lag if lag is not None else 0,
    }
    section = Section(
        "Data quality",
        "Offsets lost before the ETL read them, events delivered more than once, messages "
        "waiting in Kafka and in the dead letters, and how fresh the newest event is.",
    )
    section.tiles = [
        Tile("freshness", "–" if quality.freshness_s is None else f"{quality.freshness_s:.0f} s"),
        Tile(
            "last loaded pass",
            quality.last_pass.strftime("%Y-%m-%d %H:%M:%S UTC") if quality.last_pass else "never",
        ),
        Tile("consumer lag", "unknown (Kafka unreachable)" if lag is None else str(lag)),
        Tile("missing offsets", str(quality.missing_offsets)),
        Tile("duplicates", str(absorbed + pending)),
        Tile("dead letters waiting", str(quality.dead_letters)),
    ]
    section.charts = [
        Chart("Data-quality counts", "bar", list(figures), {"count": list(figures.values())})
    ]
    if passes is not None:
        section.charts.append(passes)
    return section


def _percent(ratio: float) -> str:
    return f"{ratio * 100:.3f}".rstrip("0").rstrip(".") + " %"


def _availability(scrapes: list[availability.Scrape], settings: Settings) -> Section:
    objective = settings.availability.objective
    figures = availability.compute(scrapes, objective)
    days = settings.availability.window_s / 86400
    section = Section(
        "Availability",
        f"Share of the API's client requests answered without a server error (5xx) over the "
        f"last {days:g} days, against the {_percent(objective)} objective, from the API's "
        "request counters the ETL scrapes into api_requests (docs/deploy.md).",
    )
    if not figures.scrapes:
        section.missing = "no scrape of the API's metrics yet (the ETL scrapes after its passes)"
        return section
    ratio = figures.ratio
    section.tiles = [
        Tile("availability", "–" if ratio is None else _percent(ratio)),
        Tile("objective", _percent(objective)),
        Tile("error budget left", _percent(figures.budget_remaining)),
        Tile("requests", str(figures.requests)),
        Tile("server errors", str(figures.server_errors)),
        Tile("API unreachable", f"{figures.unreachable} of {figures.scrapes} scrapes"),
    ]
    counted = [row for row in availability.increases(scrapes) if row[1]][-MOST_POINTS:]
    if counted:
        section.charts = [
            Chart(
                "Requests answered without a 5xx, per scrape interval (%)",
                "line",
                [moment.strftime("%m-%d %H:%M") for moment, _, _ in counted],
                {
                    "availability": [round(100 * (1 - e / n), 3) for _, n, e in counted],
                    "objective": [100 * objective] * len(counted),
                },
            )
        ]
    return section


# The page


def render(dashboard: Dashboard) -> str:
    """The page: HTML, CSS, Chart.js and the figures, nothing fetched from anywhere."""
    data = orjson.dumps(asdict(dashboard)).decode().replace("</", "<\\/")
    library = files("etl").joinpath("assets", CHART_JS).read_text(encoding="utf-8")
    title = f"clickstream dashboard · {html.escape(dashboard.database)}"
    return (
        PAGE.replace("{title}", title)
        .replace("{generated}", html.escape(dashboard.generated_at))
        .replace("{library}", library.replace("</script", "<\\/script"))
        .replace("{data}", data)
    )


def write(settings: Settings, registry: Registry, path: Path) -> Path:
    """Write the page to ``path`` atomically (a reader sees the old page or the new one)."""
    page = render(collect(settings, registry))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(page)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def after_passes(
    settings: Settings,
    registry: Registry,
    pass_function: Callable[[Settings, Registry], PassResult],
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[Settings, Registry], PassResult]:
    """``pass_function``, rewriting ``CLICKSTREAM_DASHBOARD_FILE`` after a successful pass
    at most every ``CLICKSTREAM_DASHBOARD_INTERVAL_S``; a failure to write is logged only."""
    target = settings.dashboard.file
    if not target:
        return pass_function
    written: list[float] = []

    def run(pass_settings: Settings, pass_registry: Registry) -> PassResult:
        result = pass_function(pass_settings, pass_registry)
        if not written or clock() - written[-1] >= settings.dashboard.interval_s:
            written[:] = [clock()]
            try:
                write(settings, registry, Path(target))
            except Exception as error:  # the dashboard never fails a pass
                log.warning("etl.dashboard_failed path=%s error=%s", target, error)
        return result

    return run


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
  header { background: #1d2330; color: #fff; padding: 14px 24px; }
  header h1 { font-size: 20px; margin: 0; }
  header p { margin: 4px 0 0; color: #b8c0cc; }
  main { padding: 12px 24px 32px; display: grid; gap: 16px;
         grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); }
  section { background: #fff; border-radius: 8px; padding: 14px 18px;
            box-shadow: 0 1px 3px rgba(0,0,0,.12); }
  section h2 { font-size: 16px; margin: 0 0 4px; }
  section > p { margin: 0 0 10px; color: #5b6472; }
  .tiles { display: flex; flex-wrap: wrap; gap: 8px; margin-bottom: 10px; }
  .tile { background: #eef1f6; border-radius: 6px; padding: 6px 10px; min-width: 90px; }
  .tile b { display: block; font-size: 18px; }
  .tile span { color: #5b6472; font-size: 12px; }
  .chart { position: relative; height: 260px; margin-top: 8px; }
  .missing { color: #8a5a00; background: #fff6e0; border-radius: 6px; padding: 8px 10px; }
</style>
</head>
<body>
<header><h1>{title}</h1><p>generated {generated}</p></header>
<main id="sections"></main>
<script>{library}</script>
<script type="application/json" id="dashboard-data">{data}</script>
<script>
(function () {
  const data = JSON.parse(document.getElementById("dashboard-data").textContent);
  const main = document.getElementById("sections");
  const palette = ["#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6",
                   "#dd4477", "#66aa00", "#b82e2e", "#316395"];
  const element = (tag, attributes, text) => {
    const node = document.createElement(tag);
    Object.entries(attributes || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    return node;
  };
  data.sections.forEach((section, s) => {
    const box = element("section", {"data-section": section.title});
    box.appendChild(element("h2", {}, section.title));
    if (section.description) box.appendChild(element("p", {}, section.description));
    if (section.tiles.length) {
      const tiles = element("div", {class: "tiles"});
      section.tiles.forEach((tile) => {
        const t = element("div", {class: "tile"});
        t.appendChild(element("b", {}, tile.value));
        t.appendChild(element("span", {}, tile.label));
        tiles.appendChild(t);
      });
      box.appendChild(tiles);
    }
    if (section.missing) box.appendChild(element("p", {class: "missing"}, section.missing));
    section.charts.forEach((chart, c) => {
      const holder = element("div", {class: "chart"});
      const canvas = element("canvas", {id: `chart-${s}-${c}`, "data-title": chart.title});
      holder.appendChild(canvas);
      box.appendChild(holder);
      const names = Object.keys(chart.series);
      new Chart(canvas, {
        type: chart.kind,
        data: {
          labels: chart.labels,
          datasets: names.map((name, i) => ({
            label: name, data: chart.series[name],
            borderColor: palette[i % palette.length],
            backgroundColor: palette[i % palette.length] + (chart.kind === "bar" ? "cc" : "33"),
            tension: 0.2, pointRadius: 2,
          })),
        },
        options: {
          animation: false, responsive: true, maintainAspectRatio: false,
          plugins: {title: {display: true, text: chart.title},
                    legend: {display: names.length > 1}},
          scales: {y: {beginAtZero: true}},
        },
      });
    });
    main.appendChild(box);
  });
  window.dashboardReady = true;
})();
</script>
</body>
</html>
"""
