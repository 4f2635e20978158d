"""Part 2 spot checks, graded for real through the sandbox.

The solution notebook earns every point and the template none; each honest-but-wrong LoRA variant fails exactly
the checks that observe its mistake (hand-derived below, not recorded from a run); notebooks that would download,
hang or exit if their cells ran still get a valid report. Fast unit tests pin the rubric and the cell finder.
"""

import functools
import json
import math
import multiprocessing
import time
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import nbformat
import pytest
import torch
from torch import nn

from autograder.assignment import Seeds, detect_assignment
from autograder.assignments.hw4_part2 import ASSIGNMENT, last_layer_cell, make_calls, probes, reference
from autograder.notebook import load_notebook
from autograder.plugin import CaseResult, Submission, run_cases
from autograder.results import SCHEMA
from autograder.sandbox import Limits
from tests.submissions.hw4_part2 import make_corpus

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).parent / "submissions" / "hw4_part2"
NOTEBOOKS = {"solution": ROOT / "solution/notebooks/hw4_part2.ipynb",
             "template": ROOT / "student_template/hw4_part2.ipynb",
             **{path.stem: path for path in sorted(CORPUS.glob("*.ipynb"))}}
# Production memory (it must fit Gradescope's 768 MB box); more time, for a machine busy with other tests.
LIMITS = Limits(wall_seconds=240, cell_timeout=90, memory_mb=ASSIGNMENT.limits.memory_mb)

RUBRIC = {"1.1": 1, "1.2": 1.5, "1.3": 1, "2.1": 1, "2.2": 1, "2.3": 1.5, "2.4": 1, "2.5": 1, "3.1": 1}
ALL = set(RUBRIC)

# submission -> the checks it must fail; it must pass every other one.
EXPECTED_FAILURES = {
    "solution": set(),
    "template": ALL,
    "student_correct": set(),  # A drawn as randn / sqrt(r), as the course notebook does: accepted
    "uses_notebook_globals": set(),  # `device` and LORA_* defaults from the setup cell, which does not run
    # Honest mistakes.
    "b_random_init": {"1.1", "2.2"},  # the scaling, dropout and step checks set B themselves
    "scale_r_over_alpha": {"1.2"},
    "scale_alpha_only": {"1.2"},  # the dropout check compares train with eval, whatever the scale
    "lora_on_key": {"2.1", "2.3"},  # key and value have the same shape: the counts agree
    "base_not_frozen": {"2.3", "2.4", "2.5"},
    "classifier_frozen": {"2.3", "2.4"},
    "dropout_on_base_path": {"1.3"},
    "no_dropout_on_lora": {"1.3"},
    "ab_swapped_shapes": {"1.1", "1.2"},  # query and value are square: the model-level checks cannot see it
    "lora_added_twice": {"2.1", "2.3", "2.4"},  # both B are 0: the initial logits still agree
    "last_layer_encoder_only": {"3.1"},
    # Attacks: nothing but imports and definitions runs, so downloads and loops never start.
    "attack_download": set(),
    "attack_while_true": set(),
    # The kernel dies while defining: that definition is left out, the rest is graded in a fresh kernel.
    "attack_os_exit_in_definition": set(),
}

# Graded through the sandbox and a kernel (about 15 s each on an idle box): the two course notebooks, the attacks,
# and two notebooks that lean on the kernel's globals (a nested wrap of the notebook's MyLoraLayer; definitions
# that read setup-cell constants). Every variant is also judged in-process, without kernels, below.
SANDBOXED = ("solution", "template", "attack_download", "attack_while_true", "attack_os_exit_in_definition",
             "lora_added_twice", "uses_notebook_globals")


