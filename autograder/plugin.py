"""Weighted pytest cases -> Gradescope tests: fixtures for the cases, and a collector of their outcomes.

Cases are plain pytest functions decorated with gradescope-utils' `@number` (and `@tags`); the assignment's
rubric.yml gives each number its points, visibility and name (else the docstring's first line names it), and a
case's failure message is its feedback.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from autograder.assignment import Call, Seeds
from autograder.errors import NotRun
from autograder.notebook import Notebook
from autograder.rubric import Row, check_matches

__all__ = ["CaseResult", "NeedsReview", "Submission", "run_cases", "import_cases_soon"]

ENGINE_ROOT = Path(__file__).resolve().parent.parent  # where `autograder` is importable from

INI = Path(__file__).with_name("cases.ini")
GRADER_ERROR = ("**Not your error:** the grader itself failed while checking this result. Your course staff will "
                "review this check by hand; its points are not final until they have.")


class NeedsReview(NotRun):
    """The grading machine, not the student's code, stopped the check: it scores 0 until staff review it.
    `reason`: "box" (stopped twice by the machine) or "grader" (the check could not be confined)."""

    def __init__(self, message: str, reason: str = "box"):
        super().__init__(message)
        self.reason = reason


@dataclass
class Submission:
    """What the cases see: observations from the sandbox, and the reference's answers to the same calls."""

    notebook: Notebook | None
    reply: dict | None
    problem: str  # why there are no observations ("" when there are)
    calls: dict[str, Call]
    seeds: Seeds | None
    reference: Callable[[Call], dict] | None
    _expected: dict = field(default_factory=dict)
    review: str = ""  # set when there are no observations through the grader's fault: every check is for review

    @property
    def cells(self) -> list[dict]:
        return (self.reply or {}).get("cells", [])

    def probe(self, name: str):
        """The student's observation for call `name`, or NotRun saying why there is none."""
        if self.reply is None:
            if self.review:
                raise NeedsReview(self.problem, self.review)
            raise NotRun(self.problem or "your notebook could not be run")
        observation = self.reply.get("probes", {}).get(name)
        if not isinstance(observation, dict):
            raise NotRun("this check did not run: the notebook stopped before it")
        if observation.get("needs_review"):
            raise NeedsReview(str(observation.get("error", "it was stopped by the grading machine")),
                              str(observation["needs_review"]))
        if not observation.get("ok"):
            raise NotRun(str(observation.get("error", "it failed")))
        return observation.get("value")

    def expected(self, name: str):
        if name not in self._expected:
            if self.reference is None:
                raise NotRun("no reference to compare with: the submission could not be graded")
            self._expected[name] = self.reference(self.calls[name])
        return self._expected[name]


@dataclass
class CaseResult:
    name: str
    number: str
    max_score: float
    score: float
    status: str  # "passed" or "failed"
    output: str
    visibility: str = "visible"
    tags: tuple[str, ...] = ()
    staff_detail: str = ""
    # Why staff must review the outcome, "" when they need not: "grader_error" (the trusted side raised; the student
    # is not told it is theirs), "box" (the machine stopped the check twice), "grader" (a check it could not confine).
    review: str = ""

    @property
    def grader_error(self) -> bool:
        return self.review == "grader_error"


class _Collector:
    def __init__(self, submission: Submission, rubric: dict[str, Row]):
        self._submission, self._rubric = submission, rubric
        self.results: list[CaseResult] = []

    @pytest.fixture
    def submission(self) -> Submission:
        return self._submission

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if report.when == "call" or (report.when == "setup" and report.failed):
            self.results.append(_result(item, call, report.passed, self._rubric))


