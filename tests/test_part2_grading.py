"""Part 2 spot checks: the config-cell reader, the measurements, and whole gradings.

The corpus is in the course's shape (nbformat 4.0, no cell ids, Colab metadata). The correct notebooks earn every
point and the templates none; each honest-but-wrong variant fails exactly the checks that observe its mistake,
with the likely mistake named (both hand-derived below, not recorded from a run). Most gradings here run the
measurement protocol in this process (tests/submissions/hw4_part2/inprocess.py); the slow ones use the sandbox.
"""

import functools
import json
import multiprocessing
import re
import time
from pathlib import Path

import jsonschema
import pytest
import torch
import yaml

from autograder.assignment import Seeds, detect_assignment
from autograder.assignments.hw4_part2 import ASSIGNMENT, SMALL_BERT, cases, last_layer_cell, make_calls, probes
from autograder.assignments.hw4_part2.config_cell import COURSE_CONFIG, LoraSettings, read_config
from autograder.limits import Limits
from autograder.notebook import load_notebook
from autograder.results import SCHEMA
from solution.lora import MyLoraConfig, MyLoraLayer, get_lora_model
from tests.submissions.hw4_part2.inprocess import grade_in_process
from tests.submissions.hw4_part2 import make_corpus

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).parent / "submissions" / "hw4_part2"
NOTEBOOKS = {"solution": ROOT / "solution/notebooks/hw4_part2.ipynb",
             "template": ROOT / "student_template/hw4_part2.ipynb",
             **{path.stem: path for path in sorted(CORPUS.glob("*.ipynb"))}}
PART1 = ROOT / "solution/notebooks/hw4_part1.ipynb"
# Production memory (it must fit Gradescope's 768 MB box); more time, for a machine busy with other tests (CI
# grades two of these at a time beside the box tier).
LIMITS = Limits(wall_seconds=400, cell_timeout=90, memory_mb=ASSIGNMENT.limits.memory_mb)

RUBRIC = {"1.1": 1, "1.2": 1.5, "1.3": 1, "2.1": 0.5, "2.2": 1, "2.3": 1.5, "2.4": 0.5, "2.5": 1, "3.1": 1, "3.2": 1}
ALL = set(RUBRIC)

# submission -> the checks it must fail; it must pass every other one.
EXPECTED_FAILURES = {
    "solution": set(),
    "template": ALL,
    "student_correct": set(),  # A drawn as randn / sqrt(r), as the course notebook does: accepted
    "course_template": ALL,  # the course's `...` placeholders, `pass`, `target_modules=[...]`
    "uses_notebook_globals": set(),  # `device` and a LORA_DROPOUT default from cells that do not run
    # Honest mistakes.
    "b_random_init": {"1.1", "2.2"},  # the scaling, dropout and step checks set B themselves
    "scale_r_over_alpha": {"1.2"},
    "scale_alpha_only": {"1.2"},  # the dropout check compares train with eval, whatever the scale
    "lora_on_key": {"3.1"},  # the targets are the config's: get_lora_model itself is right
    "lora_only_query": {"3.1"},
    "config_not_literal": {"3.1"},  # unreadable: scored 0, the other checks use the course's config
    "base_not_frozen": {"2.3", "2.4", "2.5"},
    "classifier_frozen": {"2.3", "2.4"},
    "dropout_on_base_path": {"1.3"},
    "no_dropout_on_lora": {"1.3"},
    "ab_swapped_shapes": {"1.1", "1.2"},  # query and value are square: the model-level checks cannot see it
    # The given loop pasted twice wraps a MyLoraLayer, which has no `in_features`: get_lora_model fails.
    "lora_added_twice": {"2.1", "2.2", "2.3", "2.4", "2.5"},
    "last_layer_encoder_only": {"3.2"},
    # Attacks: nothing but imports and definitions runs, so downloads and loops never start.
    "attack_download": set(),
    "attack_while_true": set(),
    # The process dies while defining: that definition is left out, the rest is graded without it.
    "attack_os_exit_in_definition": set(),
}
# (submission, check) -> words its feedback must contain: the likely mistake by name.
HINTS = {
    ("scale_r_over_alpha", "1.2"): ["r / lora_alpha"],
    ("scale_alpha_only", "1.2"): ["lora_alpha alone"],
    ("b_random_init", "1.1"): ["exactly 0", "random initialisation"],
    ("b_random_init", "2.2"): ["largest difference", "B starts at 0"],
    ("ab_swapped_shapes", "1.1"): ["A and B are swapped"],
    ("ab_swapped_shapes", "1.2"): ["could not set lora_A.weight"],
    ("dropout_on_base_path", "1.3"): ["dropout on the base path"],
    ("no_dropout_on_lora", "1.3"): ["dropout is missing"],
    ("base_not_frozen", "2.3"): ["freeze every pretrained parameter"],
    ("base_not_frozen", "2.5"): ["pretrained parameters changed"],
    ("classifier_frozen", "2.3"): ["keep the new classification head"],
    ("classifier_frozen", "2.4"): ["| 16 | 8,517 / 152,069 |"],
    ("lora_added_twice", "2.1"): ["LoRA added twice"],
    ("lora_added_twice", "2.5"): ["LoRA added twice"],
    ("lora_on_key", "3.1"): ["LoRA on `key`", "`query` and `value`", "['key', 'value']"],
    ("lora_only_query", "3.1"): ["list both `query` and `value`"],
    ("config_not_literal", "3.1"): ["is not a literal", "course's configuration"],
    ("last_layer_encoder_only", "3.2"): ["bert.embeddings", "only part of the model was frozen"],
    ("course_template", "1.1"): ["`...` placeholder"],
    ("course_template", "3.1"): ["still the placeholder"],
}
IN_PROCESS = [n for n in EXPECTED_FAILURES if not n.startswith("attack_")]