def _grade_one(name: str, out: str) -> float:
    from autograder.grade import grade
    started = time.monotonic()
    grade(NOTEBOOKS[name], Path(out) / f"{name}.json", "hw4_part2", log=lambda m: None, limits=LIMITS)
    return time.monotonic() - started


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade each sandboxed notebook once, two at a time, each pool process reusing its imports."""
    out = tmp_path_factory.mktemp("part2")
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        seconds = pool.starmap(_grade_one, [(name, str(out)) for name in SANDBOXED])
    results = {name: json.loads((out / f"{name}.json").read_text()) for name in SANDBOXED}
    return results, dict(zip(SANDBOXED, seconds))


def test_corpus_matches_its_generator():
    assert make_corpus.main(["--check"]) == 0
    assert set(NOTEBOOKS) == set(EXPECTED_FAILURES)


def test_rubric_is_ten_points():
    from autograder.assignments.hw4_part2 import cases
    found = {f.__number__: f.__weight__ for f in vars(cases).values() if hasattr(f, "__number__")}
    assert found == RUBRIC
    assert sum(RUBRIC.values()) == 10


def test_part2_notebooks_are_detected_as_part2():
    for path in (NOTEBOOKS["solution"], NOTEBOOKS["template"]):
        assert detect_assignment(load_notebook(path))[0].name == "hw4_part2"
    assert detect_assignment(load_notebook(ROOT / "solution/notebooks/hw4_part1.ipynb"))[0].name == "hw4_part1"


def _notebook(tmp_path, sources: list[str], ids: bool = True) -> Path:
    cells = [nbformat.v4.new_code_cell(s, id=f"c{i}") for i, s in enumerate(sources)]
    data = nbformat.v4.new_notebook(cells=cells)
    if not ids:
        data = {"cells": [{"cell_type": "code", "source": s} for s in sources]}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(data))
    return path


def test_last_layer_cell_is_found_by_content_when_ids_are_gone(tmp_path):
    definition = ("def get_lora_model(model, config):\n    for p in model.classifier.parameters():\n"
                  "        p.requires_grad = True\n    return model")
    check = "assert {n for n, p in model.named_parameters() if p.requires_grad} == {'classifier.weight'}"
    answer = "model = load_model()\nfor p in model.parameters():\n    p.requires_grad_(False)\nmodel.classifier.requires_grad_(True)"
    path = _notebook(tmp_path, [definition, check, answer], ids=False)
    cell = last_layer_cell(load_notebook(path))
    assert cell is not None and cell.source == answer
    assert last_layer_cell(load_notebook(_notebook(tmp_path, [definition, check]))) is None


def test_the_course_cell_id_wins_and_its_source_travels_in_the_call(tmp_path):
    assert last_layer_cell(load_notebook(NOTEBOOKS["template"])).id == "last-layer"  # the stub: graded as 0
    moved = nbformat.read(NOTEBOOKS["student_correct"], as_version=4)
    moved.cells = [c for c in moved.cells if c.id != "last-layer"] + [c for c in moved.cells if c.id == "last-layer"]
    moved.cells[-1].id = "answer"
    moved.cells[-2].source = "model = load_model()"  # a cell that kept the course's id but not the answer
    moved.cells[-2].id = "last-layer"
    nbformat.write(moved, tmp_path / "moved.ipynb")
    assert last_layer_cell(load_notebook(tmp_path / "moved.ipynb")).id == "answer"
    notebook = load_notebook(NOTEBOOKS["last_layer_encoder_only"])
    assert last_layer_cell(notebook).id == "last-layer"
    calls = {c.name: c for c in make_calls(notebook, Seeds("secret", "digest"))}
    assert "model.bert.encoder.parameters()" in calls["last_layer"].args["source"]
    assert list(calls)[-1] == "last_layer"  # a hanging cell must cost only its own check
    assert json.dumps([c.args for c in calls.values()])  # arguments are plain JSON
    assert calls["setup"].args["constants"]["LORA_DROPOUT"] == 0.4 and "model" not in calls["setup"].args["constants"]


def _in_process_reply(notebook, calls) -> dict:
    """What the kernel would reply, measured here: the notebook's LoRA cells run in this process, no sandbox."""
    namespace = {"torch": torch, "nn": nn, "math": math, "dataclass": dataclass}
    setup = next(call for call in calls if call.entry == "probe_setup")
    probes.p2_defaults(namespace, setup.args["constants"], setup.args["device"])
    for cell in notebook.cells:
        if cell.id in ("lora-config", "lora-layer", "get-lora-model"):
            exec(compile(cell.source, cell.id, "exec"), namespace)
    Layer, Config, get = (namespace[n] for n in ("MyLoraLayer", "MyLoraConfig", "get_lora_model"))
    measures = {"probe_setup": lambda a: [],
                "probe_layer_init": lambda a: probes.measure_layer_init(Layer, a),
                "probe_scaling": lambda a: probes.measure_scaling(Layer, a),
                "probe_dropout": lambda a: probes.measure_dropout(Layer, a),
                "probe_model": lambda a: probes.measure_model(Config, get, a),
                "probe_step": lambda a: probes.measure_step(Config, get, a),
                "probe_last_layer": lambda a: probes.measure_last_layer(
                    lambda model: probes.p2_run_cell(a["source"], model), a)}
    replies = {}
    for call in calls:
        try:
            replies[call.name] = {"ok": True, "value": json.loads(json.dumps(measures[call.entry](call.args)))}
        except Exception as error:
            replies[call.name] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    return {"cells": [], "probes": replies, "events": []}


