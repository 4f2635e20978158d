"""Synthetic batch output folders for the class report's tests and benchmark, in the batch's own formats.

results.json comes from autograder.results.build_results (the grader's builder), grades.csv and summary.csv from
autograder.staff.reports.write_reports (the batch's writer), batch.json as autograder.staff.batch writes it. No sandbox runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from autograder.assignment import load_assignment
from autograder.assignments.hw4_part1.replay import MISTAKES
from autograder.staff.reports import Row
from autograder.staff.export import Entry, Submitter
from autograder.plugin import CaseResult
from autograder.staff.reports import write_reports
from autograder.results import build_results, failure_results

RUBRIC = load_assignment("hw4_part1").rubric()
TITLE = "HW4 Part 1: building your own optimizers"
ADAM_TESTS = ("5.1", "5.3", "5.4", "5.5", "5.6")


@dataclass
class Student:
    key: str
    failures: dict[str, str] = field(default_factory=dict)  # test number -> feedback ("" for a plain failure)
    status: str = "ok"  # ok, timeout, crashed (no results), invalid
    recorded: float | None = None  # Gradescope's score in the export
    notebook: Path | None = None  # what batch.json names as the submission
    names: tuple[str, ...] = ()


def mistake_feedback(mistake: str) -> str:
    """The failure message cases.py writes for a step replay that a named mistake reproduces."""
    return (f"300 steps of `Adam`: step 1 is the first that does not follow the update rule.\n- expected w = [5.1, "
            f"4.9], b = [9.9]\n- got w = [5.316, 4.684], b = [9.684]\n\nLikely mistake: {MISTAKES[mistake][1]}.")


def results_for(student: Student) -> dict | None:
    if student.status in ("timeout", "crashed"):
        return None if student.status == "timeout" else failure_results("", "Traceback: boom", 1.0)
    cases = [CaseResult(name=entry.name, number=number, max_score=entry.weight,
                        score=0.0 if number in student.failures else entry.weight,
                        status="failed" if number in student.failures else "passed",
                        output=student.failures.get(number) or ("Failed." if number in student.failures else "Passed."))
             for number, entry in RUBRIC.items()]
    if student.status == "invalid":
        return build_results([], "**Your submission could not be graded.** not a notebook", 0.5, status="invalid",
                             detail="not a notebook")
    return build_results(cases, f"Graded `{student.key}.ipynb` as **{TITLE}**.\n\nYour notebook ran.", 3.0)


def write_batch(out: Path, students: list[Student]) -> list[Row]:
    """OUT as a batch over `students` leaves it: a folder per submission, grades.csv, summary.csv."""
    rows = []
    for student in students:
        folder = out / student.key
        folder.mkdir(parents=True, exist_ok=True)
        results = results_for(student)
        if results is not None:
            (folder / "results.json").write_text(json.dumps(results))
        path = student.notebook or folder / f"{student.key}.ipynb"
        status = student.status if results is not None or student.status == "timeout" else "crashed"
        detail = {"timeout": "the grader did not finish in time and was stopped",
                  "crashed": "grader error (see the staff log)", "invalid": "not a notebook"}.get(status, "")
        (folder / "batch.json").write_text(json.dumps({"status": status, "detail": detail, "returncode": 0,
                                                       "seconds": 3.0, "submission": str(path)}))
        entry = Entry(student.key, path, tuple(Submitter(n) for n in student.names), recorded_score=student.recorded)
        rows.append(Row(entry, status, detail, results, 3.0))
    write_reports(rows, out)
    return rows


ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "student_template" / "hw4_part1.ipynb"
SOLUTION = ROOT / "solution" / "notebooks" / "hw4_part1.ipynb"
INDEPENDENT = sorted((ROOT / "tests" / "submissions" / "similarity").glob("independent_*.py"))


def sections(source: str) -> dict[str, str]:
    """`# %% Name` marked parts of a solution file: graded name -> the code of its cell."""
    found, name = {}, None
    for line in source.splitlines(keepends=True):
        if line.startswith("# %% "):
            name = line[5:].strip()
            found[name] = ""
        elif name:
            found[name] += line
    return found


def notebook_with(cells: dict[str, str], target: Path, base: Path = TEMPLATE) -> Path:
    """`base` with the cell that first defines each graded name replaced by `cells[name]`."""
    notebook = json.loads(base.read_text())
    for name, code in cells.items():
        for cell in notebook["cells"]:
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            if cell["cell_type"] == "code" and (f"class {name}" in source or f"def {name}(" in source):
                cell["source"] = code.splitlines(keepends=True)
                cell["outputs"], cell["execution_count"] = [], None
                break
        else:
            raise ValueError(f"{base} has no cell defining {name}")
    target.write_text(json.dumps(notebook, indent=1))
    return target
