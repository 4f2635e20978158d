"""Every wrong, faulty and adversarial notebook of the corpus, graded for real through the sandbox.

For each: a schema-valid results.json, exactly the points it deserves (hand-derived below, not recorded from
a run), a run that ends within its time limit plus 15 s, and a clean machine afterwards.
"""

import contextlib
import importlib.util
import json
import multiprocessing
import os
import pwd
import socket
import threading
import time
from pathlib import Path

import jsonschema
import pytest

from autograder.results import SCHEMA
from autograder.config import from_environment
from autograder.limits import Limits
from autograder.supervisor import runusers
from tests.submissions import make_corpus
from tests.submissions.part1_attacks import NETWORK_PORT

CORPUS = Path(__file__).parent / "submissions" / "hw4_part1"
LIMITS = Limits(wall_seconds=150, cell_timeout=15, memory_mb=1200)  # 15 s: `import torch` on a busy box
MARKER = Path("/tmp/ag_attack_marker")
SCRATCH = Path(os.environ.get("TMPDIR", "/tmp"))
CGROUPS = Path("/sys/fs/cgroup/memory")

GROUPS = {"model": {"1.1", "1.2", "1.3"}, "GD": {f"2.{i}" for i in range(1, 5)},
          "SGD": {f"3.{i}" for i in range(1, 5)}, "AdaGrad": {f"4.{i}" for i in range(1, 7)},
          "Adam": {f"5.{i}" for i in range(1, 7)}}
ALL = set().union(*GROUPS.values())
GD, SGD, ADAGRAD, ADAM = GROUPS["GD"], GROUPS["SGD"], GROUPS["AdaGrad"], GROUPS["Adam"]
STUBS = ADAGRAD | ADAM  # the partial notebook most attacks are built on: model, loss, GD and SGD right (15)


NEW_STYLES = ("course_device_state", "course_num_examples", "course_state_float_tuple", "course_state_scalar_tensors",
              "course_state_dict", "course_state_one_tensor", "course_state_numpy", "course_b_shape_changes",
              "course_shared_helper", "course_autograd_everywhere", "course_slow_loops")
ISSUE_15 = NEW_STYLES + ("shared_helper_two_samples", "adagrad_reads_X_train", "adagrad_abs_not_square",
                         "adam_state_reset_each_step", "adagrad_init_error", "adam_no_bias_correction",
                         "course_colab_leftovers", "course_correct")


def exactly(tests: set) -> tuple[set, set]:
    return tests, tests


