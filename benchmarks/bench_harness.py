"""Time and peak memory of the Part 2 harness's measurements per notebook, today's way against the new one.

    python benchmarks/bench_harness.py [NOTEBOOK] [--repeat N]

Each mode runs in a fresh Python process (so peak RSS is its own), single-threaded as in the sandbox, on the
notebook's LoRA code loaded as the measurement process loads it:
- `real bert-base` (the harness before the meta device): a real random-init bert-base, LoRA applied to a copy per
  rank (1, 16, 256) for the counts, then the numeric checks and timings on bert-base (8 x 64 tokens on a CPU);
- `meta + small` (now): the counts on bert-base's shape on the meta device, the numeric checks on the small config.
A third mode loads the notebook and measures nothing: what the imports alone cost. Prints seconds (process start
to end, imports included, and the measuring alone), peak RSS in MB, and the counts each mode found.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = r'''
import json, sys, time, resource, copy
import torch
torch.set_num_threads(1)
from autograder.notebook import load_notebook
from autograder.assignments.hw4_part2 import SMALL_BERT
from autograder.assignments.hw4_part2.config_cell import read_config
from autograder.assignments.hw4_part2.harness_probes import measure_counts, measure_numeric
from autograder.assignments.hw4_part2.probes import p2_apply, p2_bert, p2_counts, p2_make_config
from autograder.staff.gpu_harness import BASE_BERT, BATCHES
from tests.submissions.hw4_part2.inprocess import lora_functions
mode, path = sys.argv[1], sys.argv[2]
notebook = load_notebook(__import__("pathlib").Path(path))
Config, get = lora_functions(notebook)
own = read_config(notebook).effective.to_json()
started = time.perf_counter()
if mode == "real":
    base = p2_bert(BASE_BERT, 1337)
    counts = {}
    for r in (1, 16, 256):
        model, _ = p2_apply(get, copy.deepcopy(base), p2_make_config(Config, r, 32, 0.1, own["target_modules"]))
        counts[str(r)] = p2_counts(model)
        del model
    numeric = measure_numeric(Config, get, {"config": BASE_BERT, "seed": 1337, "student": own, "device": "cpu",
                                            **BATCHES["base", "cpu"]})
elif mode == "none":
    counts, numeric = {}, {"init_max_diff": None, "frozen_base": None}
else:
    result = measure_counts(Config, get, {"config": BASE_BERT, "ranks": [1, 16, 256], "student": own})
    counts = {r: e["counts"] for r, e in result["ranks"].items()}
    numeric = measure_numeric(Config, get, {"config": SMALL_BERT, "seed": 1337, "student": own, "device": "cpu",
                                            **BATCHES["small", "cpu"]})
print(json.dumps({"measure_s": time.perf_counter() - started, "counts": counts,
                  "init_max_diff": numeric["init_max_diff"], "frozen_base": numeric["frozen_base"]}))
'''
MODES = {"none": "imports and definitions only", "real": "real bert-base (before)", "meta": "meta + small (now)"}


def run(mode: str, notebook: Path) -> dict:
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(notebook)], cwd=ROOT, capture_output=True,
                          text=True, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{mode} failed:\n{done.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest child so far, in KB
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # RUSAGE_CHILDREN reports the largest child yet: run the heavier mode second or trust only a larger value.
    return {**result, "seconds": seconds, "peak_rss_mb": peak / 1024, "peak_is_own": peak > before}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", nargs="?", type=Path, default=ROOT / "solution/notebooks/hw4_part2.ipynb")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    print(f"notebook: {args.notebook}\n\n| mode | seconds (process) | of which measuring | peak RSS MB | counts r=1/16/256 |")
    print("|---|---|---|---|---|")
    for _ in range(args.repeat):
        for mode in ("none", "meta", "real"):  # light first: RUSAGE_CHILDREN keeps the maximum over children
            r = run(mode, args.notebook)
            counts = " / ".join(f"{c[1]:,} of {c[0]:,}" for c in r["counts"].values()) or "—"
            peak = f"{r['peak_rss_mb']:.0f}" if r["peak_is_own"] else f"<= {r['peak_rss_mb']:.0f}"
            print(f"| {MODES[mode]} | {r['seconds']:.1f} | {r['measure_s']:.1f} | {peak} | {counts} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
