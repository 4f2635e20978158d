"""results.json: always schema-valid, never written through a planted file, readable in a console."""

import json
import os

import jsonschema
import pytest

from autograder.plugin import CaseResult
from autograder.rubric import Row
from autograder.results import SCHEMA, build_results, console_table, failure_results, write_results


def case(number, passed, weight=2.0):
    return CaseResult(name=f"case {number}", number=number, max_score=weight, score=weight if passed else 0.0,
                      status="passed" if passed else "failed", output="Passed." if passed else "**Could not run:** x")


def test_built_results_follow_gradescopes_schema_and_add_up():
    results = build_results([case("1.1", True), case("1.2", False), case("2.1", True, 3)], "summary", 12.3,
                            staff_log="worker log")
    jsonschema.validate(results, SCHEMA)
    assert results["score"] == 5.0
    hidden = [t for t in results["tests"] if t["visibility"] == "hidden"]
    assert len(hidden) == 1 and hidden[0]["max_score"] == 0 and "worker log" in hidden[0]["output"]


def test_the_schema_rejects_what_gradescope_would():
    results = build_results([case("1.1", True)], "s", 1.0)
    results["tests"][0]["status"] = "ok"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(results, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"tests": []}, SCHEMA)


def test_failure_results_are_valid_and_score_zero():
    results = failure_results("It broke.", "Traceback ...", 0.5)
    jsonschema.validate(results, SCHEMA)
    assert results["score"] == 0 and "It broke." in results["output"]


def test_a_planted_link_is_replaced_not_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    target = tmp_path / "results" / "results.json"
    target.parent.mkdir()
    os.symlink(victim, target)
    write_results(build_results([case("1.1", True)], "s", 1.0), target)
    assert victim.read_text() == "untouched"
    assert not target.is_symlink() and json.loads(target.read_text())["score"] == 2.0


def test_console_table_lists_visible_tests_and_the_total():
    table = console_table(build_results([case("1.1", True), case("1.2", False)], "s", 1.0, staff_log="x"))
    assert "case 1.1" in table and "FAIL" in table and "2 / 4" in table and "Grader log" not in table


def test_a_grader_error_is_flagged_for_review_not_blamed_on_the_student(tmp_path):
    """A case that raised on the trusted side (plugin: neither AssertionError nor NotRun) is marked in the test's
    extra_data, counted in the results' needs_review, and its traceback goes to the staff log only."""
    from autograder.plugin import GRADER_ERROR, run_cases
    from autograder.plugin import Submission
    cases = tmp_path / "cases_with_a_grader_error.py"  # a name of its own: pytest caches modules by name
    cases.write_text("from gradescope_utils.autograder_utils.decorators import number\n\n\n"
                     "@number('1')\ndef test_ok(submission):\n    pass\n\n\n"
                     "@number('2')\ndef test_broken(submission):\n    {}['missing']\n\n\n"
                     "@number('3')\ndef test_wrong(submission):\n    raise AssertionError('expected 1, got 2')\n")
    rubric = {n: Row(weight=1.0, name=name) for n, name in (("1", "test_ok"), ("2", "test_broken"), ("3", "test_wrong"))}
    results, _ = run_cases(cases, Submission(None, {}, "", {}, None, None), rubric)
    by_name = {r.name: r for r in results}
    assert by_name["test_broken"].grader_error and by_name["test_broken"].output == GRADER_ERROR
    assert not by_name["test_wrong"].grader_error and not by_name["test_ok"].grader_error
    built = build_results(results, "summary", 1.0)
    jsonschema.validate(built, SCHEMA)
    flagged = [t for t in built["tests"] if t.get("extra_data", {}).get("status") == "grader_error"]
    assert [t["name"] for t in flagged] == ["test_broken"]
    assert built["extra_data"]["needs_review"] == [{"number": "2", "reason": "grader_error"}]
    staff = next(t for t in built["tests"] if t["visibility"] == "hidden")["output"]
    assert "KeyError" in staff and "needs review" in staff and "KeyError" not in flagged[0]["output"]
