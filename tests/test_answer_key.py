"""The answer key as a newcomer builds it: `python -m solution.answer_key` in a subprocess from the working tree,
on a run folder made here by hand (so every Part 2 figure is known), then every number read back."""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from solution.answer_key import numbers
from solution.answer_key.typeset import latex_to_typst
from solution.finetune.answers import answer_e, answer_g
from solution.finetune.config import FinetuneConfig

REPO = Path(__file__).resolve().parents[1]

# Hand-made validation curves (epoch 1..3): full peaks at epoch 2, last layer rises, LoRA peaks at epoch 3.
CURVES = {"full": [0.40, 0.50, 0.495], "last_layer": [0.30, 0.32, 0.35], "lora_r16": [0.38, 0.44, 0.46],
          "lora_r1": [0.40, 0.43, 0.45], "lora_r256": [0.35, 0.45, 0.47]}
PARAMS = {"full": (1000, 1000), "last_layer": (10, 1000), "lora_r16": (100, 1090), "lora_r1": (16, 1006),
          "lora_r256": (1540, 2530)}


def _write_run(run: Path, smoke: bool) -> FinetuneConfig:
    cfg = FinetuneConfig(methods=tuple(CURVES), epochs=3, smoke=smoke, out=str(run))
    cfg.save(run / "config.json")
    for method, accs in CURVES.items():
        epochs = [{"epoch": e, "train_loss": 1.5 - 0.2 * e, "val_loss": 1.4 - 0.1 * e, "val_accuracy": a,
                   "val_f1": a - 0.05, "train_seconds": 1.0, "train_samples_per_s": 100.0}
                  for e, a in enumerate(accs, 1)]
        best = max(epochs, key=lambda r: r["val_accuracy"])
        trainable, total = PARAMS[method]
        (run / method).mkdir(parents=True)
        (run / method / "metrics.json").write_text(json.dumps({
            "method": method, "complete": True, "device": "cpu", "precision": "fp32",
            "params": {"total": total, "trainable": trainable, "trainable_percent": 100 * trainable / total},
            "samples": {"train": 10}, "epochs": epochs,
            "best": {"epoch": best["epoch"], "val_accuracy": best["val_accuracy"], "val_f1": best["val_f1"]}}))
    ms = {"train_forward_full": 10.0, "train_forward_lora": 12.0, "train_step_full": 30.0, "train_step_lora": 25.0,
          "inference_base": 5.0, "inference_lora_unmerged": 6.0, "inference_lora_merged": 5.0}
    (run / "timing.json").write_text(json.dumps({
        "complete": True, "batch_shape": [8, 16], "device": "cpu", "rounds": 3, "precision": "fp32", "rank": 16,
        "median_ms": ms, "min_ms": ms, "merged_vs_unmerged_max_abs_logit_diff": 1e-6,
        "lora_vs_base_max_abs_logit_diff": 0.1}))
    return cfg


@pytest.fixture(scope="module")
def key(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("key")
    _write_run(tmp / "run", smoke=False)
    subprocess.run([sys.executable, "-m", "solution.answer_key", "--out", str(tmp / "key"), "--run",
                    str(tmp / "run")], cwd=REPO, check=True, capture_output=True, timeout=240)
    return tmp / "key"


def _section(markdown: str, start: str, end: str) -> str:
    return markdown[markdown.index(start):markdown.index(end, markdown.index(start))]


INTEGER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?![\d])|(?<![\w.,])\d+(?![\d,.%])")  # 102,732 or 66


def _ints(text: str) -> list[int]:
    return [int(n.replace(",", "")) for n in INTEGER.findall(text)]


def test_h_table_reads_back_as_the_code_computes_it(key):
    md = (key / "key.md").read_text()
    section = _section(md, "### (h)", "#### Rubric (h)")
    rows = [line for line in section.splitlines() if line.startswith("| $")]
    values = [re.findall(r"-?\d[\d,]*", line.rsplit("|", 2)[1]) for line in rows]
    want = [numbers.h_steps()[i][2] for i in range(len(rows))]
    flat = [[v for row in (w if isinstance(w, list) else [w]) for v in (row if isinstance(row, list) else [row])]
            for w in want]
    assert len(rows) == len(numbers.h_steps()) and [[int(v.replace(",", "")) for v in got] for got in values] == flat
    # The answers line, against the handout's numbers (HW4_INTERFACE.md), not against the code.
    assert "**102,732**" in section and "**57,768**" in section and "3,233,534" in section


def test_every_large_number_in_the_written_key_comes_from_the_code(key):
    md = (key / "key.md").read_text()
    written = _section(md, "## Written 1.1", "## Part 2")
    produced = set()
    for _, _, value in numbers.h_steps():
        stack = [value]
        while stack:
            v = stack.pop()
            stack.extend(v) if isinstance(v, list) else produced.add(v)
    produced |= {v for value in numbers.HANDOUT.values() for row in value
                 for v in (row if isinstance(row, list) else [row])}
    large = [n for n in _ints(written) if n >= 10]
    assert large and set(large) <= produced | {28}  # 28: the section's points in its title