def _result(item, call, passed: bool, rubric: dict[str, Row]) -> CaseResult:
    """The case's outcome; its points, name and visibility from its rubric row (the name, when the row has none,
    from its docstring). A case without a row scores 0/0 here; run_cases then refuses the whole run."""
    function = item.function
    number = getattr(function, "__number__", "")
    row = rubric.get(number, Row(weight=0.0))
    doc = row.name or (function.__doc__ or item.name).strip().split("\n")[0]
    output, staff, review = "Passed.", "", ""
    if not passed:
        error = call.excinfo.value if call.excinfo else None
        if isinstance(error, NeedsReview):
            output, review = f"**Staff will review this check:** {error}", error.reason
        elif isinstance(error, NotRun):
            output = f"**Could not run:** {error}"
        elif isinstance(error, AssertionError):
            output = str(error).split("\nassert ")[0]  # our message, without pytest's rewritten expression
        else:
            output = GRADER_ERROR
            staff = "".join(traceback.format_exception(error)) if error else "no exception"
            review = "grader_error"
    return CaseResult(name=doc, number=number, max_score=row.weight, score=row.weight if passed else 0.0,
                      status="passed" if passed else "failed", output=output, visibility=row.visibility,
                      tags=tuple(getattr(function, "__tags__", ())), staff_detail=staff, review=review)


def run_cases(cases_path: Path, submission: Submission, rubric: dict[str, Row]) -> tuple[list[CaseResult], str]:
    """Run one assignment's cases in this (trusted) process; returns the results and pytest's log. Raises
    RubricError when the rubric and the cases that ran do not describe the same tests."""
    collector = _Collector(submission, rubric)
    log = io.StringIO()
    # Only our plugin (installed pytest plugins such as hypothesis' cost seconds), and no assertion
    # rewriting: the cases raise their own messages. No unraisable-exception plugin: its full garbage
    # collections cost a third of a second in a process holding torch. Python's own tracebacks: pytest's long ones
    # repr every frame's arguments (a run's trajectories), seconds per failed case, and its short ones parse each
    # frame's file again; our own messages are what we report.
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), _env("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1"):
        code = pytest.main([str(cases_path), "-c", str(INI), "--rootdir", str(cases_path.parent), "-q",
                            "--assert=plain", "--tb=native", "-p", "no:cacheprovider", "-p", "no:unraisableexception"],
                           plugins=[collector])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or not collector.results:
        raise RuntimeError(f"the cases in {cases_path} did not run (pytest exit {code}):\n{log.getvalue()[-3000:]}")
    check_matches(rubric, [r.number for r in collector.results], str(cases_path))
    return _said_once(sorted(collector.results, key=lambda r: _number_key(r.number))), log.getvalue()


def import_cases_soon(cases_path: Path) -> threading.Thread:
    """Import the cases' module, and so what it imports (torch, for Part 1), in a thread: run_cases, which has pytest
    import the file again under pytest's own name, then finds those imports loaded. Never while this process may
    fork a child that imports: a module lock held by this thread at the fork would never be released there."""
    name = ".".join(cases_path.resolve().relative_to(ENGINE_ROOT).with_suffix("").parts)

    def load() -> None:
        with contextlib.suppress(Exception):  # run_cases imports it again and reports what went wrong
            importlib.import_module(name)

    thread = threading.Thread(target=load, name="cases import", daemon=True)
    thread.start()
    return thread


def _said_once(results: list[CaseResult]) -> list[CaseResult]:
    """Each paragraph of feedback in the first failed test that says it; later tests point back to it instead of
    repeating it (a class whose __init__ fails would otherwise explain that in every one of its tests)."""
    first: dict[str, str] = {}
    for result in results:
        if result.status != "failed" or result.grader_error:
            continue
        kept, repeated = [], []
        for paragraph in result.output.split("\n\n"):
            key = paragraph.removeprefix("**Could not run:** ").strip()
            if len(key) < 40 or key not in first:
                kept.append(paragraph)
                first.setdefault(key, result.number or result.name)
            elif first[key] not in repeated:
                repeated.append(first[key])
        if repeated:
            kept.append(f"(The same reason as test {', '.join(repeated)} above.)" if not kept else
                        f"(See also test {', '.join(repeated)} above.)")
            result.output = "\n\n".join(kept)
    return results


@contextlib.contextmanager
def _env(name: str, value: str):
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            del os.environ[name]
        else:
            os.environ[name] = previous


def _number_key(number: str) -> tuple:
    return tuple(int(part) if part.isdigit() else 0 for part in number.split("."))
