"""Every wrong, faulty and adversarial notebook of the corpus, graded for real through the sandbox.

For each: a schema-valid results.json, exactly the points it deserves (hand-derived below, not recorded from
a run), a run that ends within its time limit plus 15 s, and a clean machine afterwards.
"""

import json
import multiprocessing
import os
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest

from autograder.results import SCHEMA
from autograder.sandbox import SANDBOX_USER, Limits
from tests.submissions import make_corpus

CORPUS = Path(__file__).parent / "submissions" / "hw4_part1"
LIMITS = Limits(wall_seconds=150, cell_timeout=15, memory_mb=1200)  # 15 s: `import torch` on a busy box
MARKER = Path("/tmp/ag_attack_marker")
SCRATCH = Path(os.environ.get("TMPDIR", "/tmp"))
CGROUPS = Path("/sys/fs/cgroup/memory")

ALL = {f"1.{i}" for i in (1, 2, 3)} | {f"2.{i}" for i in range(1, 17)} | {f"3.{i}" for i in range(1, 6)}
GD = {"2.1", "2.2", "2.3", "3.2"}
SGD = {"2.4", "2.5", "2.6", "3.3"}
ADAGRAD = {"2.7", "2.8", "2.9", "2.10", "2.11", "3.4"}
ADAM = {"2.12", "2.13", "2.14", "2.15", "2.16", "3.5"}

# submission -> the graded cases it must fail; every other case must pass.
EXPECTED_FAILURES = {
    # Honest mistakes: each fails the cases that observe it, and nothing else.
    "correct_autograd_gradients": set(),  # other arithmetic, same maths: full marks
    "adam_no_bias_correction": {"2.14", "2.15", "2.16", "3.5"},  # gradient and state are fine
    "adam_t_not_incremented": {"2.12", "2.14", "2.15", "2.16", "3.5"},
    "adam_eps_inside_sqrt": {"2.14", "2.16"},  # visible only when epsilon is large
    "adagrad_eps_inside_sqrt": {"2.9", "2.11"},
    "adagrad_accumulator_zero": {"2.7", "2.9", "2.11"},  # 0.1 matters only for small gradients
    "sgd_full_batch": {"2.4", "2.5", "2.6"},  # the public check's 0.05 tolerance admits GD's 0.9611
    "gd_missing_factor_2": GD,
    "loss_sum_reduction": {"1.2", "1.3"},  # 1c trains with the student's loss; 484 is a sum of one term
    "b_not_updated": {"2.2", "2.3", "2.5", "2.6", "3.2", "3.3"},  # in GD.apply_gradient, which SGD inherits
    # Broken notebooks: graded by what they define.
    "fault_not_json": ALL,
    "fault_no_metadata": set(),
    "fault_syntax_error_adam": ADAM,
    "fault_missing_adagrad": ADAGRAD,
    "fault_deleted_check_cells": set(),
    "fault_duplicated_check_cell": set(),
    "fault_cells_reversed": set(),
    # Attacks on a correct notebook: the attack is contained and the code is graded as written.
    "attack_os_exit": set(),
    "attack_sys_exit": set(),
    "attack_keyboard_interrupt": set(),
    "attack_infinite_loop": set(),
    "attack_uninterruptible_loop": set(),
    "attack_print_50mb": set(),
    "attack_systemexit_in_adam": ADAM - {"2.13"},  # calculate_gradient still works
    "attack_replace_torch_adam": {"1.3"},  # 1c then calls the student's Adam with torch's arguments
    # Delegating to torch.optim scores 0 for that optimizer, however it is hidden.
    "attack_wrap_torch_optim": ADAM,
    "attack_wrap_torch_optim_obfuscated": GD | SGD,  # SGD inherits GD.apply_gradient
    "attack_wrap_torch_optim_alias": GD | SGD,
    # Attacks on the template: nothing to earn, nothing earned, nothing left behind.
    "attack_fork_bomb": ALL,
    "attack_memory_hog": ALL,
    "attack_read_reference": ALL,
    "attack_write_results": ALL,
    "attack_background_rewriter": ALL,
    "attack_monkeypatch_isclose": ALL,
    "attack_network": ALL,
}