@functools.cache
def judged(name: str) -> dict:
    return grade_in_process(load_notebook(NOTEBOOKS[name]), name)


def test_corpus_matches_its_generator():
    assert make_corpus.main(["--check"]) == 0
    assert set(NOTEBOOKS) == set(EXPECTED_FAILURES)


def test_corpus_has_the_course_shape():
    data = json.loads(NOTEBOOKS["student_correct"].read_text())
    assert (data["nbformat"], data["nbformat_minor"]) == (4, 0) and "colab" in data["metadata"]
    assert all("id" not in cell and "id" in cell["metadata"] for cell in data["cells"])
    code = [c["source"] for c in data["cells"] if c["cell_type"] == "code"]
    assert code[0].startswith("!pip install transformers datasets peft accelerate scikit-learn")
    assert any("unittest.main" in c for c in code)
    assert any("lora_config = MyLoraConfig(" in c and "get_lora_model(model, lora_config)" in c for c in code)


def test_the_rubric_alone_weighs_the_cases_and_makes_ten_points():
    numbered = [f for f in vars(cases).values() if hasattr(f, "__number__")]
    assert not [f.__name__ for f in numbered if hasattr(f, "__weight__") or hasattr(f, "__visibility__")]
    rubric = yaml.safe_load((ASSIGNMENT.folder / "rubric.yml").read_text())["tests"]
    assert sorted(f.__number__ for f in numbered) == sorted(RUBRIC) == sorted(t["number"] for t in rubric)
    assert {t["number"]: t["weight"] for t in rubric} == RUBRIC
    assert sum(RUBRIC.values()) == 10 and {t["visibility"] for t in rubric} == {"visible"}


def test_part2_notebooks_are_detected_as_part2():
    for name in ("solution", "template", "student_correct", "course_template"):
        assert detect_assignment(load_notebook(NOTEBOOKS[name]))[0].name == "hw4_part2"


# The config cell, read without running it.

def _cell_notebook(tmp_path, *sources: str) -> Path:
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 0, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": s} for s in sources]}))
    return path


def test_config_is_read_from_the_course_cell():
    reading = read_config(load_notebook(NOTEBOOKS["student_correct"]))
    assert reading.settings == LoraSettings(16, ("query", "value"), 32, 0.4) and reading.problem is None
    assert "get_lora_model(model, lora_config)" in reading.cell.source
    key = read_config(load_notebook(NOTEBOOKS["lora_on_key"]))
    assert key.settings.target_modules == ("key", "value")


def test_config_positional_constants_and_inline_forms(tmp_path):
    path = _cell_notebook(tmp_path, "R = 8\nDROP = 0.1",
                          "lora_config = MyLoraConfig(R, ['query', 'value'], 16, lora_dropout=DROP)\n"
                          "model = get_lora_model(model, lora_config)")
    assert read_config(load_notebook(path)).settings == LoraSettings(8, ("query", "value"), 16, 0.1)
    inline = _cell_notebook(tmp_path, "model = get_lora_model(load_model(), MyLoraConfig(4, 'value', 8, 0.0))")
    assert read_config(load_notebook(inline)).settings == LoraSettings(4, ("value",), 8, 0.0)


def test_the_cell_passed_to_get_lora_model_wins(tmp_path):
    path = _cell_notebook(tmp_path, "scratch = MyLoraConfig(1, ['key'], 1, 0.0)",
                          "lora_config = MyLoraConfig(r=16, target_modules=['query', 'value'], lora_alpha=32, "
                          "lora_dropout=0.4)\nmodel = get_lora_model(model, lora_config)",
                          "lora_config = MyLoraConfig(r=1, target_modules=['query'], lora_alpha=32, lora_dropout=0.4)"
                          "\nmodel = get_lora_model(model, lora_config)")
    assert read_config(load_notebook(path)).settings.target_modules == ("query", "value")


