"""``make mutation``: mutmut over the modules that carry the pipeline's promises, with the fast
tests; prints the score per module and every surviving mutant that is not explained.

The modules are ``only_mutate`` in setup.cfg's ``[mutmut]`` section. A survivor is explained
by an entry in ``tests/mutation/<module>.txt``: a line ``function: change`` (as this script
prints it), then indented lines saying why no test can tell the mutant from the original.
Entries are matched by function and change, not by mutmut's numbering, so they survive
edits elsewhere in the function. Exit status 1 while any survivor is unexplained.

    python scripts/mutation.py            # run mutmut (incrementally), then report
    python scripts/mutation.py --report   # report on the last run only
"""

from __future__ import annotations

import argparse
import configparser
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPLAINED_DIR = ROOT / "tests" / "mutation"
LOG = ROOT / "var" / "log" / "mutmut.log"
DETECTED = ("killed", "timeout", "caught by type check")


@dataclass(frozen=True)
class Survivor:
    name: str
    module: str
    function: str
    change: str
    diff: str

    @property
    def key(self) -> str:
        return f"{self.function}: {self.change}"


def modules() -> list[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    paths = config.get("mutmut", "only_mutate").split()
    return [path.removesuffix(".py").replace("/", ".") for path in paths]


def explained(module: str) -> dict[str, str]:
    """``function: change`` -> why, from ``tests/mutation/<module>.txt``."""
    path = EXPLAINED_DIR / f"{module}.txt"
    entries: dict[str, str] = {}
    key = None
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        if not line.strip() or line.startswith("#"):
            continue
        if line[0].isspace():
            if key is None:
                raise SystemExit(f"{path}: a reason before any mutant: {line!r}")
            entries[key] = (entries[key] + " " + line.strip()).strip()
        else:
            key = line.strip()
            entries[key] = ""
    missing = [key for key, why in entries.items() if not why]
    if missing:
        raise SystemExit(f"{path}: no reason given for {missing}")
    return entries


def change_of(diff: str) -> str:
    """The mutated line(s) of a unified diff, as one line: what the key of a survivor shows."""
    added = [
        line[1:].strip() for line in diff.splitlines() if line[:1] == "+" and line[:3] != "+++"
    ]
    removed = [
        line[1:].strip() for line in diff.splitlines() if line[:1] == "-" and line[:3] != "---"
    ]
    return " / ".join(added) if added else "removed " + " / ".join(removed)


def collect() -> tuple[dict[str, Counter], list[Survivor]]:
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.format_utils import orig_function_and_class_names_from_key

    counts: dict[str, Counter] = {}
    survivors: list[Survivor] = []
    for module in modules():
        path = Path(module.replace(".", "/") + ".py")
        data = SourceFileMutationData(path=path)
        data.load()
        counts[module] = Counter(
            status_by_exit_code[code] for code in data.exit_code_by_key.values()
        )
        for name, code in sorted(data.exit_code_by_key.items()):
            if status_by_exit_code[code] != "survived":
                continue
            function, cls = orig_function_and_class_names_from_key(name)
            function = function.rpartition(".")[-1]
            diff = get_diff_for_mutant(name, path=path)
            qualified = f"{cls}.{function}" if cls else function
            survivors.append(Survivor(name, module, qualified, change_of(diff), diff))
    return counts, survivors


def report(counts: dict[str, Counter], survivors: list[Survivor]) -> int:
    reasons = {module: explained(module) for module in counts}
    unexplained = [s for s in survivors if s.key not in reasons[s.module]]
    matched = {s.key for s in survivors}
    stale = [(m, key) for m, entries in reasons.items() for key in entries if key not in matched]
    rows = [("module", "mutants", "detected", "survived", "explained", "score")]
    totals = Counter()
    for module, count in counts.items():
        total = sum(count.values())
        detected = sum(count[status] for status in DETECTED)
        survived = count["survived"]
        accepted = sum(1 for s in survivors if s.module == module and s.key in reasons[module])
        totals.update(total=total, detected=detected, survived=survived, accepted=accepted)
        rows.append((module, total, detected, survived, accepted, _score(detected, total)))
    rows.append(
        (
            "all",
            totals["total"],
            totals["detected"],
            totals["survived"],
            totals["accepted"],
            _score(totals["detected"], totals["total"]),
        )
    )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(
        "\nscore = detected / mutants; detected = killed by a test or by the timeout. "
        f"Explained survivors: {len(survivors) - len(unexplained)} of {len(survivors)}."
    )
    for module, key in stale:
        print(f"stale explanation (no such survivor now) in tests/mutation/{module}.txt: {key}")
    if unexplained:
        print(f"\n{len(unexplained)} surviving mutant(s) neither killed nor explained:\n")
        for survivor in unexplained:
            print(f"[{survivor.module}] {survivor.key}\n    ({survivor.name})")
            print("\n".join("    " + line for line in survivor.diff.splitlines()[2:]))
            print()
        return 1
    return 0


def _score(detected: int, total: int) -> str:
    return f"{100 * detected / total:.1f} %" if total else "-"


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--report", action="store_true", help="report on the last run only")
    args = options.parse_args()
    if not args.report:
        LOG.parent.mkdir(parents=True, exist_ok=True)
        print(f"running mutmut (log: {LOG.relative_to(ROOT)}) ...", flush=True)
        with LOG.open("w") as log:
            subprocess.run(
                [sys.executable, "-m", "mutmut", "run"],
                cwd=ROOT,
                stdout=log,
                stderr=log,
                check=False,
            )
    return report(*collect())


if __name__ == "__main__":
    sys.exit(main())
