"""results.json: one pure function builds it, a schema checks it, an atomic write puts it in place."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import jsonschema

from autograder.plugin import CaseResult
from autograder.stafftext import fence

__all__ = ["STATUSES", "build_results", "failure_results", "write_results", "console_table", "SCHEMA"]

SCHEMA = json.loads(Path(__file__).with_name("results_schema.json").read_text())


STATUSES = ("ok", "timeout", "crashed", "invalid")


def build_results(cases: list[CaseResult], summary: str, seconds: float, staff_log: str = "",
                  status: str = "ok", detail: str = "", notebook: str = "") -> dict:
    """Gradescope's dict. Staff-only detail goes into a hidden 0-point test, which students never see.

    `status` (one of STATUSES), `detail` and `notebook` (the graded notebook's file name; "" when none was run) go
    to `extra_data`: reports read them, never the Markdown, which embeds text the student's code wrote."""
    tests = [{
        "name": case.name, "number": case.number, "score": case.score, "max_score": case.max_score,
        "status": case.status, "output": case.output, "output_format": "md", "visibility": case.visibility,
        "tags": list(case.tags), **({"extra_data": {"status": "grader_error" if case.grader_error else "needs_review",
                                           "reason": case.review}} if case.review else {}),
    } for case in cases]
    details = [f"### {case.number} {case.name}{f' (needs review: {case.review})' if case.review else ''}\n"
               f"{fence(case.staff_detail)}" for case in cases if case.staff_detail]
    if staff_log or details:
        tests.append({"name": "Grader log (course staff only)", "score": 0.0, "max_score": 0.0,
                      "status": "passed", "output": "\n\n".join([fence(staff_log)] + details),
                      "output_format": "md", "visibility": "hidden"})
    return {
        "score": round(sum(case.score for case in cases), 4),
        "execution_time": round(seconds, 1),
        "output": summary,
        "output_format": "md",
        "test_output_format": "md",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {"status": status, "detail": detail, "notebook": notebook,
                       "needs_review": [{"number": c.number or c.name, "reason": c.review} for c in cases if c.review]},
    }


def failure_results(student_message: str, staff_detail: str, seconds: float) -> dict:
    """The last resort when even the cases could not be run: a valid file that scores 0."""
    return build_results([], f"**The autograder could not grade this submission.** {student_message}",
                         seconds, staff_log=staff_detail, status="crashed", detail="grader error (see the staff log)")


def write_results(results: dict, path: Path) -> None:
    jsonschema.validate(results, SCHEMA)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Replace, never write through: a file or link planted at `path` is not followed or appended to.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".results-", suffix=".json")
    with os.fdopen(fd, "w") as out:
        json.dump(results, out, indent=2)
    os.replace(temporary, path)


def console_table(results: dict) -> str:
    rows = [f"{'#':>5}  {'test':<66} {'score':>11}"]
    for test in results["tests"]:
        if test.get("visibility") == "hidden" and test["max_score"] == 0:
            continue
        mark = "ok " if test["status"] == "passed" else "FAIL"
        rows.append(f"{test.get('number', ''):>5}  {test['name'][:66]:<66} {test['score']:>4g} / {test['max_score']:<4g} {mark}")
    total = sum(t["max_score"] for t in results["tests"])
    rows.append(f"{'':>5}  {'TOTAL':<66} {results['score']:>4g} / {total:<4g}")
    return "\n".join(rows)