@pytest.mark.parametrize("call, words", [
    ("MyLoraConfig(r=16, target_modules=[...], lora_alpha=32, lora_dropout=0.4)", "`target_modules` is still the placeholder"),
    ("MyLoraConfig(r=16, target_modules=TARGETS, lora_alpha=32, lora_dropout=0.4)", "`TARGETS` is not a literal"),
    ("MyLoraConfig(r=16, target_modules=['query'], lora_alpha=32)", "does not set `lora_dropout`"),
    ("MyLoraConfig(16, ['query'], 32, 0.4, rank=2)", "has no argument `rank`"),
    ("MyLoraConfig(r=0, target_modules=['query'], lora_alpha=32, lora_dropout=0.4)", "positive integer"),
    ("MyLoraConfig(r=16, target_modules=[1], lora_alpha=32, lora_dropout=0.4)", "list of module names"),
])
def test_an_unreadable_config_says_why(tmp_path, call, words):
    reading = read_config(load_notebook(_cell_notebook(tmp_path, f"lora_config = {call}\n"
                                                                   "model = get_lora_model(model, lora_config)")))
    assert reading.settings is None and words in reading.problem and reading.effective == COURSE_CONFIG


def test_no_config_cell(tmp_path):
    reading = read_config(load_notebook(_cell_notebook(tmp_path, "x = 1")))
    assert reading.settings is None and "No config cell was found" in reading.problem


def test_the_written_out_bert_base_module_names_are_the_ones_transformers_builds():
    """The target check's module names come without torch or transformers in the grader: they must be exactly
    the installed transformers' bert-base classifier (built here on the meta device)."""
    from transformers import BertConfig, BertForSequenceClassification
    from autograder.assignments.hw4_part2.config_cell import bert_base_module_names, matched_modules
    with torch.device("meta"):
        model = BertForSequenceClassification(BertConfig(num_labels=5))
    assert bert_base_module_names() == [name for name, _ in model.named_modules() if name]
    assert matched_modules(("query",)) == [f"bert.encoder.layer.{i}.attention.self.query" for i in range(12)]


def test_last_layer_cell_is_found_by_content():
    notebook = load_notebook(NOTEBOOKS["student_correct"])
    cell = last_layer_cell(notebook)
    assert "model.classifier.parameters()" in cell.source and "def " not in cell.source
    unanswered = last_layer_cell(load_notebook(NOTEBOOKS["course_template"]))
    assert unanswered.source.startswith("# TODO: make only the classifier trainable")
    calls = {c.name: c for c in make_calls(notebook, Seeds("secret", "digest"))}
    assert "model.classifier.parameters()" in calls["last_layer"].args["source"]
    assert list(calls)[-1] == "last_layer"  # a hanging cell must cost only its own check
    assert calls["model"].args["student"] == COURSE_CONFIG.to_json() and json.dumps([c.args for c in calls.values()])


def test_the_fresh_model_check_uses_the_students_configuration():
    calls = {c.name: c for c in make_calls(load_notebook(NOTEBOOKS["lora_on_key"]), Seeds("s", "d"))}
    assert calls["model"].args["student"]["target_modules"] == ["key", "value"]
    assert calls["model"].args["targets"] == ["query", "value"] == calls["step"].args["targets"]


# The measurements, on the reference directly.

MODEL_ARGS = {"config": SMALL_BERT, "seed": 3, "rows": 2, "length": 8, "targets": ["query", "value"]}


def test_measure_model_applies_the_course_targets_per_rank_and_the_students_for_the_fresh_model():
    args = {**MODEL_ARGS, "ranks": [2], "lora_alpha": 4, "lora_dropout": 0.0,
            "student": {"r": 3, "target_modules": ["key"], "lora_alpha": 6, "lora_dropout": 0.4}}
    seen = []

    def recording(model, config):
        seen.append((config.r, tuple(config.target_modules)))
        return get_lora_model(model, config)

    result = probes.measure_model(MyLoraConfig, recording, args)
    assert seen == [(2, ("query", "value")), (3, ("key",))]
    assert result["init_exact"] and result["init_max_diff"] == 0.0
    assert all(name.endswith((".query", ".value")) for name in result["ranks"]["2"]["wrapped"])