# submission -> (tests it must fail, tests it may fail): a wrong optimizer loses points on its own tests only.
# Written by hand from what each notebook holds (tests/submissions/part1_*.py), not recorded from a run.
EXPECTED_FAILURES = {
    # The course's notebook as students hand it in, in every style: full marks.
    **{name: exactly(set()) for name in ("course_correct", "course_sgd_numpy_rng", "course_style_variants",
                                         "course_autograd_gradients", "course_colab_leftovers",
                                         "course_permutation_sampling", "course_saved_by_jupyter",
                                         "course_correct_download")},
    # Issue 15's styles: the notebook's `device` and constants, state in any container (eager or lazy), a `b`
    # whose shape changes, a shared sampling helper, autograd, slow Python loops. Full marks.
    **{name: exactly(set()) for name in NEW_STYLES},
    # One mistake each: the steps that show it fail, and nothing outside that optimizer.
    # 5.1 judges the start (m, v, t at 0, t counting), not the update rule: the missing correction is charged once.
    "adam_no_bias_correction": ({"5.3", "5.4", "5.5"}, {"5.3", "5.4", "5.5", "5.6"}),
    "adam_eps_inside_sqrt": ({"5.3", "5.5"}, ADAM),  # visible only when epsilon is large
    # t at 0: step 1 divides by 0 and leaves NaN; the gradient at step 1 was right, later ones are at NaN: not 5.2's.
    "adam_t_not_incremented": ({"5.1", "5.3", "5.4", "5.5"}, ADAM - {"5.2"}),
    "adam_t_fixed_at_one": ({"5.1", "5.3", "5.4", "5.5"}, ADAM - {"5.2"}),
    "adagrad_accumulator_zero": ({"4.1", "4.3", "4.5"}, ADAGRAD),  # 0.1 matters for small gradients
    "adagrad_eps_inside_sqrt": ({"4.3", "4.5"}, ADAGRAD),
    "adagrad_no_sqrt": ({"4.3", "4.4", "4.5"}, ADAGRAD),
    "adagrad_b_not_updated": ({"4.3", "4.4", "4.5"}, ADAGRAD),
    "gd_missing_factor_2": exactly(GD),
    "loss_sum_reduction": ({"1.2"}, {"1.2"}),  # 484 is the loss of one term: sum and mean agree there
    "sgd_full_batch": ({"3.2", "3.3", "3.4"}, SGD),
    "sgd_two_samples": ({"3.2", "3.3", "3.4"}, SGD),
    # Issue 15: a slip costs its own part. The two-sample helper is SGD's whole sampling, AdaGrad's and Adam's
    # sampling share (4.2, 5.2): their update rules are replayed on the gradients they returned.
    "shared_helper_two_samples": exactly(SGD | {"4.2", "5.2"}),
    "adagrad_reads_X_train": exactly({"4.2"}),  # its gradients are the course data's, at one sample each
    "adagrad_abs_not_square": ({"4.3", "4.4", "4.5"}, {"4.3", "4.4", "4.5", "4.6"}),  # start and gradient right
    "adam_state_reset_each_step": ({"5.3", "5.4", "5.5"}, {"5.3", "5.4", "5.5", "5.6"}),  # step 1 right: 5.1 too
    "adagrad_init_error": exactly(ADAGRAD),
    # Broken notebooks: graded by what they define.
    "fault_not_json": exactly(ALL),
    "fault_part2_notebook": exactly(ALL),
    "fault_no_metadata": exactly(set()),
    "fault_syntax_error_adam": exactly(ADAM),
    "fault_missing_adagrad": exactly(ADAGRAD),
    "fault_deleted_check_cells": exactly(set()),
    "fault_duplicated_check_cell": exactly(set()),
    "fault_cells_reversed": exactly(set()),
    "partial_gd_sgd": exactly(STUBS),
    "partial_adagrad_stub": exactly(ADAGRAD),
    # Attacks on the correct notebook: contained, and the code is graded as written.
    **{name: exactly(set()) for name in ("attack_os_exit", "attack_sys_exit", "attack_keyboard_interrupt",
                                         "attack_infinite_loop", "attack_uninterruptible_loop", "attack_print_50mb")},
    "attack_systemexit_in_adam": ({"5.3", "5.4", "5.5"}, ADAM),
    "attack_replace_torch_adam": exactly(set()),  # only the given (1c) cell is affected, and it is not graded
    # torch.optim cannot run where the classes are measured, however it is reached: the delegating optimizers
    # earn nothing, the honest ones everything.
    "attack_wrap_torch_optim": ({"5.3", "5.4", "5.5"}, ADAM),
    "attack_wrap_torch_optim_obfuscated": ({"2.2", "2.3"}, GD | SGD),
    "attack_wrap_torch_optim_alias": ({"2.2", "2.3"}, GD | SGD),
    **{f"attack_optim_{route}": exactly(STUBS) for route in (
        "direct", "thread", "settrace_none", "file_renamed", "helper_cell", "exec_source", "reload", "gc_objects",
        "foreach")},
    "attack_optim_functional": (STUBS - {"4.2", "5.2"}, STUBS),  # its calculate_gradient is honest
    "attack_optim_fused_kernels": exactly(SGD | STUBS),
    # Forged observations earn nothing above the honest score of the notebook they are added to.
    "attack_forge_display": ({"5.3", "5.4", "5.5"}, ADAM),  # on Adam without bias correction
    **{f"attack_forge_{how}": exactly(STUBS) for how in ("json_dumps", "input_transformer", "class_body",
                                                           "fd_write")},
    # Reading what is not theirs: AdaGrad and Adam would become the reference's if it were readable.
    **{f"attack_{what}": exactly(STUBS) for what in ("read_checkout", "git_show", "dist_zip", "proc_scan",
                                                       "leftovers_write", "leftovers_read", "kill_neighbours",
                                                       "deep_tree", "fork_bomb", "memory_hog", "read_reference",
                                                       "write_results", "background_rewriter",
                                                       "monkeypatch_isclose", "network")},
    # Issue 19 (tests/submissions/part1_boundary.py): the kernel's policy, the read-only shared root, a fresh uid.
    **{f"attack_boundary_{how}": exactly(STUBS) for how in ("guard_rewrite", "dir_fd", "realpath",
                                                              "fresh_interpreter", "shared_root", "survivor",
                                                              "forge_staff_log", "classmates")},
    "attack_symlink_solution": exactly(STUBS),  # the link to the solution is not followed; the partial one is graded
    "attack_status_injection": exactly(ADAGRAD),
    "=SUM(1,2)": exactly(STUBS),
}


