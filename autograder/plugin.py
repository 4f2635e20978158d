"""Weighted pytest cases -> Gradescope tests: fixtures for the cases, and a collector of their outcomes.

Cases are plain pytest functions decorated with gradescope-utils' `@weight`, `@number`, `@visibility` and
`@tags`; their docstring's first line is the test's name, and their failure message its feedback.
"""

from __future__ import annotations

import contextlib
import io
import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from autograder.assignment import Call, Seeds
from autograder.checks import NotRun
from autograder.notebook import Notebook

__all__ = ["CaseResult", "NeedsReview", "Submission", "run_cases"]

INI = Path(__file__).with_name("cases.ini")


class NeedsReview(NotRun):
    """The grading machine, not the student's code, stopped the check (twice): it scores 0 until staff review it."""

    reason = "box"


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

    @property
    def cells(self) -> list[dict]:
        return (self.reply or {}).get("cells", [])

    def probe(self, name: str):
        """The student's observation for call `name`, or NotRun saying why there is none."""
        if self.reply is None:
            raise NotRun(self.problem or "your notebook could not be run")
        observation = self.reply.get("probes", {}).get(name)
        if not isinstance(observation, dict):
            raise NotRun("this check did not run: the notebook stopped before it")
        if observation.get("needs_review"):
            raise NeedsReview(str(observation.get("error", "it was stopped by the grading machine")))
        if not observation.get("ok"):
            raise NotRun(str(observation.get("error", "it failed")))
        return observation.get("value")

    def expected(self, name: str):
        if name not in self._expected:
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
    review: str = ""  # why staff must review the outcome ("box": the machine stopped it), "" when not


class _Collector:
    def __init__(self, submission: Submission, rubric: dict[str, dict]):
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


def _result(item, call, passed: bool, rubric: dict[str, dict]) -> CaseResult:
    """The case's outcome; its points, name and visibility from the rubric (else its decorators and docstring)."""
    function = item.function
    entry = rubric.get(getattr(function, "__number__", ""), {})
    doc = entry.get("name") or (function.__doc__ or item.name).strip().split("\n")[0]
    weight = float(entry.get("weight", getattr(function, "__weight__", 0.0)))
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
            output = "The grader could not check this result; your course staff have been told."
            staff = "".join(traceback.format_exception(error)) if error else "no exception"
    return CaseResult(name=doc, number=getattr(function, "__number__", ""), max_score=weight,
                      score=weight if passed else 0.0, status="passed" if passed else "failed",
                      output=output, visibility=entry.get("visibility", getattr(function, "__visibility__", "visible")),
                      tags=tuple(getattr(function, "__tags__", ())), staff_detail=staff,
                      review=review)


def run_cases(cases_path: Path, submission: Submission, rubric: dict[str, dict] | None = None
              ) -> tuple[list[CaseResult], str]:
    """Run one assignment's cases in this (trusted) process; returns the results and pytest's log."""
    collector = _Collector(submission, rubric or {})
    log = io.StringIO()
    # Only our plugin (installed pytest plugins such as hypothesis' cost seconds), and no assertion
    # rewriting: the cases raise their own messages. No unraisable-exception plugin: its full garbage
    # collections cost a third of a second in a process holding torch.
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log), _env("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1"):
        code = pytest.main([str(cases_path), "-c", str(INI), "--rootdir", str(cases_path.parent), "-q",
                            "--assert=plain", "-p", "no:cacheprovider", "-p", "no:unraisableexception"], plugins=[collector])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or not collector.results:
        raise RuntimeError(f"the cases in {cases_path} did not run (pytest exit {code}):\n{log.getvalue()[-3000:]}")
    return sorted(collector.results, key=lambda r: _number_key(r.number)), log.getvalue()


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
