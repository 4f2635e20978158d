"""The Part 2 harness: counts at bert-base's shape on the meta device, numerics on the small config (CI), and
bert-base on CUDA where there is one.

The reference's counts must be the handout's; each notebook is measured with its own config cell; the
measurements must tell a correct LoRA from wrong ones; a bad submission must cost its row and nothing else; the
command must print a Markdown table and write JSON. Speed and memory are measured by benchmarks/bench_harness.py.
"""

import json
from pathlib import Path

import pytest
import torch

from autograder.staff import gpu_harness
from autograder.assignments.hw4_part2 import SMALL_BERT
from autograder.assignments.hw4_part2.config_cell import read_config
from autograder.assignments.hw4_part2.harness_probes import measure_counts, measure_numeric
from autograder.staff.gpu_harness import (BASE_BERT, EXPECTED_BASE_COUNTS, HarnessSettings, _judge, main, markdown,
                                    reference_counts, run_all)
from autograder.notebook import load_notebook
from autograder.supervisor.replies import WorkerRun
from solution.lora import MyLoraConfig, get_lora_model
from tests.submissions.hw4_part2.inprocess import lora_functions

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests/submissions/hw4_part2"
SOLUTION = ROOT / "solution/notebooks/hw4_part2.ipynb"
SMALL = HarnessSettings(device="cpu", config="small")
HANDOUT = {str(r): [total, trainable] for r, (trainable, total) in EXPECTED_BASE_COUNTS.items()}


def student(name: str) -> tuple:
    """(MyLoraConfig, get_lora_model, the config cell's settings) of a corpus notebook, loaded in-process."""
    notebook = load_notebook(CORPUS / f"{name}.ipynb")
    return (*lora_functions(notebook), read_config(notebook).effective.to_json())


