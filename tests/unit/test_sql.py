"""``clickstream sql`` without a warehouse: splitting scripts, formatting answers, ClickHouse's
messages in one line, the script runner and the prompt."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from ipaddress import IPv4Address

import pytest

from core.config import Settings
from etl.cli import _sql, parser
from etl.sql import (
    CONTINUATION,
    PROMPT,
    Answer,
    Printer,
    SqlError,
    Statement,
    clickhouse_message,
    format_csv,
    format_json,
    format_table,
    interactive,
    run_script,
    split,
    statements_of,
    width,
)


def texts(script: str) -> list[str]:
    return [statement.text for statement in statements_of(script)]


def test_statements_end_at_semicolons_outside_literals_names_and_comments() -> None:
    script = """SELECT 'a;b', "c;d", `e;f` FROM t; -- not; a statement
    SELECT 'it''s; \\'quoted\\';' /* a; block
    comment */ ; ; -- only a comment;
    SELECT 2"""
    assert texts(script) == [
        "SELECT 'a;b', \"c;d\", `e;f` FROM t",
        "-- not; a statement\n    SELECT 'it''s; \\'quoted\\';' /* a; block\n    comment */",
        "-- only a comment;\n    SELECT 2",
    ]


def test_an_unfinished_statement_is_kept_for_the_next_line() -> None:
    statements, rest = split("SELECT 1; SELECT 'open;\n")
    assert [s.text for s in statements] == ["SELECT 1"]
    assert rest == " SELECT 'open;\n"
    statements, rest = split(rest + "still';\n")
    assert [s.text for s in statements] == ["SELECT 'open;\nstill'"]
    assert rest == "\n"
    with pytest.raises(SqlError, match="inside a literal"):
        statements_of("SELECT 'never closed")


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("select 1", "SELECT"),
        ("  -- why\n(SELECT 1) UNION ALL (SELECT 2)", "SELECT"),
        ("/* note */ insert INTO t VALUES (1)", "INSERT"),
        ("WITH 1 AS x SELECT x", "WITH"),
        ("desc t", "DESC"),
    ],
)
def test_the_first_keyword_ignores_comments_and_parentheses(text: str, keyword: str) -> None:
    [statement] = statements_of(text)
    assert statement.keyword == keyword


def test_literals_are_emptied_in_the_code_keywords_are_looked_for_in() -> None:
    [statement] = statements_of("SELECT 'INTO OUTFILE' AS `INTO OUTFILE` -- INTO OUTFILE")
    assert "OUTFILE" not in statement.code


ROWS = Answer(
    ["table", "events", "share", "note"],
    [
        ("page_views", 12, 0.5, "Шедевр"),
        ("search_filters", 3, None, "жанр=драма\tещё"),
        ("世界", 100000, 1.25, None),
    ],
)


def test_the_table_aligns_cyrillic_and_wide_characters_and_numbers_to_the_right() -> None:
    assert format_table(ROWS).splitlines() == [
        "table           events  share  note",
        "--------------  ------  -----  ---------------",
        "page_views          12    0.5  Шедевр",
        "search_filters       3   NULL  жанр=драма\\tещё",
        "世界            100000   1.25  NULL",
        "(3 rows)",
    ]
    assert width("世界") == 4 and width("ёж") == 2 and width("e\u0301") == 1


def test_the_table_of_an_empty_answer_and_of_a_statement_without_rows() -> None:
    assert format_table(Answer(["a", "bb"], [])).splitlines() == ["a  bb", "-  --", "(0 rows)"]
    assert format_table(Answer()) == "(0 rows)"
    assert format_table(Answer(["n"], [(1,)])).endswith("(1 row)")
    assert format_table(Answer(done="INSERT: ok, 2 rows written")) == "INSERT: ok, 2 rows written"


VALUES = Answer(
    ["id", "at", "day", "price", "nan", "tags", "attrs", "ip", "flag", "code", "text"],
    [
        (
            uuid.UUID(int=1),
            datetime(2026, 11, 28, 10, 0, 0, 123000),
            date(2026, 11, 28),
            Decimal("1.500"),
            float("nan"),
            ["драма", "комедия"],
            {"k": (1, 2)},
            IPv4Address("10.0.0.1"),
            True,
            b"ab\x00",
            'say "да", then, no',
        ),
        (None,) * 11,
    ],
)


def test_json_is_one_array_of_objects_with_every_value_as_json_holds_it() -> None:
    text = format_json(VALUES)
    assert "\n" not in text and "драма" in text  # one line, readable
    first, second = json.loads(text)
    assert first == {
        "id": "00000000-0000-0000-0000-000000000001",
        "at": "2026-11-28T10:00:00.123000",
        "day": "2026-11-28",
        "price": 1.5,
        "nan": None,
        "tags": ["драма", "комедия"],
        "attrs": {"k": [1, 2]},
        "ip": "10.0.0.1",
        "flag": True,
        "code": "ab",
        "text": 'say "да", then, no',
    }
    assert set(second.values()) == {None}
    assert format_json(Answer(["a"], [])) == "[]"


def test_csv_has_a_header_and_quotes_what_needs_it() -> None:
    rows = list(csv.reader(io.StringIO(format_csv(VALUES))))
    assert rows[0] == VALUES.columns
    assert rows[1] == [
        "00000000-0000-0000-0000-000000000001",
        "2026-11-28 10:00:00.123",
        "2026-11-28",
        "1.500",
        "nan",
        '["драма", "комедия"]',
        '{"k": [1, 2]}',
        "10.0.0.1",
        "true",
        "ab",
        'say "да", then, no',
    ]
    assert rows[2] == [""] * 11
    assert format_csv(Answer(["a", "b"], [])) == "a,b"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            "Code: 164. DB::Exception: Code: 164. DB::Exception: Cannot modify 'max_threads' "
            "setting in readonly mode. (READONLY) (version 26.9.2.1). (READONLY)",
            "Code: 164. DB::Exception: Cannot modify 'max_threads' setting in readonly mode. "
            "(READONLY)",
        ),
        (
            "HTTPDriver for http://127.0.0.1:8123 received ClickHouse error code 62\n"
            " Code: 62. DB::Exception: Syntax error: failed at position 1 (SELEC):\nSELEC 1\n"
            "FORMAT Native. (SYNTAX_ERROR) (version 24.8.4.13 (official build))\n",
            "Code: 62. DB::Exception: Syntax error: failed at position 1 (SELEC): SELEC 1 "
            "FORMAT Native. (SYNTAX_ERROR)",
        ),
        ("connection refused", "connection refused"),
    ],
)
def test_clickhouse_messages_fit_on_one_line(raw: str, message: str) -> None:
    assert clickhouse_message(RuntimeError(raw)) == message


class FakeShell:
    """Answers ``SELECT n`` with n, refuses ``BAD``, records what it ran."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def run(self, statement: Statement) -> Answer:
        self.ran.append(statement.text)
        if statement.keyword == "BAD":
            raise SqlError("Code: 62. DB::Exception: Syntax error. (SYNTAX_ERROR)")
        if statement.keyword == "INSERT":
            return Answer(done="INSERT: ok")
        return Answer(["n"], [(int(statement.text.split()[-1]),)])


