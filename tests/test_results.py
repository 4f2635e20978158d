"""results.json: always schema-valid, never written through a planted file, readable in a console."""

import json
import os

import jsonschema
import pytest

from autograder.plugin import CaseResult
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
