"""``clickstream sql``: statements run on the warehouse, each in a session of its own (read-only
unless asked), and their answers printed as an aligned table, JSON or CSV.

A session holds chDB's lock only while its statement runs, so the ETL's passes go on
between two statements, and waiting for the lock is bounded like every other user's.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import TextIO

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from clickhouse_connect.driver.summary import QuerySummary

from etl.warehouse import IDENTIFIER, Warehouse, WarehouseBusyError, WarehouseError

FORMATS = ("table", "json", "csv")

#: First keywords of the statements that answer with rows; any other runs as a command.
ROW_STATEMENTS = frozenset(
    {"SELECT", "WITH", "FROM", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS", "CHECK"}
)

PROMPT = "clickstream> "
CONTINUATION = "         -> "
QUIT = frozenset({"exit", "quit", "\\q"})

# A literal may be left open at the end of the text: the statement goes on on the next line.
_TOKEN = re.compile(
    r"""'(?:[^'\\]|\\.|'')*'?
      | "(?:[^"\\]|\\.|"")*"?
      | `(?:[^`\\]|\\.|``)*`?
      | --[^\n]*
      | /\*.*?(?:\*/|\Z)
      | ;
      | [^'"`;/-]+
      | .""",
    re.DOTALL | re.VERBOSE,
)
_INTO_OUTFILE = re.compile(r"\bINTO\s+OUTFILE\b", re.IGNORECASE)
_USE = re.compile(r"\s*USE\s+(?:`(\w+)`|\"(\w+)\"|(\w+))\s*", re.IGNORECASE)
_VERSION_TRAILER = re.compile(r"\s*\(version [\w.]+(?: \([^()]*\))?\)")
_REPEATED_PREFIX = re.compile(r"(Code: \d+\. DB::Exception: )+")


class SqlError(Exception):
    """A statement that could not run; its message is one line, ClickHouse's own where it
    comes from ClickHouse."""


@dataclass(frozen=True)
class Statement:
    """One statement as written (without its ``;``), and its ``code``: comments removed
    and literals emptied, which is where keywords are looked for."""

    text: str
    code: str

    @property
    def keyword(self) -> str:
        words = self.code.lstrip(" \t\r\n(").split(None, 1)
        return words[0].upper() if words else ""


@dataclass(frozen=True)
class Answer:
    """What a statement returned: columns and rows, or, for one without rows, what it did."""

    columns: list[str] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)
    done: str | None = None


def split(script: str) -> tuple[list[Statement], str]:
    """The ``;``-ended statements of ``script``, and the text after the last ``;``.

    A ``;`` inside a literal, a quoted name or a comment ends nothing; statements
    made only of comments are dropped.
    """
    statements: list[Statement] = []
    start, code = 0, []
    for match in _TOKEN.finditer(script):
        token = match.group()
        if token == ";":
            _append(statements, script[start : match.start()], "".join(code))
            start, code = match.end(), []
        elif token.startswith(("--", "/*")):
            code.append(" ")
        elif token[0] in "'\"`":
            code.append(token[0] * 2)
        else:
            code.append(token)
    return statements, script[start:]


def statements_of(script: str) -> list[Statement]:
    """Every statement of a script; the last one needs no ``;``."""
    statements, rest = split(script + "\n;")
    if rest.strip():
        raise SqlError("the script ends inside a literal or a comment")
    return statements


def _append(statements: list[Statement], text: str, code: str) -> None:
    if code.strip():
        statements.append(Statement(text.strip(), code.strip()))


class Shell:
    """Runs statements on one warehouse, each in a session of its own, in ``database``
    (the warehouse's by default, ``default`` while it does not exist; ``USE`` changes it)."""

    def __init__(
        self,
        warehouse: Warehouse,
        *,
        write: bool = False,
        database: str | None = None,
        notice: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.warehouse = warehouse
        self.write = write
        self.database = database or warehouse.database
        if not IDENTIFIER.match(self.database):
            raise SqlError(f"invalid database name {self.database!r}")
        self._notice = notice
        self._database_exists = self._noticed = False

    def run(self, statement: Statement) -> Answer:
        """Run ``statement``; :class:`SqlError` if it cannot run or ClickHouse refuses it."""
        keyword = statement.keyword
        if not self.write and _INTO_OUTFILE.search(statement.code):
            raise SqlError("INTO OUTFILE refused: it writes a file, --write allows it")
        try:
            with self.warehouse.session(readonly=not self.write) as client:
                self._enter_database(client)
                if keyword == "USE":
                    return self._use(client, statement)
                if keyword in ROW_STATEMENTS:
                    return self._rows(client, statement)
                return Answer(done=_done(keyword, client.command(statement.text)))
        except WarehouseBusyError as error:
            raise SqlError(
                f"the warehouse is busy: {error}; try again, or wait longer with --lock-timeout"
            ) from None
        except WarehouseError as error:
            raise SqlError(_one_line(str(error))) from None
        except ClickHouseError as error:
            message = clickhouse_message(error)
            if getattr(error, "code", None) == 164 and not self.write:  # READONLY
                message = (
                    f"{keyword} refused: the session is read-only, --write allows it ({message})"
                )
            raise SqlError(message) from None

    def _enter_database(self, client: Client) -> None:
        if not self._database_exists:
            self._database_exists = bool(
                client.query(
                    "SELECT 1 FROM system.databases WHERE name = {db:String}",
                    parameters={"db": self.database},
                ).result_rows
            )
            if not self._database_exists:
                if not self._noticed:
                    self._notice(f"database {self.database} does not exist (yet): using `default`")
                    self._noticed = True
                return
        client.database = self.database

    def _use(self, client: Client, statement: Statement) -> Answer:
        match = _USE.fullmatch(statement.text)
        if not match:
            raise SqlError("USE takes one plain database name")
        name = next(group for group in match.groups() if group)
        if not IDENTIFIER.match(name):
            raise SqlError(f"invalid database name {name!r}")
        client.command(f"USE {name}")
        self.database, self._database_exists = name, True
        return Answer(done=f"USE: now in database {name}")

    def _rows(self, client: Client, statement: Statement) -> Answer:
        result = client.query(statement.text)
        columns, rows = list(result.column_names), list(result.result_rows)
        if not rows and not columns and statement.keyword in ("SELECT", "WITH", "FROM"):
            # An empty answer may come without its columns: ask for them, for the header.
            try:
                described = client.query(f"DESCRIBE TABLE ({statement.text})").result_rows
                columns = [row[0] for row in described]
            except ClickHouseError:
                pass
        return Answer(columns, rows)


def _done(keyword: str, result: object) -> str:
    if isinstance(result, QuerySummary):
        written = result.written_rows
        return f"{keyword}: ok" + (f", {_plural_rows(written)} written" if written else "")
    if result in ("", None):
        return f"{keyword}: ok"
    if isinstance(result, (list, tuple)):
        result = "\t".join(map(str, result))
    return f"{keyword}: {_one_line(str(result))}"


def _plural_rows(count: int) -> str:
    return f"{count} row" + "s" * (count != 1)


def clickhouse_message(error: BaseException) -> str:
    """ClickHouse's message in ``error``, in one line, without the driver's preamble, the
    repeated prefix of a nested error or the server's version."""
    text = str(error)
    start = text.find("Code: ")
    if start > 0:
        text = text[start:]
    text = _REPEATED_PREFIX.sub(lambda match: match.group(1), text)
    text = _VERSION_TRAILER.sub("", text)
    text = re.sub(r"(\([A-Z_]+\))(?:\.? \1)+", r"\1", _one_line(text))
    return text or type(error).__name__


def _one_line(text: str) -> str:
    return " ".join(text.split())


# The answer's values as text, JSON and CSV.


def cell(value: object) -> str:
    """A value as one line of text: what the table shows, and CSV holds (without escapes)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        timespec = "seconds"
        if value.microsecond:
            timespec = "microseconds" if value.microsecond % 1000 else "milliseconds"
        return value.isoformat(sep=" ", timespec=timespec)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).rstrip(b"\0").decode("utf-8", "replace")
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(plain(value), ensure_ascii=False)
    return str(value)


def plain(value: object) -> object:
    """``value`` as JSON can hold it: dates as ISO text, UUIDs and addresses as text,
    decimals as numbers, NaN and infinities as null."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {cell(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return cell(value)
    return str(value)


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal: wide (CJK) characters two, combining ones none."""
    return sum(
        0 if unicodedata.combining(char) else 2 if unicodedata.east_asian_width(char) in "WF" else 1
        for char in text
    )


def _numeric(values: Iterable[object]) -> bool:
    present = [value for value in values if value is not None]
    return bool(present) and all(
        isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)
        for value in present
    )


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def format_table(answer: Answer) -> str:
    """Aligned columns under a header (numbers to the right), then the number of rows."""
    if answer.done is not None:
        return answer.done
    count = f"({_plural_rows(len(answer.rows))})"
    if not answer.columns:
        return count
    grid = [list(answer.columns)]
    grid += [[_escaped(cell(value)) for value in row] for row in answer.rows]
    widths = [max(width(line[i]) for line in grid) for i in range(len(answer.columns))]
    right = [_numeric(row[i] for row in answer.rows) for i in range(len(answer.columns))]
    grid.insert(1, ["-" * w for w in widths])
    lines = []
    for line in grid:
        cells = []
        for text, size, is_number in zip(line, widths, right, strict=True):
            padding = " " * (size - width(text))
            cells.append(padding + text if is_number else text + padding)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines + [count])


def format_json(answer: Answer) -> str:
    """One JSON array on one line: an object per row, keyed by column."""
    rows = [
        {name: plain(value) for name, value in zip(answer.columns, row, strict=True)}
        for row in answer.rows
    ]
    return json.dumps(rows, ensure_ascii=False)


def format_csv(answer: Answer) -> str:
    """A header line of column names, then a line per row; NULL is an empty field."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if answer.columns:
        writer.writerow(answer.columns)
    for row in answer.rows:
        writer.writerow(["" if value is None else cell(value) for value in row])
    return buffer.getvalue().removesuffix("\n")


FORMATTERS: dict[str, Callable[[Answer], str]] = {
    "table": format_table,
    "json": format_json,
    "csv": format_csv,
}


# Where statements come from: a script, or a prompt.


class Printer:
    """Prints answers in one format: results on ``out``, what was done and errors on
    ``err`` (in JSON and CSV; the table format prints what was done with the results)."""

    def __init__(self, fmt: str, out: TextIO | None = None, err: TextIO | None = None) -> None:
        # sys.stdout and sys.stderr as they are now, not as they were when this was imported.
        self.format, self.out, self.err = FORMATTERS[fmt], out or sys.stdout, err or sys.stderr
        self.separate = fmt != "json"
        self.printed = False

    def answer(self, answer: Answer) -> None:
        if answer.done is not None and self.format is not format_table:
            print(answer.done, file=self.err)
            return
        if self.printed and self.separate and answer.done is None:
            print(file=self.out)
        print(self.format(answer), file=self.out, flush=True)
        self.printed = True

    def error(self, message: str) -> None:
        print(f"clickstream sql: {message}", file=self.err, flush=True)


def run_script(shell: Shell, script: str, printer: Printer) -> int:
    """Every statement of ``script`` in order, stopping at the first that fails (exit 1)."""
    try:
        statements = statements_of(script)
    except SqlError as error:
        printer.error(str(error))
        return 1
    for number, statement in enumerate(statements, start=1):
        try:
            answer = shell.run(statement)
        except SqlError as error:
            where = f"statement {number}: " if len(statements) > 1 else ""
            printer.error(f"{where}{error}")
            return 1
        printer.answer(answer)
    return 0


def interactive(shell: Shell, printer: Printer, read: Callable[[str], str] = input) -> int:
    """A prompt: statements end with ``;`` and run as they are finished; an error is
    printed and the prompt goes on; Ctrl-D, ``exit`` or ``quit`` leave it."""
    buffer = ""
    while True:
        try:
            line = read(CONTINUATION if buffer.strip() else PROMPT)
        except EOFError:
            print(file=printer.err)
            return 0
        except KeyboardInterrupt:
            print(file=printer.err)
            buffer = ""
            continue
        if not buffer.strip() and line.strip().rstrip(";").lower() in QUIT:
            return 0
        statements, buffer = split(buffer + line + "\n")
        for statement in statements:
            try:
                printer.answer(shell.run(statement))
            except SqlError as error:
                printer.error(str(error))
                break
            except KeyboardInterrupt:
                printer.error("interrupted")
                break