def test_measure_step_needs_no_torch_optim_and_sees_an_unfrozen_base(monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("torch.optim is unusable in the measurement process")

    for name in ("SGD", "Adam", "AdamW"):
        monkeypatch.setattr(torch.optim, name, refuse)
    args = {**MODEL_ARGS, "r": 2, "lora_alpha": 4, "lora_dropout": 0.0, "lr": 0.01}
    good = probes.measure_step(MyLoraConfig, get_lora_model, args)
    assert good["base_changed"] == [] and good["trained"] and good["base_total"] > 0

    def unfrozen(model, config):
        get_lora_model(model, config)
        model.bert.embeddings.word_embeddings.weight.requires_grad_(True)
        return model

    bad = probes.measure_step(MyLoraConfig, unfrozen, args)
    assert bad["base_changed"] == ["bert.embeddings.word_embeddings.weight"]


def test_measure_scaling_sees_the_reference_scale():
    result = probes.measure_scaling(MyLoraLayer, {"seed": 1, "in_features": 4, "out_features": 3, "rows": 2,
                                                  "pairs": [[2, 5]]})
    (case,) = result["cases"]
    want = [b + 2.5 * d for b, d in zip(case["base"], case["lora"])]
    assert case["output"] == pytest.approx(want, rel=1e-5)


# Whole gradings, the measurement protocol in this process.

@pytest.mark.parametrize("name", IN_PROCESS)
def test_each_variant_fails_exactly_its_checks(name):
    results = judged(name)
    failed = {number for number, case in results.items() if case.status == "failed"}
    assert {n: r.max_score for n, r in results.items()} == RUBRIC
    assert failed == EXPECTED_FAILURES[name], {n: results[n].output[:300] for n in failed ^ EXPECTED_FAILURES[name]}


@pytest.mark.parametrize("name, number", sorted(HINTS))
def test_feedback_names_the_likely_mistake(name, number):
    results = judged(name)
    output = results[number].output
    # Each fact is said once (plugin._said_once): a later test points back to the one that says it.
    for earlier in re.findall(r"test (\d+\.\d+) above", output):
        output += "\n\n" + results[earlier].output
    for words in HINTS[name, number]:
        assert words in output, output
    assert "measure_" not in output and "probe_" not in output and "_check_hparams" not in output


def test_a_part1_notebook_is_told_which_assignment_it_looks_like():
    results = grade_in_process(load_notebook(PART1), "part1")
    assert all(r.status == "failed" for r in results.values())
    first, *later = sorted(results.values(), key=lambda r: [int(p) for p in r.number.split(".")])
    assert "looks like **HW4 Part 1" in first.output and "submit `hw4_part1.ipynb` to Part 1" in first.output
    for result in later:  # said once (plugin._said_once), then pointed to
        assert f"same reason as test {first.number}" in result.output or "looks like **HW4 Part 1" in result.output


# Through the sandbox (about 15 s each on an idle box): the course notebooks, the attacks, and notebooks that lean
# on the process's globals. Every variant is also graded in-process above.
SANDBOXED = ("solution", "template", "student_correct", "course_template", "attack_download", "attack_while_true",
             "attack_os_exit_in_definition", "lora_added_twice", "uses_notebook_globals", "lora_on_key")


def _grade_one(name: str, out: str) -> tuple[dict, float]:
    from autograder.config import from_environment
    from autograder.grade import grade
    started = time.monotonic()
    path = Path(out) / f"{name}.json"
    grade(NOTEBOOKS[name], path, "hw4_part2", log=lambda m: None, limits=LIMITS, config=from_environment())
    return json.loads(path.read_text()), time.monotonic() - started


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Each notebook graded once, two at a time (as `--jobs 2`), each in a fresh process."""
    out = str(tmp_path_factory.mktemp("part2"))
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        graded = pool.starmap(_grade_one, [(name, out) for name in SANDBOXED])
    return ({n: r for n, (r, _) in zip(SANDBOXED, graded)}, {n: t for n, (_, t) in zip(SANDBOXED, graded)})


@pytest.mark.integration
@pytest.mark.parametrize("name", SANDBOXED)
def test_each_submission_fails_exactly_the_right_checks_in_the_sandbox(graded, name):
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


@pytest.mark.integration
def test_sandboxed_feedback_teaches_without_showing_the_reference(graded):
    results, _ = graded

    def output(name, number):
        return next(t["output"] for t in results[name]["tests"] if t["number"] == number)

    assert "LoRA added twice" in output("lora_added_twice", "2.1")
    assert "LoRA on `key`" in output("lora_on_key", "3.1")
    assert "still the placeholder" in output("course_template", "3.1")
    assert "no downloads, no training" in results["attack_download"]["output"]
    text = json.dumps({n: r for n, r in results.items() if n != "solution"})
    assert "def measure_" not in text and "_check_hparams" not in text and "kaiming_uniform_" not in text