def _run_processes() -> list[str]:
    """Processes of a sandbox user still alive, other than a warm start (bubblewrap and its zygote)."""
    found, user = [], from_environment().sandbox_user
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit():
                continue
            uid = proc.stat().st_uid  # a slot user, or a run's own uid in the fallback (no account)
            if uid < runusers.FIRST_UID and not pwd.getpwuid(uid).pw_name.startswith(user):
                continue
            parent = (proc / "stat").read_text().rsplit(")", 1)[1].split()[1]
            if "bwrap" not in ((proc / "comm").read_text().strip(), Path(f"/proc/{parent}/comm").read_text().strip()):
                found.append(f"{proc.name}: {(proc / 'cmdline').read_bytes()[:80]!r}")
        except (OSError, KeyError, IndexError):
            continue
    return found


def _path(name: str) -> Path:
    folder = CORPUS / name
    return folder if folder.is_dir() else CORPUS / f"{name}.ipynb"


def _grade_one(name: str, out: str) -> tuple[float, float]:
    from autograder.grade import grade
    started = time.monotonic()
    grade(_path(name), Path(out) / f"{name}.json", "hw4_part1", log=lambda m: None, limits=LIMITS,
          config=from_environment())
    return time.monotonic() - started, time.time()


@contextlib.contextmanager
def _listener(port: int):
    """A TCP listener on the host's loopback that records every connection (attack_network tries it)."""
    reached: list[str] = []
    server = socket.create_server(("127.0.0.1", port))  # fails loudly when the port is taken
    server.settimeout(0.5)

    def accept():
        while server.fileno() != -1:
            try:
                connection, peer = server.accept()
            except (TimeoutError, OSError):
                continue
            reached.append(str(peer))
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield reached
    finally:
        server.close()
        thread.join(timeout=5)


def needs(*names: str):
    """The corpus entries a (non-parametrized) test reads: the fixture grades only what the selected tests need."""
    def mark(function):
        function.needs = names
        return function
    return mark


def _selected(request) -> list[str]:
    wanted: set[str] = set()
    for item in request.session.items:
        if getattr(item, "module", None) is not request.module or "graded" not in getattr(item, "fixturenames", ()):
            continue
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "name" in callspec.params:
            wanted.add(callspec.params["name"])
        else:
            wanted |= set(getattr(item.function, "needs", EXPECTED_FAILURES))
    return [name for name in EXPECTED_FAILURES if name in wanted]


@pytest.fixture(scope="module")
def graded(request, tmp_path_factory):
    """Grade the corpus once (what the selected tests need: `-k course_num` grades one notebook), two submissions
    at a time, each in a fresh process."""
    out = tmp_path_factory.mktemp("corpus")
    MARKER.unlink(missing_ok=True)
    before = set(SCRATCH.glob("autograder-*")) | set(CGROUPS.glob("autograder-*"))  # earlier runs' leftovers
    names = _selected(request)
    with _listener(NETWORK_PORT) as reached, multiprocessing.get_context("spawn").Pool(2) as pool:
        timings = dict(zip(names, pool.starmap(_grade_one, [(n, str(out)) for n in names])))
    timings["scratch_before"] = before
    timings["network_reached"] = reached
    return out, timings


def test_corpus_matches_its_generator():
    assert make_corpus.main(["--check"]) == 0
    assert {p.stem if p.suffix == ".ipynb" else p.name for p in CORPUS.iterdir() if p.suffix == ".ipynb" or p.is_dir()} \
        == set(EXPECTED_FAILURES)


@pytest.mark.integration
@pytest.mark.parametrize("name", EXPECTED_FAILURES)
def test_each_submission_gets_exactly_what_it_deserves(graded, name):
    out, timings = graded
    results = json.loads((out / f"{name}.json").read_text())
    jsonschema.validate(results, SCHEMA)
    failed = {t["number"] for t in results["tests"] if t["status"] == "failed" and t["max_score"] > 0}
    must, may = EXPECTED_FAILURES[name]
    assert must <= failed <= may, (failed, results["output"])
    graded_tests = [t for t in results["tests"] if t["max_score"] > 0]
    assert results["score"] == sum(t["max_score"] for t in graded_tests if t["number"] not in failed)
    assert all(t["score"] == 0 for t in graded_tests if t["number"] in failed)
    assert timings[name][0] <= LIMITS.wall_seconds + 15