def _grade_one(name: str, out: str) -> tuple[float, float]:
    from autograder.grade import grade
    started = time.monotonic()
    grade(CORPUS / f"{name}.ipynb", Path(out) / f"{name}.json", "hw4_part1", log=lambda m: None, limits=LIMITS)
    return time.monotonic() - started, time.time()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the whole corpus once, two submissions at a time, each in a fresh process."""
    out = tmp_path_factory.mktemp("corpus")
    MARKER.unlink(missing_ok=True)
    before = set(SCRATCH.glob("autograder-*")) | set(CGROUPS.glob("autograder-*"))  # earlier runs' leftovers
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        timings = dict(zip(EXPECTED_FAILURES, pool.starmap(_grade_one, [(n, str(out)) for n in EXPECTED_FAILURES])))
    timings["scratch_before"] = before
    return out, timings


def test_corpus_matches_its_generator():
    assert make_corpus.main(["--check"]) == 0
    assert {p.stem for p in CORPUS.glob("*.ipynb")} == set(EXPECTED_FAILURES)


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED_FAILURES)
def test_each_submission_gets_exactly_what_it_deserves(graded, name):
    out, timings = graded
    results = json.loads((out / f"{name}.json").read_text())
    jsonschema.validate(results, SCHEMA)
    failed = {t["number"] for t in results["tests"] if t["status"] == "failed" and t["max_score"] > 0}
    assert failed == EXPECTED_FAILURES[name], results["output"]
    graded_tests = [t for t in results["tests"] if t["max_score"] > 0]
    assert results["score"] == sum(t["max_score"] for t in graded_tests if t["number"] not in failed)
    assert all(t["score"] == 0 for t in graded_tests if t["number"] in failed)
    assert timings[name][0] <= LIMITS.wall_seconds + 15


@pytest.mark.slow
def test_feedback_says_what_went_wrong(graded):
    out, _ = graded
    results = {name: json.loads((out / f"{name}.json").read_text()) for name in EXPECTED_FAILURES}

    def output(name, number):
        return next(t["output"] for t in results[name]["tests"] if t["number"] == number)

    assert "not JSON" in results["fault_not_json"]["output"]
    assert "syntax error at line" in results["fault_syntax_error_adam"]["output"]
    assert "`Adam` is not defined" in output("fault_syntax_error_adam", "2.15")
    assert "must not use `torch.optim`" in output("attack_wrap_torch_optim_alias", "2.3")
    assert "first that differs" in output("adam_no_bias_correction", "2.15")
    assert "expected" in output("adam_no_bias_correction", "2.15")
    assert "kernel stopped" in results["attack_os_exit"]["output"]
    assert "dropped" in results["attack_print_50mb"]["output"]
    assert "mean" in output("loss_sum_reduction", "1.2")
    assert "t` should be" in output("adam_t_not_incremented", "2.12")


@pytest.mark.slow
def test_nothing_leaks_or_outlives_the_run(graded):
    out, timings = graded
    text = "".join(p.read_text() for p in out.glob("*.json"))
    assert "Kingma" not in text and "def measure_optimizer" not in text  # reference and probe sources
    time.sleep(1.5)  # the background rewriter would have written its marker by now
    finished = timings["attack_background_rewriter"][1]
    assert not MARKER.exists() or MARKER.stat().st_mtime < finished
    leftover = subprocess.run(["pgrep", "-u", SANDBOX_USER], capture_output=True, text=True).stdout.split()
    assert leftover == []
    assert set(CGROUPS.glob("autograder-*")) <= timings["scratch_before"]  # every run's cgroup removed
    assert set(SCRATCH.glob("autograder-*")) <= timings["scratch_before"]  # no scratch folder left behind
