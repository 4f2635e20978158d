"""autograder/plugin.py, in process: how case outcomes become Gradescope tests (points, names, visibility,
feedback). A small cases file stands in for an assignment's; the weights come from the rubric given."""

import textwrap

import pytest

from autograder.errors import RubricError
from autograder.plugin import GRADER_ERROR, Submission, run_cases
from autograder.rubric import Row

CASES = '''
from gradescope_utils.autograder_utils.decorators import number

from autograder.checks import NotRun


@number("1.1")
def test_passes(submission):
    """Docstring name of 1.1

    More lines that are not the name."""
    assert submission.probe("good") == 3


@number("1.2")
def test_wrong_value(submission):
    """A wrong value"""
    got = submission.probe("good")
    assert got == 4, f"the sum: expected `4`, got `{got}`."


@number("1.10")
def test_could_not_run(submission):
    """Needs an observation the run does not have"""
    submission.probe("missing")


@number("1.3")
def test_grader_bug(submission):
    """The grader's own check crashes"""
    return {}["no such key"]


@number("1.4")
def test_not_run_by_the_case(submission):
    """A case that says why it could not run"""
    raise NotRun("`Adam` is not defined")
'''
RUBRIC = {"1.1": Row(2.0, "visible", ""), "1.2": Row(1.5, "hidden", "Rubric name of 1.2"),
          "1.3": Row(1.0, "after_due_date", "Rubric name of 1.3"), "1.4": Row(0.5, "visible", "Rubric name of 1.4"),
          "1.10": Row(3.0, "visible", "Rubric name of 1.10")}


@pytest.fixture(scope="module")
def cases_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("assignment") / "cases.py"  # the name the cases' pytest.ini collects
    path.write_text(textwrap.dedent(CASES))
    return path


def submission(probes: dict | None = None, problem: str = "") -> Submission:
    reply = None if probes is None else {"probes": probes}
    return Submission(notebook=None, reply=reply, problem=problem, calls={}, seeds=None, reference=None)


def run(cases_path, probes, rubric=None):
    results, _ = run_cases(cases_path, submission(probes), RUBRIC if rubric is None else rubric)
    return {r.number: r for r in results}


def test_points_names_and_visibility_come_from_the_rubric(cases_path):
    results = run(cases_path, {"good": {"ok": True, "value": 3}})
    assert list(results) == ["1.1", "1.2", "1.3", "1.4", "1.10"]  # by number, 1.10 after 1.4
    assert {n: r.max_score for n, r in results.items()} == {n: row.weight for n, row in RUBRIC.items()}
    assert {n: r.visibility for n, r in results.items()} == {n: row.visibility for n, row in RUBRIC.items()}
    assert results["1.2"].name == "Rubric name of 1.2"
    assert results["1.1"].name == "Docstring name of 1.1"  # an empty rubric name: the docstring's first line


def test_a_passing_case_earns_its_weight_and_a_failing_one_nothing(cases_path):
    results = run(cases_path, {"good": {"ok": True, "value": 3}})
    assert (results["1.1"].status, results["1.1"].score, results["1.1"].output) == ("passed", 2.0, "Passed.")
    for number in ("1.2", "1.3", "1.4", "1.10"):  # no partial credit: a failed case scores 0 whatever its weight
        assert (results[number].status, results[number].score) == ("failed", 0.0), number


def test_the_same_cases_weigh_what_another_rubric_says(cases_path):
    other = {n: Row(row.weight * 10, row.visibility, row.name) for n, row in RUBRIC.items()}
    results = run(cases_path, {"good": {"ok": True, "value": 3}}, other)
    assert results["1.1"].max_score == results["1.1"].score == 20.0
    assert results["1.2"].max_score == 15.0


def test_a_failing_cases_output_is_its_own_message(cases_path):
    results = run(cases_path, {"good": {"ok": True, "value": 3}})
    assert results["1.2"].output == "the sum: expected `4`, got `3`."
    assert results["1.2"].staff_detail == ""
    assert results["1.4"].output == "**Could not run:** `Adam` is not defined"
    assert results["1.10"].output == "**Could not run:** this check did not run: the notebook stopped before it"


def test_a_crash_of_the_grader_is_not_explained_to_the_student_but_kept_for_the_staff(cases_path):
    result = run(cases_path, {"good": {"ok": True, "value": 3}})["1.3"]
    assert result.output == GRADER_ERROR and result.review == "grader_error"
    assert "no such key" not in result.output
    assert "KeyError" in result.staff_detail and "no such key" in result.staff_detail


def test_a_failed_observation_says_why_in_every_case_that_needs_it(cases_path):
    results = run(cases_path, {"good": {"ok": False, "error": "NameError: name 'w' is not defined"}})
    assert results["1.1"].score == 0
    assert results["1.1"].output == "**Could not run:** NameError: name 'w' is not defined"
    without_run, _ = run_cases(cases_path, submission(None, problem="your notebook is not JSON"), RUBRIC)
    assert {r.output for r in without_run if r.number in ("1.1", "1.2", "1.10")} == {
        "**Could not run:** your notebook is not JSON"}


def test_without_observations_through_the_graders_fault_every_check_is_for_review_not_charged_as_not_run(
        cases_path):
    problem = "the grader's sandbox could not start (not your code); your course staff will review it"
    ours = Submission(notebook=None, reply=None, problem=problem, calls={}, seeds=None, reference=None,
                      review="grader")
    results = {r.number: r for r in run_cases(cases_path, ours, RUBRIC)[0]}
    assert {results[n].review for n in ("1.1", "1.2", "1.10")} == {"grader"}
    assert all(results[n].score == 0 for n in ("1.1", "1.2", "1.10"))
    assert results["1.1"].output == f"**Staff will review this check:** {problem}"  # then pointed to (said once)
    theirs = {r.number: r for r in run_cases(cases_path, submission(None, problem=problem), RUBRIC)[0]}
    assert {theirs[n].review for n in ("1.1", "1.2", "1.10")} == {""}  # the control: no review without the field


@pytest.mark.parametrize("change, named", [
    (lambda rubric: {n: row for n, row in rubric.items() if n != "1.3"}, "cases without a rubric row: ['1.3']"),
    (lambda rubric: {**rubric, "9.9": Row(5.0)}, "rubric rows without a case: ['9.9']"),
])
def test_a_case_without_a_row_or_a_row_without_a_case_fails_the_run(cases_path, change, named):
    with pytest.raises(RubricError) as raised:
        run_cases(cases_path, submission({"good": {"ok": True, "value": 3}}), change(dict(RUBRIC)))
    assert named in str(raised.value)
