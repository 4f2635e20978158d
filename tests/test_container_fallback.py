"""Gradescope's container, simulated: no CAP_SYS_ADMIN, cgroup mounts read-only, and no user namespaces (its
seccomp profile refuses them; here AUTOGRADER_DISABLE=bwrap stands in for that). The fallback sandbox must still
grade both parts right there, inside the memory the default box has, and say in the staff log that it fell back.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUBMISSIONS = ROOT / "tests" / "submissions"
CONTAINER = (
    'for m in $(awk \'$3 == "cgroup" || $3 == "cgroup2" {print $2}\' /proc/mounts); do '
    'mount -o remount,bind,ro "$m"; done; '
    'exec setpriv --bounding-set=-sys_admin --inh-caps=-sys_admin -- "$@"'
)

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="simulating the container needs root (unshare -m)")]


def grade_in_container(notebook: Path, assignment: str, out: Path) -> dict:
    env = {**os.environ, "AUTOGRADER_DISABLE": "bwrap", "AUTOGRADER_SECRET": "container test"}
    command = ["unshare", "-m", "--propagation", "private", "sh", "-c", CONTAINER, "sh",
               sys.executable, "-m", "autograder", "--submission", str(notebook), "--results", str(out),
               "--assignment", assignment]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def staff_log(results: dict) -> str:
    return next(t["output"] for t in results["tests"] if t["name"].startswith("Grader log"))


def failed(results: dict) -> set[str]:
    return {t["number"] for t in results["tests"] if t["status"] == "failed" and t["max_score"] > 0}


@pytest.mark.parametrize("assignment, solution_total", [("hw4_part1", 40), ("hw4_part2", 10)])
def test_the_fallback_grades_the_solution_full_and_the_template_zero(tmp_path, assignment, solution_total):
    solution = grade_in_container(ROOT / "solution" / "notebooks" / f"{assignment}.ipynb", assignment,
                                  tmp_path / "solution.json")
    assert solution["score"] == solution_total, solution["output"]
    log = staff_log(solution)
    assert "FALLBACK SANDBOX" in log and "no cgroups" in log  # it knew where it was, and said so
    template = grade_in_container(ROOT / "student_template" / f"{assignment}.ipynb", assignment,
                                  tmp_path / "template.json")
    assert template["score"] == 0


def test_the_fallback_takes_points_only_where_the_mistake_is(tmp_path):
    results = grade_in_container(SUBMISSIONS / "hw4_part1" / "adam_no_bias_correction.ipynb", "hw4_part1",
                                 tmp_path / "wrong.json")
    assert {"5.3", "5.4", "5.5"} <= failed(results) <= {f"5.{i}" for i in range(1, 7)}


def test_the_fallback_stops_a_memory_hog_by_its_memory(tmp_path):
    results = grade_in_container(SUBMISSIONS / "hw4_part1" / "attack_memory_hog.ipynb", "hw4_part1",
                                 tmp_path / "hog.json")
    assert failed(results) == {f"{g}.{i}" for g, n in ((4, 6), (5, 6)) for i in range(1, n + 1)}
    assert "FALLBACK SANDBOX" in staff_log(results)
