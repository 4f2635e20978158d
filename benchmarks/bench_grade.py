"""Wall time and peak memory of the whole process tree: grading one notebook vs. plainly executing it.

    .venv/bin/python benchmarks/bench_grade.py [--runs 5] [--notebook solution/notebooks/hw4_part1.ipynb]

Both are started as subprocesses with OMP_NUM_THREADS as the grader ships it (1 in the sandbox; the baseline gets
the same), and sampled every 20 ms through /proc over the process and all its descendants (the sandboxed worker
and kernel included, whatever user they run as). Two memory figures per sample:
  * tree RSS, the sum of each process's resident set: pages shared between processes count once per process, so
    it overstates a tree whose processes share memory (the grader's warm start forks the worker and kernel);
  * tree PSS, the sum of proportional set sizes (a shared page split among its sharers): what the tree occupies.
Prints the medians of the peaks and the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLAIN = """
import sys, nbformat, nbclient
nb = nbformat.read(sys.argv[1], as_version=4)
nbclient.NotebookClient(nb, timeout=600, kernel_name="python3").execute()
"""


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _proc_mb(path: str, field: str) -> float:
    """A `field:  N kB` line of a /proc file, in MB (0 once the process is gone)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_memory_mb(root: int) -> tuple[float, float]:
    """(sum of RSS, sum of PSS) over `root` and its descendants."""
    tree, rss, pss, stack = _children(), 0.0, 0.0, [root]
    while stack:
        pid = stack.pop()
        rss += _proc_mb(f"/proc/{pid}/status", "VmRSS:")
        pss += _proc_mb(f"/proc/{pid}/smaps_rollup", "Pss:")
        stack.extend(tree.get(pid, []))
    return rss, pss


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall seconds, peak tree RSS MB, peak tree PSS MB) of one run."""
    started = time.monotonic()
    process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak_rss = peak_pss = 0.0
    while process.poll() is None:
        rss, pss = tree_memory_mb(process.pid)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(0.02)
    if process.returncode != 0:
        raise SystemExit(f"{argv} failed with exit {process.returncode}")
    return time.monotonic() - started, peak_rss, peak_pss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--notebook", type=Path, default=ROOT / "solution/notebooks/hw4_part1.ipynb")
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    results_file = Path(tempfile.mkdtemp()) / "results.json"
    commands = {
        "plain nbclient execution": [sys.executable, "-c", PLAIN, str(args.notebook)],
        "run_autograder (grading)": [str(ROOT / "run_autograder"), "--submission", str(args.notebook),
                                     "--results", str(results_file)],
    }
    runs: dict[str, list[tuple[float, float, float]]] = {label: [] for label in commands}
    for _ in range(args.runs):  # interleaved, so that both see the same background load
        for label, argv in commands.items():
            runs[label].append(measure(argv, env))
    medians = {}
    for label, measured in runs.items():
        medians[label] = tuple(statistics.median(r[i] for r in measured) for i in range(3))
        wall, rss, pss = medians[label]
        print(f"{label:28s} wall {wall:6.2f} s   peak tree RSS {rss:5.0f} MB   peak tree PSS {pss:5.0f} MB   "
              f"(median of {args.runs}; walls {', '.join(f'{r[0]:.2f}' for r in measured)})", flush=True)
    (plain_s, plain_rss, plain_pss), (grade_s, grade_rss, grade_pss) = medians.values()
    print(f"grading / plain: {grade_s / plain_s:.2f}x wall, {grade_rss / plain_rss:.2f}x peak RSS, "
          f"{grade_pss / plain_pss:.2f}x peak PSS (goals: <= 1.25x wall, <= 768 MB)")


if __name__ == "__main__":
    main()