@pytest.mark.integration
def test_feedback_says_what_went_wrong(graded):
    out, _ = graded
    results = {name: json.loads((out / f"{name}.json").read_text()) for name in EXPECTED_FAILURES}

    def output(name, number):
        """What the student reads about `number`'s optimizer: each fact is said once, in the first test of that
        optimizer whose check shows it; later tests point back to it (plugin._said_once)."""
        group = number.split(".")[0]
        return "\n\n".join(t["output"] for t in results[name]["tests"] if t.get("number", "").split(".")[0] == group)

    assert "not JSON" in results["fault_not_json"]["output"]
    assert "`Adam` is not defined" in output("fault_syntax_error_adam", "5.4")
    assert "torch.optim is disabled" in output("attack_optim_direct", "4.4")
    assert "without bias correction" in output("adam_no_bias_correction", "5.4")
    assert "inside the square root" in output("adagrad_eps_inside_sqrt", "4.5")
    assert "starts at 0.1" in output("adagrad_accumulator_zero", "4.1")
    assert "factor 2" in output("gd_missing_factor_2", "2.3")
    assert "whole training set" in output("sgd_full_batch", "3.3")
    assert "sum" in output("loss_sum_reduction", "1.2").lower()
    assert "`b` is never updated" in output("adagrad_b_not_updated", "4.4")
    assert "square root is missing" in output("adagrad_no_sqrt", "4.4")
    assert "ε inside the square root" in output("adam_eps_inside_sqrt", "5.5")
    assert "`t` is not counted" in output("adam_t_fixed_at_one", "5.4")
    assert "accumulator starts at 0" in output("adagrad_accumulator_zero", "4.5")
    assert results["attack_status_injection"]["extra_data"]["status"] == "ok"
    assert "no longer numbers" in output("adam_t_not_incremented", "5.4")  # t = 0: 1 - β^0 = 0, a division by 0
    assert "Links are not followed" in results["attack_symlink_solution"]["output"]


@pytest.mark.integration
def test_nothing_leaks_or_outlives_the_run(graded):
    out, timings = graded
    text = "".join(p.read_text() for p in out.glob("*.json"))
    assert "def make_data(" not in text and "def measure_optimizer" not in text  # reference and probe sources
    assert "AG-LEFTOVER-MARKER" not in text  # what one run left never reaches another's feedback
    time.sleep(1.5)  # the background rewriter would have written its marker by now
    finished = timings["attack_background_rewriter"][1]
    assert not MARKER.exists() or MARKER.stat().st_mtime < finished
    assert _run_processes() == []
    assert timings["network_reached"] == []  # attack_network's connection to the host never arrived
    assert set(CGROUPS.glob("autograder-*")) <= timings["scratch_before"]  # every run's cgroup removed
    assert set(SCRATCH.glob("autograder-*")) <= timings["scratch_before"]  # no scratch folder left behind


@pytest.mark.slow
@pytest.mark.integration
@needs(*ISSUE_15)
def test_feedback_tells_the_truth(graded):
    """Issue 15: a hint only where its evidence is, the method that raised by name, each fact said once, the
    notebook's own checks apart from errors, no grader internals."""
    out, _ = graded
    results = {name: json.loads((out / f"{name}.json").read_text()) for name in ISSUE_15}

    def tests(name, group):
        return {t["number"]: t["output"] for t in results[name]["tests"] if t.get("number") and t["max_score"] > 0
                and t["number"].startswith(group)}

    helper = tests("shared_helper_two_samples", "")
    assert "two training samples" in helper["3.1"] and "See also test 3.1" in helper["4.2"] + helper["5.2"]
    assert "`X_train`" in tests("adagrad_reads_X_train", "4.")["4.2"]
    init = tests("adagrad_init_error", "4.")
    assert "`AdaGrad(...)` (its `__init__`) raised" in init["4.1"] and "HISTORY_LENGTH" in init["4.1"]
    assert all("calculate_gradient` raised" not in text for text in init.values())
    assert sum("HISTORY_LENGTH" in text for text in init.values()) == 1  # said once, then pointed to
    for name, group in (("adagrad_abs_not_square", "4."), ("adam_state_reset_each_step", "5."),
                        ("adam_no_bias_correction", "5.")):
        assert not any("one training sample" in text for text in tests(name, group).values()), name
    assert "`t` is not counted" not in "".join(tests("adam_no_bias_correction", "5.").values())
    for name in NEW_STYLES + ("course_correct",):
        summary = results[name]["output"]
        assert "without errors" in summary and "ctypes" not in summary and "grader" not in summary.split("\n")[0]
        assert results[name]["extra_data"]["needs_review"] == []
    # The Colab leftovers import matplotlib, which the image leaves out on purpose: said as such, not an error.
    leftovers = results["course_colab_leftovers"]["output"]
    assert "ModuleNotFoundError" not in leftovers
    if importlib.util.find_spec("matplotlib") is None:  # as on the shipped image (the dev environment may have it)
        assert "Not installed on the grader, on purpose: `matplotlib`" in leftovers
