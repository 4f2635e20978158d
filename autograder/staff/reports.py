"""A batch's reports: grades.csv (a row per student, ready for a gradebook), summary.csv (a row per test) and the
console summary.

Every text cell is neutralised by OWASP's rule for CSV injection: one that begins with `=`, `+`, `-`, `@`, a
tab, a carriage return or a line feed gets a leading single quote, so a spreadsheet shows it instead of running
it. Notebook names, submitter names and details all come from students. Numbers the batch computed are written
as numbers (a negative score stays `-2`).
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path
from dataclasses import dataclass
from typing import Iterable

from autograder.staff.export import Entry

__all__ = ["FORMULA_START", "GRADES_COLUMNS", "STATUSES", "Row", "cell", "changed", "summary_text", "write_reports"]

STATUSES = ("ok", "timeout", "crashed", "invalid")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
GRADES_COLUMNS = ("submission", "name", "email", "sid", "file", "status", "needs_review", "total", "gradescope_score",
                  "changed", "max_total")  # then one column per test number, then "detail"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x9b]")  # terminal escapes included


@dataclass(frozen=True)
class Row:
    """One submission's outcome in a batch."""

    entry: Entry
    status: str  # one of STATUSES
    detail: str  # why, when not plainly ok
    results: dict | None  # results.json, None when the grader left none
    seconds: float
    skipped: bool = False  # graded by an earlier run


def cell(value: object) -> str:
    """One CSV cell: numbers as numbers, text neutralised."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}"
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def changed(ours: float | None, recorded: float | None) -> str:
    """yes / no: whether our total differs from the score Gradescope recorded; blank when either is unknown."""
    if ours is None or recorded is None:
        return ""
    return "yes" if abs(ours - recorded) > 1e-6 else "no"


def write_reports(rows: list[Row], out: Path) -> None:
    """grades.csv: a row per student (a group's members each get the group's row); summary.csv: a row per test."""
    tests: dict[str, list[dict]] = {}
    for row in rows:
        for number, test in _scored(row.results).items():
            tests.setdefault(number, []).append(test)
    numbers = sorted(tests, key=lambda n: tuple(int(p) if p.isdigit() else 0 for p in n.split(".")))
    _write(out / "grades.csv", [*GRADES_COLUMNS, *numbers, "detail"],
           (line for row in rows for line in _grade_lines(row, numbers)))
    _write(out / "summary.csv", ["number", "name", "max_score", "mean", "full_marks", "graded"],
           ([number, tests[number][0]["name"], tests[number][0]["max_score"],
             f"{sum(t['score'] for t in tests[number]) / len(tests[number]):.3f}",
             sum(t["score"] >= t["max_score"] for t in tests[number]), len(tests[number])] for number in numbers))


def summary_text(rows: list[Row], out: Path) -> str:
    """The console report: statuses, the mean total, changes from Gradescope, what was not ok, where the files are."""
    counts = Counter(row.status for row in rows)
    totals = [row.results["score"] for row in rows if row.results is not None]
    moved = [row for row in rows if changed(_total(row), row.entry.recorded_score) == "yes"]
    lines = [f"{len(rows)} submissions ({sum(row.skipped for row in rows)} skipped as already graded with the same "
             f"secret, rubric and grader; --force regrades them): " + ", ".join(f"{counts[s]} {s}" for s in STATUSES),
             f"mean total {sum(totals) / len(totals):.2f}" if totals else "no results"]
    if any(row.entry.recorded_score is not None for row in rows):
        lines.append(f"{len(moved)} totals differ from the score Gradescope recorded (changed=yes in grades.csv)")
    review = [row for row in rows if _needs_review(row.results)]
    lines.append(f"{len(review)} need review (the grader failed on a check: needs_review in grades.csv)")
    lines.append(f"grades: {out / 'grades.csv'}; per test: {out / 'summary.csv'}")
    lines += [f"  {r.status:<8} {_printable(r.entry.key)}: {_printable(r.detail)}"
              for r in rows if r.status != "ok"][:30]
    return "\n".join(lines)


def _grade_lines(row: Row, numbers: list[str]) -> Iterable[list]:
    scored, results = _scored(row.results), row.results or {}
    notebook = str((results.get("extra_data") or {}).get("notebook") or "")  # grade.py writes it; never the Markdown
    file = row.entry.path.name + (f"/{notebook}" if notebook and row.entry.path.is_dir() else "")
    ours = _total(row)
    values = [row.status, " ".join(_needs_review(results)), ours, row.entry.recorded_score,
              changed(ours, row.entry.recorded_score),
              sum(t["max_score"] for t in scored.values()) if row.results else None,
              *(scored[n]["score"] if n in scored else None for n in numbers), row.detail]
    for person in row.entry.submitters or (None,):
        who = [person.name, person.email, person.sid] if person else ["", "", ""]
        yield [row.entry.key, *who, file, *values]


def _needs_review(results: dict | None) -> list[str]:
    """Numbers of the tests staff must review (results.json's extra_data.needs_review: the grader failed, or the
    machine stopped the check)."""
    found = ((results or {}).get("extra_data") or {}).get("needs_review")
    if not isinstance(found, list):
        return []
    return [str(n.get("number", "")) if isinstance(n, dict) else str(n) for n in found]


def _total(row: Row) -> float | None:
    return float(row.results["score"]) if row.results is not None else None


def _scored(results: dict | None) -> dict[str, dict]:
    """Test number (or name) -> test, for the scored tests: the hidden 0-point staff log is not one."""
    return {t.get("number") or t["name"]: t for t in (results or {}).get("tests", []) if t.get("max_score", 0) > 0}


def _write(path: Path, header: list[str], lines: Iterable[list]) -> None:
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow([cell(h) for h in header])
        writer.writerows([cell(v) for v in line] for line in lines)


def _printable(text: str) -> str:
    return _CONTROL.sub("?", text)
