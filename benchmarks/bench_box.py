"""Gradings in the simulated Gradescope box (tests/gradescope_box.py: 768 MiB and half a core around everything,
Docker's seccomp and capabilities, cold page cache, fresh overlay): score, peak memory of the whole container
(as the limit counts it, and anonymous), CPU seconds, wall seconds, OOM kills. Root only.

    .venv/bin/python benchmarks/bench_box.py [--runs 3] [--only part1,part2,slow_gd]

- part1 / part2: the solution notebooks, `--runs` cold runs each (each a fresh box).
- slow_gd: the Part 1 solution with GD's gradient as a Python loop over the samples (correct, ~100x slower),
  graded alone in the box, then two at a time on this machine (two graders at once, as `--jobs 2` runs them;
  outside the box: two boxes at once would share the fallback's sandbox uid, which the kernel counts per host).
  It must score 40 every time.
The machine's load is printed with each row: wall seconds mean little on a busy machine, CPU seconds more.
In the box rows, peak and CPU are the whole container's (its cgroup); in the no-box rows, the grader's own rusage
(its largest process, and the CPU of the descendants it reaped: not the sandbox's, which bubblewrap reaps).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from gradescope_box import Box  # noqa: E402

SOLUTIONS = {"part1": ("hw4_part1", ROOT / "solution/notebooks/hw4_part1.ipynb", 40),
             "part2": ("hw4_part2", ROOT / "solution/notebooks/hw4_part2.ipynb", 10)}
VECTORISED = '''    def calculate_gradient(self, X, y, model):
        return _squared_error_gradient(X, y, model)

    def apply_gradient(self, grads, model):
        grad_w, grad_b = grads'''
PYTHON_LOOP = '''    def calculate_gradient(self, X, y, model):
        grad_w, grad_b = torch.zeros(1, 2), torch.tensor(0.0)
        for i in range(len(X)):  # one sample at a time, as some students write it
            residual = (X[i] @ model.w.T + model.b - y[i]).squeeze()
            grad_w = grad_w + 2 * residual * X[i]
            grad_b = grad_b + 2 * residual
        return grad_w / len(X), grad_b / len(X)

    def apply_gradient(self, grads, model):
        grad_w, grad_b = grads'''


def slow_gd_notebook(folder: Path) -> Path:
    """The Part 1 solution whose GD loops over the samples in Python (same gradient, same trajectory)."""
    notebook = json.loads(SOLUTIONS["part1"][1].read_text())
    changed = 0
    for cell in notebook["cells"]:
        source = "".join(cell["source"])
        if "class GD" in source and VECTORISED in source:
            cell["source"] = source.replace(VECTORISED, PYTHON_LOOP, 1)
            changed += 1
    if changed != 1:
        raise ValueError("the Part 1 solution's GD cell changed: update VECTORISED in bench_box.py")
    path = folder / "slow_gd" / "hw4_part1.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(notebook))
    return path


def grade(notebook: Path, assignment: str, out: Path) -> dict:
    """One grading in a fresh box: the summary figures, the results.json dict ("results") and the box's stderr."""
    env = {**os.environ, "AUTOGRADER_SECRET": os.environ.get("AUTOGRADER_SECRET", "bench box")}
    env.pop("AUTOGRADER_DISABLE", None)
    load = os.getloadavg()[0]
    run = Box().run([sys.executable, "-m", "autograder", "--submission", str(notebook), "--results", str(out),
                     "--assignment", assignment], env=env)
    results = json.loads(out.read_text()) if out.exists() else {"score": None, "extra_data": {}, "tests": []}
    return {"score": results["score"], "review": len(results["extra_data"].get("needs_review", [])),
            "failed": [t.get("number") for t in results["tests"] if t["status"] == "failed" and t["max_score"]],
            "peak": run.peak_mb, "anon": run.peak_anonymous_mb, "cpu": run.cpu_seconds, "wall": run.wall_seconds,
            "oom": run.oom_kills, "load": round(load, 1), "exit": run.returncode, "results": results,
            "stderr": run.stderr}


def grade_plain(notebook: Path, assignment: str, out: Path) -> dict:
    """A grading on this machine as it is (no box): the sandbox's own mode, its own slot."""
    import subprocess
    import time
    env = {**os.environ, "AUTOGRADER_SECRET": os.environ.get("AUTOGRADER_SECRET", "bench box")}
    load, started = os.getloadavg()[0], time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "autograder", "--submission", str(notebook), "--results",
                                str(out), "--assignment", assignment], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    results = json.loads(out.read_text()) if out.exists() else {"score": None, "extra_data": {}, "tests": []}
    return {"score": results["score"], "review": len(results["extra_data"].get("needs_review", [])),
            "failed": [t.get("number") for t in results["tests"] if t["status"] == "failed" and t["max_score"]],
            "peak": usage.ru_maxrss / 1024, "anon": float("nan"), "cpu": usage.ru_utime + usage.ru_stime,
            "wall": time.monotonic() - started, "oom": 0, "load": round(load, 1), "exit": process.returncode}


def row(label: str, full: float, figures: dict) -> str:
    mark = "ok" if figures["score"] == full else f"LOST POINTS in {', '.join(figures['failed'][:12])}"
    return (f"{label:<24} {figures['score']!s:>5}/{full:<3} {figures['peak']:>7.0f} {figures['anon']:>7.0f} "
            f"{figures['cpu']:>7.1f} {figures['wall']:>7.1f} {figures['oom']:>4} {figures['review']:>6} "
            f"{figures['load']:>5}  {mark}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="part1,part2,slow_gd")
    parser.add_argument("--keep", type=Path, help="write the results.json files here (else a temporary folder)")
    options = parser.parse_args()
    chosen = set(options.only.split(","))
    print(f"{'grading':<24} {'score':>9} {'peak MB':>7} {'anon MB':>7} {'CPU s':>7} {'wall s':>7} {'OOM':>4} "
          f"{'review':>6} {'load':>5}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-box-") as folder:
        out = options.keep or Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        for key in ("part1", "part2"):
            if key not in chosen:
                continue
            assignment, notebook, full = SOLUTIONS[key]
            for number in range(options.runs):
                print(row(f"{key} solution #{number + 1}", full,
                          grade(notebook, assignment, out / f"{key}-{number}.json")), flush=True)
        if "slow_gd" in chosen:
            slow = slow_gd_notebook(out)
            print(row("slow GD alone", 40, grade(slow, "hw4_part1", out / "slow-alone.json")), flush=True)
            pair: list[dict] = [{}, {}]
            threads = [threading.Thread(target=lambda i=i: pair.__setitem__(
                i, grade_plain(slow, "hw4_part1", out / f"slow-pair-{i}.json"))) for i in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for i, figures in enumerate(pair):
                print(row(f"slow GD pair, no box #{i + 1}", 40, figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