@pytest.fixture(autouse=True)
def one_thread():
    """As in the sandbox (OMP_NUM_THREADS=1): on a busy 2-core box torch's default threads cost 10x here."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def judged(Config, get, own: dict) -> dict:
    """Both harness measurements in-process, with a batch and repeats cut to what a busy CI box affords."""
    counts_call, numeric_call = SMALL.calls("cpu", own, {})
    numeric_args = {**numeric_call.args, "rows": 2, "length": 8, "repeats": 1, "warmup": 0}
    return _judge(measure_counts(Config, get, counts_call.args), measure_numeric(Config, get, numeric_args), HANDOUT)


def test_reference_counts_are_the_handouts():
    assert reference_counts(BASE_BERT, (1, 16, 256)) == HANDOUT


def test_settings_reject_what_they_cannot_run_and_pick_the_numeric_model():
    for bad in ({"device": "tpu"}, {"config": "large"}):
        with pytest.raises(ValueError):
            HarnessSettings(**bad)
    auto = HarnessSettings()
    assert auto.resolved_config("cpu") == "small" and auto.resolved_config("cuda") == "base"
    assert auto.limits("cuda").memory_mb > auto.limits("cpu").memory_mb
    counts, numeric = SMALL.calls("cpu", {"r": 8}, {})
    assert counts.args["config"] == BASE_BERT and numeric.args["config"] == SMALL_BERT
    # CUDA's driver is preloaded by the measurement process (the policy), not by the probe, where ctypes is refused
    assert "preload" not in numeric.args and SMALL.libraries("cpu") == () and numeric.args["student"] == {"r": 8}


def test_counts_are_taken_on_the_meta_device_with_the_students_targets():
    seen = []

    def recording(model, config):
        seen.append(({p.device.type for p in model.parameters()}, tuple(config.target_modules), config.r))
        return get_lora_model(model, config)

    own = {"r": 16, "target_modules": ["key", "value"], "lora_alpha": 32, "lora_dropout": 0.4}
    result = measure_counts(MyLoraConfig, recording, {"config": BASE_BERT, "ranks": [1, 16], "student": own})
    assert seen == [({"meta"}, ("key", "value"), 1), ({"meta"}, ("key", "value"), 16)]
    assert result["ranks"]["16"] == {"counts": HANDOUT["16"], "wrapped": 24, "wrapped_kinds": ["key", "value"],
                                     "wrong_trainable": []}


def test_the_reference_passes_every_measurement():
    own = {"r": 16, "target_modules": ["query", "value"], "lora_alpha": 32, "lora_dropout": 0.1}
    row = judged(MyLoraConfig, get_lora_model, own)
    assert all(entry["ok"] for entry in row["ranks"].values())
    assert row["init_exact"] and row["frozen_base"] and row["merge"]["ok"]
    assert row["merge"]["method"] == "own merge()" and row["merge"]["lora_effect"] > 0
    assert set(row["timing_ms"]) >= {"train_base", "train_lora", "eval_base", "eval_lora", "eval_merged"}


def test_a_course_notebook_without_merge_is_merged_with_the_course_formula():
    row = judged(*student("student_correct"))
    assert row["merge"]["method"] == "course formula" and row["merge"]["ok"]
    assert all(entry["ok"] for entry in row["ranks"].values()) and row["init_exact"] and row["frozen_base"]
    assert {r: e["counts"] for r, e in row["ranks"].items()} == HANDOUT and row["targets_ok"]


@pytest.mark.parametrize("name, wrong", [
    ("scale_r_over_alpha", {"merge"}),  # the forward pass disagrees with W0 + (alpha / r) B A
    ("base_not_frozen", {"counts", "frozen"}),
    ("b_random_init", {"init"}),  # merge still agrees: the harness sets B itself
    ("lora_only_query", {"counts", "targets"}),  # its own targets: 12 layers wrapped, not 24
    ("lora_on_key", {"targets"}),  # the same counts as query + value, on the wrong modules
])
def test_wrong_variants_fail_exactly_their_measurements(name, wrong):
    row = judged(*student(name))
    failed = {"counts"} if not all(e["ok"] for e in row["ranks"].values()) else set()
    failed |= set() if row["targets_ok"] else {"targets"}
    failed |= {label for label, ok in (("init", row["init_exact"]), ("frozen", row["frozen_base"]),
                                       ("merge", row["merge"]["ok"])) if not ok}
    assert failed == wrong


def test_a_bad_submission_costs_its_row_only(tmp_path, monkeypatch):
    runs = iter([RuntimeError("the sandbox broke"), WorkerRun(None, problem="the notebook ran out of memory"),
                 WorkerRun({"probes": {"counts": {"ok": True, "value": {"ranks": {}}},
                                       "numeric": {"ok": False, "error": "NameError: name 'nn' is not defined"}}})])

    def fake_measure(notebook, calls, limits, libraries=()):
        assert [c.entry for c in calls] == ["probe_harness_counts", "probe_harness_numeric"]
        run = next(runs)
        if isinstance(run, Exception):
            raise run
        return run

    monkeypatch.setattr(gpu_harness, "_measure", fake_measure)
    monkeypatch.setattr(gpu_harness, "reference_counts", lambda config, ranks: HANDOUT)
    (tmp_path / "broken.ipynb").write_text("not a notebook {")
    report = run_all([SOLUTION, CORPUS / "scale_r_over_alpha.ipynb", CORPUS / "lora_on_key.ipynb",
                      tmp_path / "broken.ipynb", tmp_path / "missing"], SMALL, log=lambda m: None)
    problems = [row["problem"] for row in report["submissions"]]
    assert "harness error" in problems[0] and "the sandbox broke" in problems[0]
    assert problems[1] == "the notebook ran out of memory"
    assert problems[2] == "numeric: NameError: name 'nn' is not defined"
    assert report["submissions"][2]["lora_config"]["target_modules"] == ["key", "value"]
    assert "not JSON" in problems[3] and "Nothing was submitted" in problems[4]
    table = markdown(report).splitlines()
    assert len(table) == 4 + 5 and all(line.count("|") == table[2].count("|") for line in table[2:])


@pytest.mark.integration
def test_the_command_prints_a_table_and_writes_json(tmp_path, capsys):
    """Through the sandbox, as graders run it; one notebook keeps CI short (the measurements are tested above)."""
    out = tmp_path / "harness.json"
    assert main([str(CORPUS / "scale_r_over_alpha.ipynb"), "--device", "cpu", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    (scaled,) = json.loads(out.read_text())["submissions"]
    assert scaled["problem"] is None, scaled["problem"]
    assert all(e["ok"] for e in scaled["ranks"].values()) and scaled["init_exact"] and scaled["frozen_base"]
    assert not scaled["merge"]["ok"] and scaled["timing_ms"]["train_lora"] > 0
    assert "| submission | r=1 | r=16 | r=256 |" in table and "✓ 593,669 / 110,075,909" in table
    assert "✗ course formula" in table


@pytest.mark.integration
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bert_base_on_the_gpu(tmp_path):
    out = tmp_path / "harness.json"
    assert main([str(SOLUTION), "--device", "cuda", "--config", "base", "--json", str(out)]) == 0
    row = json.loads(out.read_text())["submissions"][0]
    assert row["problem"] is None, row["problem"]
    assert {r: e["counts"] for r, e in row["ranks"].items()} == HANDOUT
    assert row["init_exact"] and row["frozen_base"] and row["merge"]["ok"]
