"""Gradescope's entry point on a fake /autograder tree: run_autograder with no arguments.

Expected results are the rubric (tests/golden/hw4_part1_rubric.json, the README's point split) with the
scores each submission deserves: all of them for the solution, none for the template, all but Adam's
step checks for Adam without bias correction. The shipped rubric.yml must say the same (the course's weights:
model and loss 5, GD 5, SGD 5, AdaGrad 10, Adam 15).
"""

import concurrent.futures
import json
import os
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from autograder.results import SCHEMA

ROOT = Path(__file__).resolve().parent.parent
RUBRIC = json.loads((Path(__file__).parent / "golden" / "hw4_part1_rubric.json").read_text())
SUBMISSIONS = {
    "solution": (ROOT / "solution/notebooks/hw4_part1.ipynb", set()),
    "template": (ROOT / "student_template/hw4_part1.ipynb", {t["number"] for t in RUBRIC["tests"]}),
    "adam_no_bias_correction": (ROOT / "tests/submissions/hw4_part1/adam_no_bias_correction.ipynb",
                                {"5.3", "5.4", "5.5", "5.6"}),  # 5.1 (state) is not charged again
}


def test_the_shipped_rubric_is_the_pinned_one_with_the_courses_weights():
    from autograder.assignment import load_assignment
    shipped = load_assignment("hw4_part1").rubric()
    assert [(n, row.weight, row.visibility, row.name) for n, row in shipped.items()] == \
        [(t["number"], t["max_score"], t["visibility"], t["name"]) for t in RUBRIC["tests"]]
    per_part = {part: sum(t["max_score"] for t in RUBRIC["tests"] if t["number"].startswith(part)) for part in "12345"}
    assert per_part == {"1": 5, "2": 5, "3": 5, "4": 10, "5": 15}


def run_gradescope(tree: Path, notebook: Path, name: str = "hw4_part1.ipynb") -> dict:
    shutil.rmtree(tree, ignore_errors=True)
    (tree / "submission").mkdir(parents=True)
    (tree / "results").mkdir()
    shutil.copy(notebook, tree / "submission" / name)
    planted = {"score": 100, "tests": []}  # both a file the student brought and one already in place
    (tree / "submission" / "results.json").write_text(json.dumps(planted))
    (tree / "results" / "results.json").write_text(json.dumps(planted))
    env = {**os.environ, "AUTOGRADER_HOME": str(tree)}
    done = subprocess.run([str(ROOT / "run_autograder")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((tree / "results" / "results.json").read_text())


def expected_tests(failing: set[str]) -> list[dict]:
    return [{"number": t["number"], "name": t["name"], "max_score": t["max_score"],
             "score": 0.0 if t["number"] in failing else t["max_score"],
             "status": "failed" if t["number"] in failing else "passed"} for t in RUBRIC["tests"]]


@pytest.mark.integration
@pytest.mark.parametrize("label", SUBMISSIONS)
def test_gradescope_mode_writes_the_expected_results(tmp_path, label):
    notebook, failing = SUBMISSIONS[label]
    results = run_gradescope(tmp_path / "autograder", notebook, name=f"{label} (2).ipynb")
    jsonschema.validate(results, SCHEMA)
    graded = [{k: t[k] for k in ("number", "name", "max_score", "score", "status")}
              for t in results["tests"] if t["max_score"] > 0]
    assert graded == expected_tests(failing)
    assert results["score"] == RUBRIC["total"] - sum(t["max_score"] for t in RUBRIC["tests"] if t["number"] in failing)
    assert f"Graded `{label} (2).ipynb`" in results["output"]


@pytest.mark.integration
@pytest.mark.parametrize("name, total", [("adam_no_bias_correction", 29), ("course_sgd_numpy_rng", 40)])
def test_grading_is_deterministic(tmp_path, name, total):
    """The same file, the same grade and feedback, run after run and two at once: numpy's and Python's generators
    are seeded too."""
    notebook = ROOT / f"tests/submissions/hw4_part1/{name}.ipynb"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda i: run_gradescope(tmp_path / str(i), notebook), range(3)))
    for results in runs:
        results.pop("execution_time")
        results["tests"] = [t for t in results["tests"] if t["visibility"] != "hidden"]  # timings live there
    assert runs[0] == runs[1] == runs[2]
    assert runs[0]["score"] == total


@pytest.mark.integration
def test_a_part2_notebook_handed_in_to_part1_is_named(tmp_path):
    """As Gradescope's Part 1 zip grades it (its only assignment is Part 1)."""
    out = tmp_path / "results.json"
    done = subprocess.run([str(ROOT / "run_autograder"), "--submission", str(ROOT / "solution/notebooks/hw4_part2.ipynb"),
                           "--results", str(out), "--assignment", "hw4_part1"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["score"] == 0
    assert "looks like HW4 Part 2" in results["output"]


def test_when_python_cannot_start_a_valid_zero_result_is_still_written(tmp_path):
    fake = tmp_path / "kit"
    shutil.copytree(ROOT / "autograder", fake / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "run_autograder", fake / "run_autograder")
    (fake / ".venv" / "bin").mkdir(parents=True)
    (fake / ".venv" / "bin" / "python").write_text("#!/bin/sh\nexit 3\n")  # a broken install
    (fake / ".venv" / "bin" / "python").chmod(0o755)
    tree = tmp_path / "autograder"
    env = {**os.environ, "AUTOGRADER_HOME": str(tree)}
    done = subprocess.run([str(fake / "run_autograder")], env=env, capture_output=True, text=True)
    assert done.returncode == 3
    results = json.loads((tree / "results" / "results.json").read_text())
    jsonschema.validate(results, SCHEMA)
    assert results["score"] == 0
