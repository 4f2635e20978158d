"""The Part 2 harness: each submission's LoRA, with its own configuration, at bert-base's shape, for graders.

    python -m autograder.staff.gpu_harness NOTEBOOK_OR_FOLDER... [--device auto|cuda|cpu] [--json FILE]
                                     [--config auto|base|small] [--memory-mb MB]

Per submission, in the grader's sandbox (only the notebook's imports and definitions run; nothing downloads), two
measurement calls. Counts: `BertForSequenceClassification(BertConfig(num_labels=5))` built on the meta device (no
weights), the submission's `get_lora_model` applied with its config cell's targets, alpha and dropout at r = 1, 16,
256: trainable / total parameters against the handout's, how many layers were wrapped, which parameters train.
Numerics, on a real random-init model (`--config`: small on a CPU, bert-base on a GPU), at the config cell's r:
the largest |logits with LoRA - logits of the base| of a fresh model (must be exactly 0), whether an SGD step leaves
every pretrained weight bit-identical, whether merging B A into W0 keeps the outputs, and forward times.
Prints a Markdown table and writes everything as JSON. One bad submission costs its row, never the batch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from autograder import grade
from autograder.assignment import Call, load_assignment
from autograder.config import from_environment
from autograder.assignments.hw4_part2 import SMALL_BERT, notebook_constants
from autograder.assignments.hw4_part2.config_cell import read_config
from autograder.assignments.hw4_part2.probes import p2_counts
from autograder.errors import SubmissionError
from autograder.notebook import find_notebooks, load_notebook
from autograder.limits import Limits

__all__ = ["HarnessSettings", "BASE_BERT", "EXPECTED_BASE_COUNTS", "reference_counts", "run_one", "run_all",
           "markdown", "main"]

BASE_BERT = {"vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
             "intermediate_size": 3072, "max_position_embeddings": 512, "num_labels": 5}  # BertConfig()'s defaults
# HW4_INTERFACE.md: rank -> (trainable, total) for bert-base-uncased with 5 labels.
EXPECTED_BASE_COUNTS = {1: (40_709, 109_522_949), 16: (593_669, 110_075_909), 256: (9_441_029, 118_923_269)}
EXPECTED_WRAPPED = 24  # 12 layers x (query, value)
TARGETS = ("query", "value")
CONFIGS = {"base": BASE_BERT, "small": SMALL_BERT}
# The course's batch (64 x 128 tokens) on a GPU; on a CPU, bert-base at that size takes ~30 s a pass.
BATCHES = {("base", "cuda"): {"rows": 64, "length": 128, "repeats": 20, "warmup": 3},
           ("base", "cpu"): {"rows": 8, "length": 64, "repeats": 3, "warmup": 1},
           ("small", "cuda"): {"rows": 64, "length": 128, "repeats": 20, "warmup": 3},
           ("small", "cpu"): {"rows": 8, "length": 32, "repeats": 5, "warmup": 1}}
# Counting on the meta device costs no weights, so `small` fits Gradescope's 768 MB box. A real bert-base plus
# its LoRA copy needs a few GB of host memory. Where the sandbox has no cgroup, memory_mb caps address space, and
# CUDA reserves address space for all of the GPU's memory: hence the large CUDA default.
LIMITS = {"base": Limits(wall_seconds=900, cell_timeout=870, memory_mb=12_000),
          "small": Limits(wall_seconds=300, cell_timeout=270, memory_mb=1_000)}
CUDA_MEMORY_MB = 262_144
MERGE_RTOL = 1e-4  # merged vs unmerged logits, relative to the largest logit


@dataclasses.dataclass(frozen=True)
class HarnessSettings:
    device: str = "auto"  # "auto" (cuda when available), "cuda" or "cpu"
    config: str = "auto"  # the numeric checks' model: "base" (bert-base's shape), "small", "auto" (base on cuda)
    ranks: tuple[int, ...] = (1, 16, 256)  # LoRA ranks whose parameter counts are checked (always bert-base)
    seed: int = 1337  # model init and inputs
    memory_mb: int | None = None  # sandbox memory; None: the config's default

    def __post_init__(self):
        if self.device not in ("auto", "cuda", "cpu"):
            raise ValueError(f"device must be auto, cuda or cpu, got {self.device!r}")
        if self.config not in ("auto", *CONFIGS):
            raise ValueError(f"config must be auto or one of {sorted(CONFIGS)}, got {self.config!r}")

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"

    def resolved_config(self, device: str) -> str:
        return self.config if self.config != "auto" else "base" if device == "cuda" else "small"

    def limits(self, device: str) -> Limits:
        base = LIMITS[self.resolved_config(device)]
        return dataclasses.replace(base, memory_mb=self.memory_mb or (CUDA_MEMORY_MB if device == "cuda"
                                                                       else base.memory_mb))

    def calls(self, device: str, own: dict, constants: dict) -> list[Call]:
        config = self.resolved_config(device)
        timeout = self.limits(device).cell_timeout
        counts = {"config": BASE_BERT, "ranks": list(self.ranks), "student": own, "constants": constants}
        numeric = {"config": CONFIGS[config], "seed": self.seed, "student": own, "device": device,
                   "constants": constants,
                   **BATCHES[config, device]}
        return [Call("counts", "probe_harness_counts", counts, timeout=timeout),
                Call("numeric", "probe_harness_numeric", numeric, timeout=timeout)]


    def libraries(self, device: str) -> tuple[str, ...]:
        """What the measurement process preloads (the assignment's policy, inside/policy.py): CUDA's driver."""
        return tuple(_cuda_driver_paths()) if device == "cuda" else ()


def _cuda_driver_paths() -> list[str]:
    """The CUDA driver libraries this process loaded. The sandbox scrubs LD_LIBRARY_PATH, through which some
    machines find the driver; the measurement process loads them by path before its policy is in place (the
    guard refuses ctypes afterwards), so that torch finds the driver already loaded on its first CUDA call."""
    import torch
    torch.cuda.is_available()  # loads the driver
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    return sorted({line.split()[-1] for line in maps.splitlines() if "/libcuda.so" in line})


def reference_counts(config: dict, ranks: tuple[int, ...]) -> dict[str, list[int]]:
    """[total, trainable] of the reference's LoRA model per rank, counted on the meta device (no memory)."""
    import copy

    import torch
    from transformers import BertConfig, BertForSequenceClassification
    from solution.lora import MyLoraConfig, get_lora_model
    with torch.device("meta"):
        base = BertForSequenceClassification(BertConfig(**config))
        return {str(r): p2_counts(get_lora_model(copy.deepcopy(base), MyLoraConfig(r, ("query", "value"), 32, 0.1)))
                for r in ranks}


def _measure(notebook, calls: list[Call], limits: Limits, libraries: tuple[str, ...] = ()):
    """The sandboxed run that `grade` uses, with the harness's probes after the assignment's and `libraries`
    added to what the assignment's policy preloads."""
    assignment = load_assignment("hw4_part2")
    policy = dataclasses.replace(assignment.policy, libraries=assignment.policy.libraries + tuple(libraries))
    assignment = dataclasses.replace(assignment, policy=policy)
    probes = assignment.probes_source + "\n\n" + (assignment.folder / "harness_probes.py").read_text()
    # The harness is an entry point of its own (its main): the sandbox settings are read here, once per run.
    return grade.measure(notebook, assignment, calls, probes_source=probes, limits=limits, config=from_environment())


def run_one(path: Path, settings: HarnessSettings, device: str, expected: dict[str, list[int]],
            name: str | None = None) -> dict:
    """One submission's row; every failure becomes the row's `problem`, never an exception."""
    row: dict[str, Any] = {"submission": name or path.name, "path": str(path), "problem": None}
    try:
        notebook = load_notebook(path)
        reading = read_config(notebook)
        row["lora_config"], row["config_problem"] = reading.effective.to_json(), reading.problem
        calls = settings.calls(device, reading.effective.to_json(), notebook_constants(notebook))
        run = _measure(notebook, calls, settings.limits(device), settings.libraries(device))
    except SubmissionError as error:
        row["problem"] = error.student_message
        return row
    except Exception:  # a harness bug costs this row only
        row["problem"] = "harness error: " + traceback.format_exc(limit=3)[-800:]
        return row
    row.update(worker_seconds=round(run.wall_seconds, 1), peak_memory_mb=run.peak_memory_mb)
    if run.reply is None:
        row["problem"] = run.problem
        return row
    observed = {}
    for call in calls:
        observation = run.reply.get("probes", {}).get(call.name, {})
        if not observation.get("ok"):
            row["problem"] = f"{call.name}: " + str(observation.get("error", "no result"))[:800]
            return row
        observed[call.name] = observation["value"]
    row.update(_judge(observed["counts"], observed["numeric"], expected))
    return row


def _judge(counts: dict, numeric: dict, expected: dict[str, list[int]]) -> dict:
    ranks = {}
    for r, want in expected.items():
        got = counts.get("ranks", {}).get(r, {"error": "not measured"})
        ok = got.get("counts") == want and got.get("wrapped") == EXPECTED_WRAPPED and not got.get("wrong_trainable")
        ranks[r] = {**got, "expected": want, "ok": ok}
    kinds = {tuple(e.get("wrapped_kinds", ())) for e in counts.get("ranks", {}).values() if "counts" in e}
    judged = {"ranks": ranks, "device_name": numeric.get("device_name"), "numeric_error": numeric.get("error"),
              "wrapped_kinds": sorted(set().union(*kinds)) if kinds else [], "targets_ok": kinds == {TARGETS}}
    if "init_max_diff" in numeric:
        merge = numeric["merge"]
        merge["ok"] = ("max_diff" in merge and merge["lora_effect"] > 0
                       and merge["max_diff"] <= MERGE_RTOL * max(1.0, merge["scale"]))
        judged.update(init_max_diff=numeric["init_max_diff"], init_exact=numeric["init_max_diff"] == 0.0,
                      frozen_base=numeric["frozen_base"], base_changed=numeric["base_changed"], merge=merge,
                      timing_ms=numeric["timing_ms"])
    return judged


def run_all(targets: list[Path], settings: HarnessSettings, log=print) -> dict:
    """Every notebook under `targets` (files or folders), in order; returns the JSON report."""
    import torch
    device = settings.resolved_device()
    expected = reference_counts(BASE_BERT, settings.ranks)  # counts are always at bert-base's shape
    rows = []
    for target in targets:
        try:
            paths = find_notebooks(target)
        except SubmissionError as error:
            rows.append({"submission": str(target), "path": str(target), "problem": error.student_message})
            continue
        for path in paths:
            name = str(path.relative_to(target)) if target.is_dir() else str(target)
            log(f"[harness] {name} ...")
            rows.append(run_one(path, settings, device, expected, name))
    config = settings.resolved_config(device)
    return {"device": device, "config": config, "bert_config": CONFIGS[config],
            "settings": dataclasses.asdict(settings), "torch": torch.__version__, "expected_counts": expected,
            "submissions": rows}


def _plain(text, limit: int) -> str:
    """One line of table-safe text: no pipes, no backticks (a cut code span would break the table)."""
    return " ".join(str(text).split())[:limit].replace("|", "/").replace("`", "'")


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def _count_cell(entry: dict) -> str:
    if "counts" not in entry:
        return f"✗ error: {_plain(entry.get('error', '?'), 60)}"
    total, trainable = entry["counts"]
    cell = f"{_mark(entry['ok'])} {trainable:,} / {total:,}"
    return cell if entry["ok"] else cell + f" (want {entry['expected'][1]:,} / {entry['expected'][0]:,})"


def _row(row: dict, ranks: list[str]) -> str:
    name = row["submission"].replace("|", "\\|")
    if row.get("problem"):
        return f"| {name} |" + " |" * (len(ranks) + 5) + f" {_plain(row['problem'], 200)} |"
    cells = [_count_cell(row["ranks"][r]) for r in ranks]
    own = row["lora_config"]
    notes = [f"config r={own['r']}, alpha={own['lora_alpha']}, targets={','.join(own['target_modules'])}"]
    if not row.get("targets_ok"):
        notes.append(f"✗ wraps {','.join(row.get('wrapped_kinds') or ['nothing'])}, not query,value")
    if row.get("config_problem"):
        notes.append(f"config cell unreadable, the course's used: {_plain(row['config_problem'], 80)}")
    if "init_max_diff" not in row:
        error = _plain(row.get("numeric_error") or "no LoRA model", 120)
        return f"| {name} | " + " | ".join(cells) + " |" * 6 + " " + "; ".join(notes + [error]) + " |"
    merge, timing = row["merge"], row["timing_ms"]
    merged = f"{_mark(merge['ok'])} {merge.get('method', 'failed')}, Δ {merge['max_diff']:.1e}" if "max_diff" in merge \
        else f"✗ {_plain(merge.get('error', ''), 60)}"
    frozen = "✓" if row["frozen_base"] else f"✗ {', '.join(row['base_changed'][:2])}"
    slower = 100 * (timing["train_lora"] / timing["train_base"] - 1)
    merged_ms = f"{timing['eval_merged']:.1f}" if "eval_merged" in timing else "—"
    cells += [f"{_mark(row['init_exact'])} {row['init_max_diff']:.1e}", frozen, merged,
              f"{timing['train_base']:.1f} → {timing['train_lora']:.1f} ({slower:+.0f}%)",
              f"{timing['eval_base']:.1f} / {timing['eval_lora']:.1f} / {merged_ms}"]
    return f"| {name} | " + " | ".join(cells) + " | " + "; ".join(notes) + " |"


def markdown(report: dict) -> str:
    ranks = list(report["expected_counts"])
    devices = sorted({r["device_name"] for r in report["submissions"] if r.get("device_name")})
    head = (f"LoRA harness, each notebook with its own config cell: counts at bert-base's shape (meta device), "
            f"numerics on the `{report['config']}` BERT config, device `{report['device']}` "
            f"({', '.join(devices) or 'no run'}), torch {report['torch']}. Counts are trainable / total (✓: also "
            f"{EXPECTED_WRAPPED} layers wrapped, only LoRA and the classifier trainable); initial Δ is max |logits "
            f"LoRA − logits base| at the config's r (must be 0); forward times are medians in ms.")
    header = ("| submission | " + " | ".join(f"r={r}" for r in ranks) + " | initial Δ | base frozen | merge "
              "| train fwd base → LoRA | eval base / LoRA / merged | notes |")
    rule = "|" + "---|" * (len(ranks) + 7)
    return "\n".join([head, "", header, rule] + [_row(row, ranks) for row in report["submissions"]])


def main(argv: list[str] | None = None) -> int:
    defaults = HarnessSettings()
    parser = argparse.ArgumentParser(prog="python -m autograder.staff.gpu_harness", description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="+", type=Path, help="notebooks, or folders searched for *.ipynb")
    parser.add_argument("--device", default=defaults.device, choices=("auto", "cuda", "cpu"))
    parser.add_argument("--config", default=defaults.config, choices=("auto", *sorted(CONFIGS)),
                        help="the numeric checks' model (auto: base on cuda, small on cpu)")
    parser.add_argument("--json", type=Path, help="also write the full report here")
    parser.add_argument("--memory-mb", type=int, default=defaults.memory_mb, help="sandbox memory limit")
    args = parser.parse_args(argv)
    settings = HarnessSettings(device=args.device, config=args.config, memory_mb=args.memory_mb)
    report = run_all(args.targets, settings, log=lambda message: print(message, file=sys.stderr))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
