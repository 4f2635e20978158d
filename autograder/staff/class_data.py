"""A graded batch folder (OUT) read back as one record per submission, for the class report.

Reads what autograder/staff/batch.py wrote: `grades.csv` (a row per student, a group's members sharing the row),
`<id>/results.json` and `<id>/batch.json`. The status comes from the grader's field, never from Markdown. The
named mistakes are read from the feedback's "Likely mistake: ..." lines, the convention every assignment's cases
follow; that text passes through a student's notebook only as numbers, but it is escaped wherever it is shown.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["GRADER_ERROR", "SubmissionRecord", "TestOutcome", "mistake_label", "read_class"]

GRADER_ERROR = "The grader could not check this result"  # plugin.py's output for an unexpected exception
_MISTAKE = re.compile(r"Likely mistake:\s*(.+)")
_TITLE = re.compile(r"Graded `[^`\n]*` as \*\*([^*\n]+)\*\*")
_FORMULA_QUOTED = ("'=", "'+", "'-", "'@", "'\t", "'\r", "'\n")


@dataclass(frozen=True)
class TestOutcome:
    number: str
    name: str
    score: float
    max_score: float

    @property
    def passed(self) -> bool:
        return self.score >= self.max_score - 1e-9


@dataclass
class SubmissionRecord:
    key: str  # OUT's folder name for it
    status: str  # ok, timeout, crashed, invalid (the grader's field)
    detail: str
    names: list[str] = field(default_factory=list)  # the submitters, as grades.csv lists them
    total: float | None = None
    max_total: float | None = None
    recorded: float | None = None  # Gradescope's score in the export
    changed: str = ""  # yes / no / blank, as in grades.csv
    assignment: str = ""  # the title the grader graded it as
    tests: dict[str, TestOutcome] = field(default_factory=dict)
    mistakes: dict[str, list[str]] = field(default_factory=dict)  # label -> test numbers that named it
    grader_errors: list[str] = field(default_factory=list)  # test numbers the grader could not check
    submission: Path | None = None  # what was graded, from batch.json

    @property
    def needs_review(self) -> bool:
        return self.status != "ok" or bool(self.grader_errors)


def mistake_label(text: str) -> str:
    """A short name for a mistake's hint: its first clause ("Adam without bias correction: use ..." -> the part
    before the colon), without Markdown emphasis."""
    text = text.replace("**", "").replace("`", "").strip().rstrip(".")
    head = re.split(r"[:.](?:\s|$)", text, maxsplit=1)[0].strip()
    return (head if 3 <= len(head) <= 70 else text[:70]).strip()


def read_class(out: Path) -> list[SubmissionRecord]:
    """One record per submission of the batch in `out`, in grades.csv's order. ValueError if there is no batch."""
    grades = out / "grades.csv"
    if not grades.is_file():
        raise ValueError(f"{out} holds no grades.csv: not a batch's output folder")
    records: dict[str, SubmissionRecord] = {}
    with grades.open(newline="") as stream:
        for line in csv.DictReader(stream):
            key = _text(line.get("submission"))
            record = records.get(key)
            if record is None:
                record = records[key] = SubmissionRecord(
                    key, _text(line.get("status")), _text(line.get("detail")), total=_number(line.get("total")),
                    max_total=_number(line.get("max_total")), recorded=_number(line.get("gradescope_score")),
                    changed=_text(line.get("changed")))
                _add_results(record, out)
            name = _text(line.get("name")) or _text(line.get("email")) or _text(line.get("sid"))
            if name:
                record.names.append(name)
    return list(records.values())


def _add_results(record: SubmissionRecord, out: Path) -> None:
    folder = out / record.key
    if record.key in ("", ".", "..") or "/" in record.key or "\\" in record.key:
        return  # not a folder the batch made
    results = _read_json(folder / "results.json") or {}
    batch = _read_json(folder / "batch.json") or {}
    if isinstance(batch.get("submission"), str):
        record.submission = Path(batch["submission"])
    title = _TITLE.match(str(results.get("output", "")))
    record.assignment = title.group(1).strip() if title else ""
    for test in results.get("tests", []) if isinstance(results.get("tests"), list) else []:
        if not isinstance(test, dict) or not test.get("max_score"):
            continue  # the hidden staff log is not a test
        number = str(test.get("number") or test.get("name"))
        record.tests[number] = TestOutcome(number, str(test.get("name", "")), float(test.get("score", 0)),
                                           float(test["max_score"]))
        output = str(test.get("output", ""))
        flagged: dict = test["extra_data"] if isinstance(test.get("extra_data"), dict) else {}
        if output.startswith(GRADER_ERROR) or flagged.get("status") in ("grader_error", "needs_review"):
            record.grader_errors.append(number)
        for found in _MISTAKE.finditer(output):
            record.mistakes.setdefault(mistake_label(found.group(1)), []).append(number)


def _text(value: str | None) -> str:
    """A grades.csv cell as written before reports.cell() quoted a formula-like start."""
    text = value or ""
    return text[1:] if text.startswith(_FORMULA_QUOTED) else text


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
