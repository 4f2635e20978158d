"""The Part 2 GPU harness: each submission's LoRA on a BERT of bert-base's shape, for graders.

    python -m autograder.gpu_harness NOTEBOOK_OR_FOLDER... [--device auto|cuda|cpu] [--json FILE]
                                     [--config base|small] [--memory-mb MB]

Per submission, in the grader's sandbox (only the notebook's imports and definitions run; nothing downloads):
trainable / total parameters at r = 1, 16, 256 against the reference's, the largest |logits with LoRA - logits of
the base| of a fresh model (must be exactly 0), whether an Adam step leaves every pretrained weight bit-identical,
whether merging B A into W0 keeps the outputs, and forward times of the base and LoRA models. The model is
random-init `BertForSequenceClassification(BertConfig(num_labels=5))`; `--config small` is the CI-sized one.
Prints a Markdown table and writes everything as JSON. One bad submission costs its row, never the batch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import traceback
from pathlib import Path

from autograder.assignment import ASSIGNMENTS, Call, load_assignment
from autograder.assignments.hw4_part2 import SMALL_BERT, notebook_constants
from autograder.assignments.hw4_part2.probes import p2_counts
from autograder.errors import SubmissionError
from autograder.grade import PROTECTED, ROOT, build_request
from autograder.notebook import find_notebooks, load_notebook
from autograder.sandbox import Limits, run_worker

__all__ = ["HarnessSettings", "BASE_BERT", "EXPECTED_BASE_COUNTS", "reference_counts", "run_one", "run_all",
           "markdown", "main"]

BASE_BERT = {"vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
             "intermediate_size": 3072, "max_position_embeddings": 512, "num_labels": 5}  # BertConfig()'s defaults
# HW4_INTERFACE.md: rank -> (trainable, total) for bert-base-uncased with 5 labels.
EXPECTED_BASE_COUNTS = {1: (40_709, 109_522_949), 16: (593_669, 110_075_909), 256: (9_441_029, 118_923_269)}
CONFIGS = {"base": BASE_BERT, "small": SMALL_BERT}
# The course's batch (64 x 128 tokens) on a GPU; on a CPU, bert-base at that size takes ~30 s a pass.
BATCHES = {("base", "cuda"): {"rows": 64, "length": 128, "repeats": 20, "warmup": 3},
           ("base", "cpu"): {"rows": 8, "length": 64, "repeats": 3, "warmup": 1},
           ("small", "cuda"): {"rows": 64, "length": 128, "repeats": 20, "warmup": 3},
           ("small", "cpu"): {"rows": 8, "length": 32, "repeats": 5, "warmup": 1}}
# bert-base plus its LoRA copies needs a few GB of host memory. Where the sandbox has no cgroup, memory_mb caps
# address space, and CUDA reserves address space for all of the GPU's memory: hence the large CUDA default.
LIMITS = {"base": Limits(wall_seconds=900, cell_timeout=870, memory_mb=12_000),
          "small": Limits(wall_seconds=300, cell_timeout=270, memory_mb=2_000)}
CUDA_MEMORY_MB = 262_144
MERGE_RTOL = 1e-4  # merged vs unmerged logits, relative to the largest logit


@dataclasses.dataclass(frozen=True)
class HarnessSettings:
    device: str = "auto"  # "auto" (cuda when available), "cuda" or "cpu"
    config: str = "base"  # "base" (bert-base's shape) or "small" (CI)
    ranks: tuple[int, ...] = (1, 16, 256)  # LoRA ranks whose parameter counts are checked
    main_rank: int = 16  # the rank of the delta, step, merge and timing checks
    seed: int = 1337  # model init and inputs
    memory_mb: int | None = None  # sandbox memory; None: the config's default

    def __post_init__(self):
        if self.device not in ("auto", "cuda", "cpu"):
            raise ValueError(f"device must be auto, cuda or cpu, got {self.device!r}")
        if self.config not in CONFIGS:
            raise ValueError(f"config must be one of {sorted(CONFIGS)}, got {self.config!r}")
        if self.main_rank not in self.ranks:
            raise ValueError(f"main_rank {self.main_rank} must be one of the ranks {self.ranks}")

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"

    def limits(self, device: str) -> Limits:
        memory_mb = self.memory_mb or (CUDA_MEMORY_MB if device == "cuda" else LIMITS[self.config].memory_mb)
        return dataclasses.replace(LIMITS[self.config], memory_mb=memory_mb)

    def probe_args(self, device: str) -> dict:
        return {"config": CONFIGS[self.config], "seed": self.seed, "ranks": list(self.ranks),
                "main_rank": self.main_rank, "lora_alpha": 32, "lora_dropout": 0.1, "device": device,
                "preload": _cuda_driver_paths() if device == "cuda" else [], **BATCHES[self.config, device]}


def _cuda_driver_paths() -> list[str]:
    """The CUDA driver libraries this process loaded. The sandbox scrubs LD_LIBRARY_PATH, through which some
    machines find the driver; the kernel loads them by path before its first CUDA call."""
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


def _request(notebook, call: Call) -> dict:
    """What grade.py sends the worker, with the harness's probes after the assignment's."""
    assignment = load_assignment("hw4_part2")
    setup = Call("setup", "probe_setup", {"constants": notebook_constants(notebook), "device": call.args["device"]})
    probes = assignment.probes_source + "\n\n" + (assignment.folder / "harness_probes.py").read_text()
    return build_request(notebook, assignment, [setup, call], probes_source=probes)


def run_one(path: Path, settings: HarnessSettings, device: str, expected: dict[str, list[int]],
            name: str | None = None) -> dict:
    """One submission's row; every failure becomes the row's `problem`, never an exception."""
    row = {"submission": name or path.name, "path": str(path), "problem": None}
    try:
        notebook = load_notebook(path)
        limits = settings.limits(device)
        call = Call("harness", "probe_harness", settings.probe_args(device), timeout=limits.cell_timeout)
        protected = [ROOT / p for p in load_assignment("hw4_part2").reference_paths + PROTECTED] + [ASSIGNMENTS]
        run = run_worker(_request(notebook, call), limits, protected)
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
    observation = run.reply.get("probes", {}).get("harness", {})
    if not observation.get("ok"):
        row["problem"] = str(observation.get("error", "no result"))[:800]
        return row
    row.update(_judge(observation["value"], expected))
    return row


def _judge(value: dict, expected: dict[str, list[int]]) -> dict:
    ranks = {}
    for r, want in expected.items():
        got = value.get("ranks", {}).get(r, {"error": "not measured"})
        ranks[r] = {**got, "expected": want, "ok": got.get("counts") == want}
    judged = {"ranks": ranks, "config_error": value.get("config_error"), "device_name": value.get("device_name")}
    if "init_max_diff" in value:
        merge = value["merge"]
        merge["ok"] = ("max_diff" in merge and merge["lora_effect"] > 0
                       and merge["max_diff"] <= MERGE_RTOL * max(1.0, merge["scale"]))
        judged.update(init_max_diff=value["init_max_diff"], init_exact=value["init_max_diff"] == 0.0,
                      frozen_base=value["frozen_base"], base_changed=value["base_changed"], merge=merge,
                      timing_ms=value["timing_ms"])
    return judged


def run_all(targets: list[Path], settings: HarnessSettings, log=print) -> dict:
    """Every notebook under `targets` (files or folders), in order; returns the JSON report."""
    import torch
    device = settings.resolved_device()
    expected = reference_counts(CONFIGS[settings.config], settings.ranks)
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
    return {"device": device, "config": settings.config, "bert_config": CONFIGS[settings.config],
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
    notes = [f"MyLoraConfig failed: {_plain(row['config_error'], 80)}"] if row.get("config_error") else []
    if "init_max_diff" not in row:
        return f"| {name} | " + " | ".join(cells) + " |" * 6 + " " + "; ".join(notes + ["no LoRA model at r=16"]) + " |"
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
    head = (f"LoRA harness: `{report['config']}` BERT config, device `{report['device']}` "
            f"({', '.join(devices) or 'no run'}), torch {report['torch']}. Counts are trainable / total; "
            f"initial Δ is max |logits LoRA − logits base| at r = 16 (must be 0); forward times are medians in ms.")
    header = ("| submission | " + " | ".join(f"r={r}" for r in ranks) + " | initial Δ | base frozen | merge "
              "| train fwd base → LoRA | eval base / LoRA / merged | notes |")
    rule = "|" + "---|" * (len(ranks) + 7)
    return "\n".join([head, "", header, rule] + [_row(row, ranks) for row in report["submissions"]])


def main(argv: list[str] | None = None) -> int:
    defaults = HarnessSettings()
    parser = argparse.ArgumentParser(prog="python -m autograder.gpu_harness", description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="+", type=Path, help="notebooks, or folders searched for *.ipynb")
    parser.add_argument("--device", default=defaults.device, choices=("auto", "cuda", "cpu"))
    parser.add_argument("--config", default=defaults.config, choices=sorted(CONFIGS))
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
