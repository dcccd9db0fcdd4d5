"""The chaos run's tables: the printed report and the rows kept in docs/reliability.md."""

from __future__ import annotations

from collections import Counter

from chaos.checker import Findings
from chaos.table import END, HEADER, KEPT, START, Run, report, row, update_doc


def a_run(seed: int = 42) -> Run:
    findings = Findings(sent=100, accepted=90, unanswered=4, stored_once=90)
    findings.refused[503] = 6
    findings.longest_to_table_s = 12.34
    return Run(seed, 600, Counter({"kafka_stop": 2, "api_kill": 1}), findings, 1500.4, 20.2)


def test_a_row_carries_every_figure():
    line = row(a_run())
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    assert cells == [
        "42", "600 s", "api_kill 1, kafka_stop 2", "100", "90", "503: 6", "4", "90", "0", "0",
        "0", "12.3 s", "1500 ms / 20 ms",
    ]  # fmt: skip
    assert len(cells) == HEADER.splitlines()[0].count("|") - 1


def test_the_report_lists_faults_by_kind_and_events_by_outcome():
    text = report(a_run())
    assert "| kafka_stop | 2 |" in text
    assert "| refused 503 | 6 |" in text
    assert "| lost | 0 |" in text
    assert "| API p99 during faults | 1500 ms |" in text


def test_update_doc_adds_rows_between_the_markers_and_keeps_the_newest():
    text = f"before\n{START}\n{END}\nafter\n"
    for seed in range(KEPT + 2):
        text = update_doc(text, row(a_run(seed)))
    assert text.startswith("before\n") and text.endswith(f"{END}\nafter\n")
    rows = [line for line in text.splitlines() if line.startswith("| ") and line not in HEADER]
    assert [r.split("|")[1].strip() for r in rows] == [str(s) for s in range(2, KEPT + 2)]
    assert text.count(HEADER) == 1
