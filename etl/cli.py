"""The ``clickstream`` console script: a thin argparse layer over :mod:`etl` and the plugins."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from core.api.compat import (
    PUBLISHED_DOCUMENT,
    check,
    check_fragment,
    format_changes,
    format_fragment_check,
    outside_note,
)
from core.config import PROJECT_ROOT, ConfigError, Settings
from core.host.plugin_manager import (
    build_registry,
    installed_event_types,
    is_built_in,
    make_plugin_manager,
)
from core.host.registry import Registry
from core.log import configure as configure_logging
from core.serve import ports
from etl.sql import FORMATS


def _registry() -> Registry:
    return build_registry(make_plugin_manager())


def _etl(settings: Settings, args: argparse.Namespace) -> int:
    from etl import availability
    from etl.dashboard import after_passes
    from etl.metrics import EtlMetrics
    from etl.runner import Etl, run_forever
    from etl.warehouse import WarehouseError

    # Before chDB starts its threads, so they inherit it.
    os.nice(settings.etl.nice)
    registry = _registry()
    registry.check_settings(settings)
    if not args.once:
        try:
            ports.refuse_etl_metrics_port_if_taken(settings.etl)
        except ports.PortTakenError as error:
            print(f"clickstream etl: {error}", file=sys.stderr)
            return 1
    metrics = EtlMetrics(settings, registry)
    try:
        etl = Etl(settings)
    except WarehouseError as error:  # a second ETL on a chDB directory, or none usable
        print(f"clickstream etl: {error}", file=sys.stderr)
        return 1
    with etl:
        instrumented = after_passes(
            settings,
            registry,
            availability.after_passes(
                settings, metrics.instrument(etl.run_pass), metrics.set_availability
            ),
        )
        if args.once:
            try:
                instrumented(settings, registry)
            except Exception:
                logging.getLogger("etl").exception("etl.pass_failed: nothing committed")
                return 1
            return 0
        if settings.etl.metrics_port:
            metrics.serve()
        run_forever(settings, registry, pass_function=instrumented)
    return 0


def _deadletters(settings: Settings, args: argparse.Namespace) -> int:
    from etl.deadletters import list_dead_letters, requeue

    if args.action == "requeue":
        if not (args.id or args.reason or args.all):
            print("requeue needs --id, --reason or --all", file=sys.stderr)
            return 2
        letters = requeue(settings, ids=args.id, reason=args.reason, everything=args.all)
        print(f"re-queued {len(letters)} dead letter(s) to the topic")
        return 0
    letters = list_dead_letters(
        settings,
        ids=args.id,
        reason=args.reason,
        include_requeued=args.all,
        limit=args.limit,
    )
    for d in letters:
        state = f"requeued {d.requeued_at:%Y-%m-%d %H:%M:%S}" if d.requeued else "waiting"
        payload = d.payload[:120].decode("utf-8", "replace")
        print(
            f"{d.id}  {d.received_at:%Y-%m-%d %H:%M:%S}  {d.topic}[{d.partition}]@{d.offset}  "
            f"{d.reason}  {state}\n    {d.detail[:200]}\n    {payload}"
        )
    print(f"{len(letters)} dead letter(s)")
    return 0


def _forget(settings: Settings, args: argparse.Namespace) -> int:
    from etl.forget import ForgetError, forget
    from etl.warehouse import WarehouseError

    try:
        result = forget(
            settings,
            _registry(),
            user_ids=args.user_id or (),
            anonymous_ids=args.anonymous_id or (),
            requested_by=args.requested_by,
        )
    except ForgetError as error:
        print(f"forget: {error}", file=sys.stderr)
        return 2
    except WarehouseError as error:
        print(f"forget: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({**asdict(result), "requested_at": result.requested_at.isoformat()}))
        return 0
    print(
        f"forget request {result.request_id} ({result.requested_by}, "
        f"{result.requested_at:%Y-%m-%d %H:%M:%S} UTC): {result.total} row(s) deleted"
    )
    if result.linked_anonymous_ids:
        print(f"  with {result.linked_anonymous_ids} anonymous id(s) linked to the user id(s)")
    for table, rows in sorted(result.deleted.items()):
        print(f"  {table:<24} {rows:>8}")
    for note in result.notes:
        print(f"  note: {note}")
    print("recorded in forget_requests; the ETL will not load these persons' older events again")
    return 0


def _dashboard(settings: Settings, args: argparse.Namespace) -> int:
    from etl.dashboard import write
    from etl.warehouse import WarehouseError

    try:
        path = write(settings, _registry(), Path(args.out))
    except (WarehouseError, OSError) as error:
        print(f"dashboard: {error}", file=sys.stderr)
        return 1
    print(f"dashboard written to {path.resolve()} (open it in a browser; it needs no network)")
    return 0


def _report(settings: Settings, args: argparse.Namespace) -> int:
    from etl import reports

    registry = _registry()
    if args.which == "counts":
        print(reports.format_counts(reports.counts_report(settings, registry)))
    elif args.which == "quality":
        print(reports.format_quality(reports.quality_report(settings, registry)))
    else:
        print(reports.format_report(reports.plugin_report(settings, registry, args.which)))
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from etl.warehouse import Warehouse

    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        print(warehouse.migrate(client, _registry(), args.table, Path(args.file).read_text()))
    return 0


def _sql(settings: Settings, args: argparse.Namespace) -> int:
    from etl import sql
    from etl.warehouse import Warehouse, WarehouseError

    if args.query is not None and args.file:
        print("sql takes a query or --file, not both", file=sys.stderr)
        return 2
    printer = sql.Printer(args.format)
    try:
        warehouse = Warehouse.from_settings(settings)
        if args.lock_timeout is not None:
            warehouse.lock_timeout_s = args.lock_timeout
        shell = sql.Shell(warehouse, write=args.write, database=args.database, notice=printer.error)
        if args.file:
            script = Path(args.file).read_text(encoding="utf-8")
        elif args.query == "-" or (args.query is None and not sys.stdin.isatty()):
            script = sys.stdin.read()
        elif args.query is None:
            import readline  # noqa: F401 - line editing and history for input()

            mode = "read-write" if args.write else "read-only (--write to change data)"
            printer.error(f"database {shell.database}, {mode}; end statements with ;, Ctrl-D quits")
            return sql.interactive(shell, printer)
        else:
            script = args.query
        return sql.run_script(shell, script, printer)
    except BrokenPipeError:  # the reader left (`| head`): nothing more to print, no error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (sql.SqlError, WarehouseError, OSError) as error:
        printer.error(str(error))
        return 1
    except KeyboardInterrupt:
        return 130


def _plugins(settings: Settings, args: argparse.Namespace) -> int:
    installed = installed_event_types(make_plugin_manager())
    if args.json:
        print(json.dumps([asdict(event_type) for event_type in installed], indent=2))
        return 0
    rows = [("EVENT", "VERSION", "TABLE", "PLUGIN", "DISTRIBUTION")]
    rows += [
        (e.event, str(e.version), e.table, e.plugin, f"{e.distribution} {e.distribution_version}")
        for e in installed
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    return 0


def _ddl(settings: Settings, args: argparse.Namespace) -> int:
    from etl.warehouse import Warehouse, render

    registry = _registry()
    unknown = [event for event in args.events if event not in registry]
    if unknown:
        print(
            f"unknown event type(s) {', '.join(unknown)}; installed: {', '.join(registry.names)}",
            file=sys.stderr,
        )
        return 2
    wanted = {registry[event].table for event in args.events or registry.names}
    database = Warehouse.from_settings(settings).database
    for table, event_type in registry.tables().items():
        if table in wanted:
            events = ", ".join(e.name for e in registry if e.table == table)
            print(f"-- {table}: {events}, from {event_type.plugin}")
            print(render(event_type.ddl, database, table) + ";\n")
    return 0


def _schema_check(settings: Settings, args: argparse.Namespace) -> int:
    manager = make_plugin_manager()
    # The document is the repository's: its own event types. One of a plugin kept elsewhere
    # is that plugin's to publish (clickstream openapi --plugin), not a change to this one.
    outside: dict[str, list[str]] = {}
    for installed in installed_event_types(manager):
        if not is_built_in(installed.plugin):
            outside.setdefault(installed.plugin, []).append(installed.event)
    theirs = {event for events in outside.values() for event in events}
    changes = [
        c for c in check(build_registry(manager), Path(args.against)) if c.event not in theirs
    ]
    print(format_changes(changes))
    for plugin, events in sorted(outside.items()):
        print(outside_note(plugin, events))
    return 1 if any(change.refused for change in changes) else 0


def _new_plugin(settings: Settings, args: argparse.Namespace) -> int:
    from core.host.scaffold import ScaffoldError, plugin_names, write_plugin

    registry = _registry()
    try:
        names = plugin_names(args.name, args.event)
        written = write_plugin(
            names, Path(args.dir), taken_events=registry.names, taken_tables=registry.tables()
        )
    except ScaffoldError as error:
        print(f"new-plugin: {error}", file=sys.stderr)
        return 2
    root = Path(args.dir) / names.directory
    for path in written:
        print(f"wrote {path}")
    print(
        f"\nNext: edit {root / names.package / 'schema.py'} (the fields of {names.event}), "
        f"then\n  pip install -e {root}\n  (cd {root} && python -m pytest -q)\n"
        f"  clickstream ddl {names.event}\nand restart the API and the ETL: "
        f"{root / 'README.md'} has every step."
    )
    return 0


def _openapi(settings: Settings, args: argparse.Namespace) -> int:
    from core.api.openapi import build_spec, dumps, fragment

    manager = make_plugin_manager()
    registry = build_registry(manager)
    if args.plugin is None:
        if args.check:
            print("--check needs --plugin: the fragment of which plugin?", file=sys.stderr)
            return 2
        print(dumps(build_spec(registry)), end="")
        return 0
    installed = installed_event_types(manager)
    events = [e.event for e in installed if args.plugin in (e.plugin, e.distribution)]
    if not events:
        known = sorted({f"{e.plugin} ({e.distribution or 'no distribution'})" for e in installed})
        print(
            f"no installed plugin or distribution {args.plugin!r} has event types; "
            f"installed: {', '.join(known)}",
            file=sys.stderr,
        )
        return 2
    current = fragment(registry, events)
    if not args.check:
        print(dumps(current), end="")
        return 0
    path = Path(args.check)
    if not path.exists():
        print(
            f"{path} does not exist: write it with "
            f"`clickstream openapi --plugin {args.plugin} > {path}` and commit it",
            file=sys.stderr,
        )
        return 1
    result = check_fragment(path, current)
    print(format_fragment_check(result, str(path), args.plugin))
    return 0 if result.passed else 1


def _systemd(settings: Settings, args: argparse.Namespace) -> int:
    from core.serve import units

    checkout = units.Checkout(var_dir=args.var_dir.resolve(), user=args.user)
    rendered = units.rendered(checkout, settings)
    if args.dry_run:
        for name, text in rendered.items():
            print(f"# --- {name}\n{text}")
        return 0
    for path in units.install(rendered, args.dir):
        print(f"wrote {path}")
    names = " ".join(sorted(rendered))
    print(f"then: systemctl daemon-reload && systemctl enable --now {names}")
    return 0


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(prog="clickstream", description=__doc__)
    commands = main_parser.add_subparsers(dest="command", required=True)

    etl = commands.add_parser("etl", help="load Kafka into the warehouse, every etl_interval_s")
    etl.add_argument("--once", action="store_true", help="run one pass and exit (for cron)")
    etl.set_defaults(run=_etl)

    dead = commands.add_parser("deadletters", help="messages the ETL could not load")
    dead.add_argument("action", nargs="?", choices=("list", "requeue"), default="list")
    dead.add_argument("--id", action="append", help="a dead letter's id (repeatable)")
    dead.add_argument("--reason", help="only dead letters with this reason")
    dead.add_argument(
        "--all",
        action="store_true",
        help="list: include re-queued ones; requeue: every waiting dead letter",
    )
    dead.add_argument("--limit", type=int, default=100, help="list at most this many")
    dead.set_defaults(run=_deadletters)

    forget = commands.add_parser(
        "forget",
        help="delete every event of a person on request, and record it (docs/privacy.md)",
        description="Delete a person's events from every event table, their identity links, "
        "dead letters and delivery rows; record the request in forget_requests (ids as "
        "SHA-256, never the deleted data). Idempotent. Kafka keeps its copy until retention: "
        "the ETL skips it.",
    )
    forget.add_argument("--user-id", action="append", metavar="ID", help="repeatable")
    forget.add_argument("--anonymous-id", action="append", metavar="ID", help="repeatable")
    forget.add_argument(
        "--requested-by", metavar="WHO", help="who asked (default: the operating system user)"
    )
    forget.add_argument("--json", action="store_true", help="print the result as JSON")
    forget.set_defaults(run=_forget)

    dashboard = commands.add_parser(
        "dashboard",
        help="write the dashboard as one self-contained HTML file (docs/operations.md)",
        description="Events per type over time, active users, visits, the plugins' reports "
        "and the data-quality figures, drawn by Chart.js inlined in the page: it opens "
        "offline. The ETL rewrites CLICKSTREAM_DASHBOARD_FILE the same way for GET /ops/dashboard.",
    )
    dashboard.add_argument("--out", required=True, metavar="FILE", help="the HTML file to write")
    dashboard.set_defaults(run=_dashboard)

    plugin_reports = _registry().reports
    report = commands.add_parser(
        "report",
        help="figures from the warehouse",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(
            [
                "reports:",
                "  counts    rows and distinct events per table",
                "  quality   duplicates, gaps, lag, freshness, plugins' figures",
            ]
            + [f"  {name:<9} {r.description}" for name, r in sorted(plugin_reports.items())]
        ),
    )
    report.add_argument("which", choices=("counts", "quality", *sorted(plugin_reports)))
    report.set_defaults(run=_report)

    migrate = commands.add_parser("migrate", help="apply a table migration (docs/warehouse.md)")
    migrate.add_argument("table", help="the event table to migrate")
    migrate.add_argument("file", help="SQL file; {database} and {table} are filled in")
    migrate.set_defaults(run=_migrate)

    query = commands.add_parser(
        "sql",
        help="run SQL on the warehouse (read-only unless --write), also while the ETL runs",
        description="Run statements on the warehouse, in its database, each holding chDB's "
        "lock only while it runs. QUERY may hold several statements separated by ;. "
        "Without QUERY: a prompt on a terminal, else the statements on stdin.",
    )
    query.add_argument("query", nargs="?", help="the statement(s); - reads them from stdin")
    query.add_argument("-f", "--file", help="read the statements from this file")
    query.add_argument("--format", choices=FORMATS, default="table", help="default: table")
    query.add_argument(
        "--write", action="store_true", help="allow statements that change data or tables"
    )
    query.add_argument(
        "--database", help="the database to run in (default: CLICKSTREAM_WAREHOUSE_DATABASE)"
    )
    query.add_argument(
        "--lock-timeout",
        type=float,
        metavar="S",
        help="give up after waiting S seconds for chDB's lock "
        "(default: CLICKSTREAM_WAREHOUSE_LOCK_TIMEOUT_S)",
    )
    query.set_defaults(run=_sql)

    plugins = commands.add_parser("plugins", help="the installed event types and their plugins")
    plugins.add_argument("--json", action="store_true", help="as a JSON array")
    plugins.set_defaults(run=_plugins)

    ddl = commands.add_parser(
        "ddl", help="the CREATE TABLE of each event table, as the ETL runs it (docs/warehouse.md)"
    )
    ddl.add_argument("events", nargs="*", metavar="EVENT", help="only these event types' tables")
    ddl.set_defaults(run=_ddl)

    schema_check = commands.add_parser(
        "schema-check",
        help="compare the event schemas with the published OpenAPI document; "
        "exit 1 on an unversioned breaking change",
    )
    schema_check.add_argument(
        "--against",
        default=str(PUBLISHED_DOCUMENT),
        help="the published document (default: docs/openapi.json of this installation)",
    )
    schema_check.set_defaults(run=_schema_check)

    new_plugin = commands.add_parser(
        "new-plugin",
        help="write a new plugin package, ready for pip install -e (docs/writing-plugins.md)",
        description="Write clickstream-NAME/: a plugin package with one event type, its "
        "schema (to edit), its tests (core.testing) and a README of the next steps.",
    )
    new_plugin.add_argument(
        "name", metavar="NAME", help="lower case and underscores: the package is clickstream_NAME"
    )
    new_plugin.add_argument(
        "--dir", default=".", help="where to write clickstream-NAME/ (default: here)"
    )
    new_plugin.add_argument("--event", help="the event type's name (default: NAME)")
    new_plugin.set_defaults(run=_new_plugin)
    openapi = commands.add_parser(
        "openapi",
        help="print the OpenAPI document of the installed plugins, or one plugin's fragment; "
        "check a plugin's committed fragment",
        description="Without --plugin: the whole document, as GET /openapi.json serves it. "
        "With --plugin: the fragment its event types make (their variants, schemas and "
        "examples, as in the whole document), for a plugin to publish beside its code. "
        "With --check FILE: exit 1 if FILE is not that fragment, saying whether the "
        "difference is compatible or an unversioned breaking change.",
    )
    openapi.add_argument(
        "--plugin",
        metavar="NAME",
        help="a plugin's module or distribution, as `clickstream plugins` lists them",
    )
    openapi.add_argument(
        "--check", metavar="FILE", help="compare the plugin's committed fragment with its code"
    )
    openapi.set_defaults(run=_openapi)

    systemd = commands.add_parser(
        "systemd", help="install systemd units of the API, the ETL and the services (deploy.md)"
    )
    systemd.add_argument(
        "--dir", type=Path, default=Path("/etc/systemd/system"), help="where to write them"
    )
    systemd.add_argument("--dry-run", action="store_true", help="print them, write nothing")
    systemd.add_argument(
        "--var-dir", type=Path, default=PROJECT_ROOT / "var", help="the stack's var directory"
    )
    systemd.add_argument("--user", default=getpass.getuser(), help="the user they run as")
    systemd.set_defaults(run=_systemd)
    return main_parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        configure_logging(settings.log)
        return args.run(settings, args)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