def printer(fmt: str = "table") -> Printer:
    return Printer(fmt, io.StringIO(), io.StringIO())


def test_a_script_runs_in_order_and_stops_at_the_first_failure() -> None:
    shell, out = FakeShell(), printer("json")
    assert run_script(shell, "SELECT 1; INSERT INTO t VALUES (1);\nSELECT 2", out) == 0
    assert out.out.getvalue().splitlines() == ['[{"n": 1}]', '[{"n": 2}]']
    assert out.err.getvalue() == "INSERT: ok\n"  # stdout stays parseable

    shell, out = FakeShell(), printer()
    assert run_script(shell, "SELECT 1; BAD; SELECT 3", out) == 1
    assert shell.ran == ["SELECT 1", "BAD"]
    assert out.err.getvalue() == (
        "clickstream sql: statement 2: Code: 62. DB::Exception: Syntax error. (SYNTAX_ERROR)\n"
    )


def test_table_results_are_separated_by_a_blank_line() -> None:
    out = printer()
    assert run_script(FakeShell(), "SELECT 1; INSERT INTO t VALUES (1); SELECT 2", out) == 0
    assert out.out.getvalue() == "n\n-\n1\n(1 row)\nINSERT: ok\n\nn\n-\n2\n(1 row)\n"


def test_the_prompt_runs_statements_as_they_end_and_survives_errors() -> None:
    lines = iter(["SELECT", " 1; BAD;", "SELECT 4", ";", "", "quit"])
    prompts: list[str] = []

    def read(prompt: str) -> str:
        prompts.append(prompt)
        return next(lines)

    shell, out = FakeShell(), printer("csv")
    assert interactive(shell, out, read) == 0
    assert shell.ran == ["SELECT\n 1", "BAD", "SELECT 4"]
    assert prompts == [PROMPT, CONTINUATION, PROMPT, CONTINUATION, PROMPT, PROMPT]
    assert out.out.getvalue() == "n\n1\n\nn\n4\n"
    assert "SYNTAX_ERROR" in out.err.getvalue()


def test_the_prompt_ends_at_end_of_input_and_ctrl_c_drops_the_statement() -> None:
    events = iter(["SELECT", KeyboardInterrupt, "SELECT 2;", EOFError])

    def read(prompt: str) -> str:
        event = next(events)
        if isinstance(event, type):
            raise event
        return event

    shell = FakeShell()
    assert interactive(shell, printer(), read) == 0
    assert shell.ran == ["SELECT 2"]


def test_the_sql_command_and_its_options() -> None:
    args = parser().parse_args(["sql", "SELECT 1"])
    assert (args.query, args.format, args.write, args.lock_timeout) == (
        "SELECT 1",
        "table",
        False,
        None,
    )
    args = parser().parse_args(
        ["sql", "-", "--format", "csv", "--write", "--lock-timeout", "2", "--database", "x"]
    )
    assert (args.query, args.format, args.write, args.lock_timeout, args.database) == (
        "-",
        "csv",
        True,
        2.0,
        "x",
    )
    assert parser().parse_args(["sql", "-f", "q.sql"]).file == "q.sql"
    with pytest.raises(SystemExit):
        parser().parse_args(["sql", "SELECT 1", "--format", "xml"])


def test_a_timestamp_with_its_zone_keeps_it() -> None:
    answer = Answer(["at"], [(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),)])
    assert format_csv(answer).splitlines()[1] == "2026-01-02 03:04:05+00:00"
    assert json.loads(format_json(answer)) == [{"at": "2026-01-02T03:04:05+00:00"}]


def test_a_query_and_a_file_together_are_a_usage_error(capsys) -> None:
    assert _sql(Settings(), parser().parse_args(["sql", "SELECT 1", "-f", "q.sql"])) == 2
    assert capsys.readouterr().err == "sql takes a query or --file, not both\n"