@functools.cache
def judged_in_process(name: str) -> dict[str, CaseResult]:
    """Case number -> result: the same measurements and cases as a grading, without kernel or sandbox."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the sandbox: on a busy 2-core box torch's default threads cost 10x
    try:
        notebook = load_notebook(NOTEBOOKS[name])
        seeds = Seeds("secret", name)
        calls = make_calls(notebook, seeds)
        submission = Submission(notebook, _in_process_reply(notebook, calls), "", {c.name: c for c in calls},
                                seeds, reference.expected)
        return {case.number: case for case in run_cases(ASSIGNMENT.cases_path, submission)[0]}
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("name", [n for n in EXPECTED_FAILURES if not n.startswith("attack_")])
def test_checks_judge_each_variant_in_process(name):
    cases = judged_in_process(name)
    failed = {number for number, case in cases.items() if case.status == "failed"}
    assert failed == EXPECTED_FAILURES[name], {n: cases[n].output[:300] for n in failed}


def test_feedback_names_the_mistake():
    def output(name, number):
        return judged_in_process(name)[number].output

    assert "r / lora_alpha" in output("scale_r_over_alpha", "1.2")
    assert "lora_alpha alone" in output("scale_alpha_only", "1.2")
    assert "exactly 0" in output("b_random_init", "1.1") and "largest difference" in output("b_random_init", "2.2")
    assert "should be exactly `base_layer(x)`" in output("dropout_on_base_path", "1.3")
    assert "dropout is missing" in output("no_dropout_on_lora", "1.3")
    assert "key" in output("lora_on_key", "2.1") and "value" in output("lora_on_key", "2.1")
    assert "| 16 | 8,517 / 152,069 |" in output("classifier_frozen", "2.4")
    assert "keep the new classification head" in output("classifier_frozen", "2.3")
    assert "freeze every pretrained parameter" in output("base_not_frozen", "2.3")
    assert "bert.embeddings" in output("last_layer_encoder_only", "3.1")
    assert "could not set lora_A.weight" in output("ab_swapped_shapes", "1.2")


@pytest.mark.slow
@pytest.mark.parametrize("name", SANDBOXED)
def test_each_submission_fails_exactly_the_right_checks(graded, name):
    results, seconds = graded
    report = results[name]
    jsonschema.validate(report, SCHEMA)
    tests = {t["number"]: t for t in report["tests"] if t["max_score"] > 0}
    assert {n: t["max_score"] for n, t in tests.items()} == RUBRIC
    failed = {n for n, t in tests.items() if t["status"] == "failed"}
    assert failed == EXPECTED_FAILURES[name], {n: tests[n]["output"][:300] for n in failed ^ EXPECTED_FAILURES[name]}
    assert report["score"] == sum(w for n, w in RUBRIC.items() if n not in failed)
    assert all(tests[n]["score"] == 0 and tests[n]["output"] for n in failed)
    assert seconds[name] <= LIMITS.wall_seconds + 60


@pytest.mark.slow
def test_sandboxed_feedback_teaches_without_showing_the_reference(graded):
    results, _ = graded

    def output(name, number):
        return next(t["output"] for t in results[name]["tests"] if t["number"] == number)

    assert "wrapped twice" in output("lora_added_twice", "2.1")
    assert "NotImplementedError" in output("template", "3.1") and "cell 19" in output("template", "2.2")
    assert "kernel stopped" in results["attack_os_exit_in_definition"]["output"]
    assert "no downloads, no training" in results["attack_download"]["output"]
    text = json.dumps({n: r for n, r in results.items() if n != "solution"})
    assert "def measure_" not in text and "_check_hparams" not in text and "kaiming_uniform_" not in text