def test_part2_answers_quote_the_runs_figures(key):
    md = (key / "key.md").read_text()
    md = md[md.index("## Part 2"):]
    e = _section(md, "### (e)", "#### Rubric (e)")
    # Figures worked out by hand from CURVES: best per method and its epoch, ranked.
    assert "Full fine-tuning 50.0% (epoch 2 of 3), LoRA r=16 46.0% (epoch 3 of 3), Last layer only 35.0%" in e
    assert "final validation accuracy 49.5%" in e  # full's last epoch, not its best
    assert "within 1 point of its best from epoch 2" in e  # full: 0.495 >= 0.49 but epoch 2 comes first
    assert "LoRA closes 73% of the gap" in e  # (0.46 - 0.35) / (0.50 - 0.35)
    assert "smoke" not in e.lower()
    g = _section(md, "### (g)", "#### Rubric (g)")
    assert "r=1: 45.0% at epoch 3, 16 trainable, scale alpha/r = 32" in g
    assert "r=256: 47.0% at epoch 3, 1,540 trainable, scale alpha/r = 0.125" in g
    assert "r=256 trains 96.2x the parameters of r=1" in g
    percents = set(re.findall(r"\d+\.\d%", e + g))
    assert percents <= {f"{100 * a:.1f}%" for accs in CURVES.values() for a in accs} | {"10.0%", "1.0%"}
    h = _section(md, "### (h)", "#### Rubric (h)")
    assert "1.20x the full model's" in h and "merged" in h


def test_pdf_is_a_pdf_with_pages(key):
    pdf = (key / "key.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type\s*/Page(?!s)", pdf)) >= 6
    for name in ("fig_a_parameters.png", "fig_f_rank_sweep.png"):
        assert not (key / "part2" / name).exists()  # the hand-made run has no figures: none invented


def test_rubric_files_carry_the_handouts_points(key):
    points = {"written": {"a": 4, "b": 3, "c": 4, "d": 5, "e": 2, "f": 2, "g": 4, "h": 2, "i": 2},
              "part2": {"a": 3, "b": 3, "c": 3, "d": 3, "e": 4, "f": 6, "g": 4, "h": 4}}
    md = (key / "key.md").read_text()
    for section, per_question in points.items():
        for q, total in per_question.items():
            with open(key / "rubric" / f"{section}_{q}.csv") as f:
                rows = list(csv.DictReader(f))
            assert rows[0]["points"] == "0" and min(float(r["points"]) for r in rows) == -total
            assert all(r["description"] for r in rows)
            assert f"#### Rubric ({q}), {total} points" in md


def test_a_smoke_run_says_so():
    results = {m: {"method": m, "params": {"trainable": 1, "total": 2},
                   "epochs": [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.0, "val_accuracy": 0.3, "val_f1": 0.2}]}
               for m in ("full", "last_layer", "lora_r16")}
    for smoke in (True, False):
        cfg = FinetuneConfig(smoke=smoke)
        text = " ".join(answer_e(results, cfg) + answer_g(results, cfg))
        assert ("Smoke run" in text) is smoke


def test_latex_outside_the_translated_subset_is_refused():
    assert latex_to_typst(r"\frac{\partial L}{\partial W^{(1)}_{ij}}") == "frac(partial L, partial W^(( 1 ))_(i j))"
    with pytest.raises(ValueError, match="hat"):
        latex_to_typst(r"\hat{y}")


@pytest.mark.slow
def test_default_command_builds_the_key_from_a_smoke_run(tmp_path):
    """What the README says to run: no --run, so Part 2 comes from a fresh smoke run and says so."""
    subprocess.run([sys.executable, "-m", "solution.answer_key", "--out", str(tmp_path / "key")], cwd=REPO,
                   check=True, capture_output=True, timeout=600)
    md = (tmp_path / "key" / "key.md").read_text()
    md = md[md.index("## Part 2"):]
    assert "**smoke run**" in md and "**Smoke run:**" in _section(md, "### (e)", "#### Rubric (e)")
    assert (tmp_path / "key" / "part2" / "fig_a_parameters.png").is_file()
    assert (tmp_path / "key" / "key.pdf").read_bytes().startswith(b"%PDF-")


def test_report_md_carries_the_free_response_answers(tmp_path):
    from solution.finetune.report import write_report

    cfg = _write_run(tmp_path, smoke=False)
    report = write_report(tmp_path, cfg).read_text()
    e = report[report.index("## (e)"):report.index("## (f)")]
    g = report[report.index("## (g)"):report.index("## (h)")]
    assert "Full fine-tuning 50.0% (epoch 2 of 3)" in e and "r=1: 45.0% at epoch 3" in g
    assert "Smoke run" not in report[report.index("## (e)"):]
