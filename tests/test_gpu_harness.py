"""The Part 2 GPU harness, on the CPU with the small config (CI), and on CUDA with bert-base where there is one.

The reference's counts must be the handout's; the measurements must tell a correct LoRA from wrong ones; a bad
submission must cost its row and nothing else; the command must print a Markdown table and write JSON.
"""

import json
import math
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn

from autograder import gpu_harness
from autograder.assignments.hw4_part2 import SMALL_BERT
from autograder.assignments.hw4_part2.harness_probes import measure_harness
from autograder.sandbox import WorkerRun
from autograder.gpu_harness import (BASE_BERT, EXPECTED_BASE_COUNTS, HarnessSettings, _judge, markdown, main,
                                    reference_counts, run_all)
from solution.lora import MyLoraConfig, get_lora_model

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests/submissions/hw4_part2"
SOLUTION = ROOT / "solution/notebooks/hw4_part2.ipynb"
SMALL = HarnessSettings(device="cpu", config="small")


def student_lora(name: str) -> tuple:
    """(MyLoraConfig, get_lora_model) of a corpus notebook, its LoRA cells run in-process (no sandbox)."""
    cells = {c.id: c.source for c in nbformat.read(CORPUS / f"{name}.ipynb", as_version=4).cells}
    namespace = {"torch": torch, "nn": nn, "math": math}
    for cell_id in ("lora-config", "lora-layer", "get-lora-model"):
        exec(compile(cells[cell_id], f"{name}:{cell_id}", "exec"), namespace)
    return namespace["MyLoraConfig"], namespace["get_lora_model"]


@pytest.fixture(autouse=True)
def one_thread():
    """As in the sandbox (OMP_NUM_THREADS=1): on a busy 2-core box torch's default threads cost 10x here."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def small_expected():
    return reference_counts(SMALL_BERT, SMALL.ranks)


def judged(Config, get, expected) -> dict:
    """The harness's measurements in-process, with a batch and repeats cut to what a busy CI box affords."""
    args = {**SMALL.probe_args("cpu"), "rows": 2, "length": 8, "repeats": 1, "warmup": 0}
    return _judge(measure_harness(Config, get, args), expected)


def test_reference_counts_are_the_handouts():
    counts = reference_counts(BASE_BERT, (1, 16, 256))
    assert counts == {str(r): [total, trainable] for r, (trainable, total) in EXPECTED_BASE_COUNTS.items()}


def test_settings_reject_what_they_cannot_run():
    for bad in ({"device": "tpu"}, {"config": "large"}, {"main_rank": 8}):
        with pytest.raises(ValueError):
            HarnessSettings(**bad)
    assert HarnessSettings(config="base").limits("cuda").memory_mb > HarnessSettings(config="base").limits("cpu").memory_mb
    assert SMALL.probe_args("cpu")["preload"] == []


def test_the_reference_passes_every_measurement(small_expected):
    row = judged(MyLoraConfig, get_lora_model, small_expected)
    assert all(entry["ok"] for entry in row["ranks"].values())
    assert row["init_exact"] and row["frozen_base"] and row["merge"]["ok"]
    assert row["merge"]["method"] == "own merge()" and row["merge"]["lora_effect"] > 0
    assert set(row["timing_ms"]) >= {"train_base", "train_lora", "eval_base", "eval_lora", "eval_merged"}


def test_a_student_layer_without_merge_is_merged_with_the_course_formula(small_expected):
    row = judged(*student_lora("student_correct"), small_expected)
    assert row["merge"]["method"] == "course formula" and row["merge"]["ok"]
    assert all(entry["ok"] for entry in row["ranks"].values()) and row["init_exact"] and row["frozen_base"]


@pytest.mark.parametrize("name, wrong", [
    ("scale_r_over_alpha", {"merge"}),  # the forward pass disagrees with W0 + (alpha / r) B A
    ("base_not_frozen", {"counts", "frozen"}),
    ("b_random_init", {"init"}),  # merge still agrees: the harness sets B itself
    ("lora_added_twice", {"counts", "merge"}),
])
def test_wrong_variants_fail_exactly_their_measurements(small_expected, name, wrong):
    row = judged(*student_lora(name), small_expected)
    failed = {"counts"} if not all(e["ok"] for e in row["ranks"].values()) else set()
    failed |= {label for label, ok in (("init", row["init_exact"]), ("frozen", row["frozen_base"]),
                                       ("merge", row["merge"]["ok"])) if not ok}
    assert failed == wrong


def test_a_bad_submission_costs_its_row_only(tmp_path, monkeypatch, small_expected):
    runs = iter([RuntimeError("the sandbox broke"), WorkerRun(None, problem="the notebook ran out of memory")])

    def fake_worker(request, limits, protected):
        run = next(runs)
        if isinstance(run, Exception):
            raise run
        return run

    monkeypatch.setattr(gpu_harness, "run_worker", fake_worker)
    monkeypatch.setattr(gpu_harness, "reference_counts", lambda config, ranks: small_expected)
    (tmp_path / "broken.ipynb").write_text("not a notebook {")
    report = run_all([SOLUTION, CORPUS / "scale_r_over_alpha.ipynb", tmp_path / "broken.ipynb",
                      tmp_path / "missing"], SMALL, log=lambda m: None)
    problems = [row["problem"] for row in report["submissions"]]
    assert "harness error" in problems[0] and "the sandbox broke" in problems[0]
    assert problems[1] == "the notebook ran out of memory"
    assert "not JSON" in problems[2] and "Nothing was submitted" in problems[3]
    table = markdown(report).splitlines()
    assert len(table) == 4 + 4 and all(line.count("|") == table[2].count("|") for line in table[2:])


@pytest.mark.slow
def test_the_command_prints_a_table_and_writes_json(tmp_path, capsys):
    """Through the sandbox, as graders run it; one notebook keeps CI short (the measurements are tested above)."""
    out = tmp_path / "harness.json"
    assert main([str(CORPUS / "scale_r_over_alpha.ipynb"), "--device", "cpu", "--config", "small",
                 "--json", str(out)]) == 0
    table = capsys.readouterr().out
    (scaled,) = json.loads(out.read_text())["submissions"]
    assert scaled["problem"] is None, scaled["problem"]
    assert all(e["ok"] for e in scaled["ranks"].values()) and scaled["init_exact"] and scaled["frozen_base"]
    assert not scaled["merge"]["ok"] and scaled["timing_ms"]["train_lora"] > 0
    assert "| submission | r=1 | r=16 | r=256 |" in table and "✓ 8,517 / 152,069" in table
    assert "✗ course formula" in table


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bert_base_on_the_gpu(tmp_path):
    out = tmp_path / "harness.json"
    assert main([str(SOLUTION), "--device", "cuda", "--config", "base", "--json", str(out)]) == 0
    row = json.loads(out.read_text())["submissions"][0]
    assert row["problem"] is None, row["problem"]
    assert {r: tuple(e["counts"][::-1]) for r, e in row["ranks"].items()} == \
        {str(r): counts for r, counts in EXPECTED_BASE_COUNTS.items()}
    assert row["init_exact"] and row["frozen_base"] and row["merge"]["ok"]
