"""Issue 19's corpus notebooks (tests/submissions/part1_boundary.py), graded for real in both sandboxes.

The points each deserves are test_corpus.py's hand-written EXPECTED_FAILURES (all on the partial notebook: 15);
here each is also graded in the fallback (AUTOGRADER_DISABLE=bwrap), and the staff log is checked for what the
grader itself says: the measurement's policy layers, one fence, and the kernel's forged lines only as quotes.
"""

import json
import multiprocessing
import os
import re
from pathlib import Path

import pytest

from tests.test_corpus import EXPECTED_FAILURES, LIMITS, _path

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAMES = [name for name in EXPECTED_FAILURES if name.startswith("attack_boundary_")]
MODES = ("namespaces", "fallback")


def _grade(name: str, mode: str, out: str) -> None:
    if mode == "fallback":
        os.environ["AUTOGRADER_DISABLE"] = "bwrap"
    from autograder.config import from_environment
    from autograder.grade import grade
    grade(_path(name), Path(out) / f"{mode}-{name}.json", "hw4_part1", log=lambda m: None, limits=LIMITS,
          config=from_environment())


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the fallback's users need root")
    out = tmp_path_factory.mktemp("boundary")
    jobs = [(name, mode, str(out)) for mode in MODES for name in NAMES]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.starmap(_grade, jobs)
    return out


def _staff_log(results: dict) -> str:
    return next(t["output"] for t in results["tests"] if t["name"].startswith("Grader log"))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
def test_each_boundary_attack_earns_its_honest_score_in_both_sandboxes(graded, name, mode):
    results = json.loads((graded / f"{mode}-{name}.json").read_text())
    failed = {t["number"] for t in results["tests"] if t["status"] == "failed" and t["max_score"] > 0}
    must, may = EXPECTED_FAILURES[name]
    assert must <= failed <= may, (failed, results["output"])
    log = _staff_log(results)
    layers = re.search(r"measurement policy layers: (.*)", log).group(1)
    assert "seccomp (measurement)" in layers and "file policy: Landlock ABI" in layers, layers
    assert "guard (torch.optim)" in layers, layers
    grader_lines = log.splitlines()  # the run's own lines are quoted: they start with the quote mark
    assert any(line.startswith("FALLBACK SANDBOX") for line in grader_lines) == (mode == "fallback")


@pytest.mark.parametrize("mode", MODES)
def test_the_forged_staff_log_stays_quoted_inside_one_fence(graded, mode):
    log = _staff_log(json.loads((graded / f"{mode}-attack_boundary_forge_staff_log.json").read_text()))
    opening = re.match(r"(`{3,})\n", log).group(1)
    first_block = log[len(opening):log.index("\n" + opening, len(opening))]
    assert "\n```" not in first_block  # the kernel's fence did not survive as one
    forged = [line for line in first_block.splitlines() if line.endswith("worker: namespaces sandbox, exit 0")]
    assert forged and all(line.startswith("\u2502 ") for line in forged), forged
    if mode == "namespaces":  # the only unquoted sandbox line is the grader's own
        assert not [line for line in first_block.splitlines() if line.startswith("FALLBACK SANDBOX")]


def test_no_process_of_a_fallback_run_is_alive(graded):
    """The fresh uids are this branch's fallback runs' only (other graders on a shared box use slot users)."""
    from autograder.supervisor import runusers
    alive = [e.name for e in os.scandir("/proc") if e.name.isdigit() and _uid(e) >= runusers.FIRST_UID
             and runusers._live_processes(_uid(e))]
    assert alive == []


def _uid(entry) -> int:
    try:
        return entry.stat().st_uid
    except OSError:
        return -1
