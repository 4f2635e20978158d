"""Benchmark batch grading: N generated Part 1 submissions (correct, wrong and faulty) graded with
`./run_autograder --submissions`, against the same notebooks executed serially with plain nbclient (no grading).

    python benchmarks/bench_batch.py                    # 100 submissions, 2 jobs, baseline and phase timings
    python benchmarks/bench_batch.py --count 20 --skip-baseline

Prints submissions per minute, the peak RSS of the batch's whole process tree (sampled from /proc; shared pages
count once per process, so it overstates), statuses and scores per kind of submission, the baseline's time, and
where one submission's time goes. Goal: 100 submissions in at most 3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solution/notebooks/hw4_part1.ipynb"
TEMPLATE = ROOT / "student_template/hw4_part1.ipynb"
PAGE = os.sysconf("SC_PAGE_SIZE")

# kind -> (base, [(cell id, old text, new text)]); every old text must be present, so no variant is silently correct.
VARIANTS = {
    "correct": ("solution", []),
    "correct_reordered_imports": ("solution", [("imports", "import torch\nimport torch.nn as nn",
                                                "import torch.nn as nn\nimport torch")]),
    "wrong_adam_no_bias_correction": ("solution", [("Adam", "m / (1 - self.beta1 ** self.t)", "m"),
                                                   ("Adam", "v / (1 - self.beta2 ** self.t)", "v")]),
    "wrong_sgd_full_batch": ("solution", [("SGD", "_squared_error_gradient(*_one_sample(X, y), model)",
                                           "_squared_error_gradient(X, y, model)")]),
    "wrong_gd_missing_factor_2": ("solution", [("GD", "grad_w = 2 * residual.T", "grad_w = residual.T"),
                                               ("GD", "grad_b = 2 * residual.mean()", "grad_b = residual.mean()")]),
    "wrong_loss_sum": ("solution", [("LR_MSE", "torch.mean((y_true - y_pred) ** 2)",
                                     "torch.sum((y_true - y_pred) ** 2)")]),
    "wrong_adagrad_accumulator_zero": ("solution", [("AdaGrad", "torch.full((1, 2), 0.1), torch.tensor(0.1)",
                                                     "torch.zeros(1, 2), torch.tensor(0.0)")]),
    "faulty_template": ("template", []),
    "faulty_syntax_error": ("solution", [("Adam", "self.t += 1", "self.t += = 1")]),
    "faulty_raises_in_adam": ("solution", [("Adam", "self.t += 1", "self.t += 1\n        raise RuntimeError('oops')")]),
    "faulty_kernel_exit": ("solution", [("SGD_eval", "optimizer = SGD()", "import os; os._exit(1)\noptimizer = SGD()")]),
    "faulty_memory_hog": ("solution", [("AdaGrad_eval", "optimizer = AdaGrad(lr=0.1)",
                                        "hog = torch.ones(2**29)  # 2 GB, over the memory limit\n"
                                        "optimizer = AdaGrad(lr=0.1)")]),
    "faulty_not_json": ("text", []),
}
MIX = ["correct"] * 3 + ["correct_reordered_imports"] + [k for k in VARIANTS if k.startswith(("wrong", "faulty"))]


def generate(folder: Path, count: int) -> dict[str, str]:
    """Write `count` notebooks (each distinct, so each gets its own hidden seeds); return file stem -> kind."""
    bases = {"solution": nbformat.read(SOLUTION, as_version=4), "template": nbformat.read(TEMPLATE, as_version=4)}
    folder.mkdir(parents=True, exist_ok=True)
    kinds = {}
    for index in range(count):
        kind = MIX[index % len(MIX)]
        stem = f"s{index:03d}_{kind}"
        kinds[stem] = kind
        base, edits = VARIANTS[kind]
        if base == "text":
            (folder / f"{stem}.ipynb").write_text(f"student {index}: this is not a notebook\n")
            continue
        notebook = copy.deepcopy(bases[base])
        cells = {cell.get("id") or cell.metadata.get("id"): cell for cell in notebook.cells}  # course shape: Colab's id
        for cell_id, old, new in edits:
            if old not in cells[cell_id].source:
                raise ValueError(f"variant {kind}: {old!r} is not in cell {cell_id}")
            cells[cell_id].source = cells[cell_id].source.replace(old, new)
        cells["imports"].source = f"# student {index}\n" + cells["imports"].source
        nbformat.write(notebook, folder / f"{stem}.ipynb")
    return kinds


class TreeRss:
    """Samples the summed RSS of a process and all its descendants (the sandbox's workers included)."""

    def __init__(self, pid: int, interval: float = 0.25):
        self.pid, self.interval, self.peak_mb = pid, interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "TreeRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            children, rss = defaultdict(list), {}
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                    rss[int(stat.parent.name)] = int((stat.parent / "statm").read_text().split()[1]) * PAGE
                except (OSError, IndexError, ValueError):
                    continue
                children[ppid].append(int(stat.parent.name))
            total, todo = 0, [self.pid]
            while todo:
                pid = todo.pop()
                total += rss.get(pid, 0)
                todo += children.get(pid, [])
            self.peak_mb = max(self.peak_mb, total / 2**20)


def run_batch(folder: Path, out: Path, jobs: int) -> tuple[float, float, float, float]:
    """(wall seconds, peak tree RSS in MB, CPU seconds of the waited-for tree, CPU seconds of the whole machine)."""
    command = [sys.executable, "-m", "autograder", "--submissions", str(folder), "--out", str(out),
               "--jobs", str(jobs), "--force", "--assignment", "hw4_part1", "--dev-secret"]  # public inputs suffice
    cpu_before, machine_before = _children_cpu(), _machine_cpu()
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    with TreeRss(process.pid) as sampler:
        output, _ = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"the batch failed (exit {process.returncode}):\n{output}")
    return time.monotonic() - started, sampler.peak_mb, _children_cpu() - cpu_before, _machine_cpu() - machine_before


def _machine_cpu() -> float:
    """Busy CPU seconds of the whole machine so far (/proc/stat). The sandbox's processes are reaped by its own
    init and zygote, not by this tree, so only this figure counts them; on an idle machine it is the batch's."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def _children_cpu() -> float:
    """User + system CPU of waited-for descendants: a figure other load on the machine does not inflate much."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


WARM = """\
import sys
from pathlib import Path
from autograder.config import from_environment
from autograder.grade import grade
for path in sys.argv[2:]:
    grade(Path(path), Path(sys.argv[1]) / (Path(path).stem + ".json"), "hw4_part1", log=lambda message: None,
          config=from_environment())
"""


def warm_sample(folder: Path, out: Path, count: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """(wall, CPU) per submission for `count` correct notebooks graded one after another, (1) each by its own
    `python -m autograder` process, and (2) all by one process, which pays the grader's start-up (python, torch,
    torch._dynamo, pytest) once, as each job slot's grader in the batch does (autograder.staff.batch_worker)."""
    paths = [str(p) for p in sorted(folder.glob("*_correct.ipynb"))[:count]]
    timed = []
    for commands in ([[sys.executable, "-m", "autograder", "--submission", path, "--results",
                       str(out / "cold" / f"{Path(path).stem}.json"), "--assignment", "hw4_part1"] for path in paths],
                     [[sys.executable, "-c", WARM, str(out / "warm"), *paths]]):
        cpu_before, started = _children_cpu(), time.monotonic()
        for command in commands:
            subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        timed.append(((time.monotonic() - started) / len(paths), (_children_cpu() - cpu_before) / len(paths)))
    return timed[0], timed[1]


def report_outcomes(out: Path, kinds: dict[str, str]) -> None:
    by_kind: dict[str, list[tuple[str, str]]] = defaultdict(list)
    with (out / "grades.csv").open(newline="") as stream:
        for row in csv.DictReader(stream):
            by_kind[kinds[row["submission"]]].append((row["status"], row["total"]))
    print(f"\n{'kind':<32} {'n':>3}  statuses / totals")
    for kind, outcomes in sorted(by_kind.items()):
        statuses = ", ".join(f"{s} {n}" for s, n in sorted(_count(s for s, _ in outcomes).items()))
        totals = ", ".join(f"{t or '-'}×{n}" for t, n in sorted(_count(t for _, t in outcomes).items()))
        print(f"{kind:<32} {len(outcomes):>3}  {statuses}; totals {totals}")


def _count(values) -> dict:
    counts: dict = defaultdict(int)
    for value in values:
        counts[value] += 1
    return dict(counts)


def worker_seconds(out: Path) -> tuple[float, float]:
    """Mean sandbox worker time and mean whole-grader time per graded (not invalid) submission."""
    worker, total = [], []
    for record in out.glob("*/batch.json"):
        results = json.loads((record.parent / "results.json").read_text())
        staff = "".join(t["output"] for t in results["tests"] if t.get("visibility") == "hidden")
        for line in staff.splitlines():
            if line.startswith("worker: ") and ", exit " in line:  # "worker: MODE sandbox, exit N, S s, ..."
                worker.append(float(line.split(", ")[2].rstrip(" s")))
                total.append(json.loads(record.read_text())["seconds"])
    return sum(worker) / max(len(worker), 1), sum(total) / max(len(total), 1)


def baseline(folder: Path) -> tuple[float, float]:
    """The same notebooks run top to bottom, one after another, in a plain kernel: no sandbox, no probes, no cases."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as the sandbox sets it; torch is far slower on a busy box without
    cpu_before, started = _children_cpu(), time.monotonic()
    for path in sorted(folder.glob("*.ipynb")):
        try:
            notebook = nbformat.read(path, as_version=4)
            NotebookClient(notebook, timeout=120, allow_errors=True, kernel_name="python3").execute()
        except Exception as error:  # not a notebook, or a kernel that died: as a grader would, move on
            print(f"  baseline: {path.name}: {type(error).__name__}", file=sys.stderr)
    return time.monotonic() - started, _children_cpu() - cpu_before


def phases() -> list[tuple[str, float]]:
    """Where one submission's time goes: the fixed costs paid by every grader process and every kernel."""
    timed = []
    code = ("import time; t = time.monotonic(); {0}; print(time.monotonic() - t)")
    for label, statement in (
            ("grader: python start + import the engine and the assignment",
             "from autograder.assignment import load_assignment; load_assignment('hw4_part1')"),
            ("grader: first torch.optim use (imports torch._dynamo), in the reference",
             "import torch; t = time.monotonic(); torch.optim.Adam([torch.zeros(1, requires_grad=True)])")):
        started = time.monotonic()
        inner = subprocess.run([sys.executable, "-c", code.format(statement)], cwd=ROOT, capture_output=True,
                               text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        timed.append((label, float(inner.stdout) if "optim" in label else time.monotonic() - started))
    cells = ["import torch", "torch.optim.Adam([torch.zeros(1, requires_grad=True)])"]
    client = NotebookClient(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]),
                            kernel_name="python3", timeout=120)
    started = time.monotonic()
    with client.setup_kernel():
        timed.append(("kernel: start an ipykernel", time.monotonic() - started))
        for index, (label, cell) in enumerate(zip(("kernel: import torch", "kernel: first torch.optim use"),
                                                  client.nb.cells)):
            started = time.monotonic()
            client.execute_cell(cell, index)
            timed.append((label, time.monotonic() - started))
    return timed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--work", type=Path, help="keep the generated notebooks and results here")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--warm-sample", type=int, default=6,
                        help="also grade this many correct notebooks serially, cold and warm (0: skip)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as scratch:
        work = args.work or Path(scratch)
        kinds = generate(work / "submissions", args.count)
        load = os.getloadavg()[0]
        seconds, peak, cpu, machine = run_batch(work / "submissions", work / "graded", args.jobs)
        cores = os.cpu_count() or 1
        print(f"batch: {args.count} submissions, {args.jobs} jobs, {cores} CPUs (load average before: {load:.1f})")
        print(f"  wall {seconds:.1f} s = {60 * args.count / seconds:.1f} submissions/min; "
              f"peak tree RSS {peak:.0f} MB; goal: {args.count} in <= 180 s")
        print(f"  machine CPU {machine:.0f} s = {machine / args.count:.2f} s per submission (the waited-for tree's "
              f"alone: {cpu:.0f} s); on {cores} idle cores that is at best {machine / cores:.0f} s for the batch")
        report_outcomes(work / "graded", kinds)
        worker, grader = worker_seconds(work / "graded")
        print(f"\nper graded submission: grader process {grader:.1f} s, of which sandbox worker {worker:.1f} s")
        if args.warm_sample:
            cold, warm = warm_sample(work / "submissions", work / "sample", args.warm_sample)
            print(f"{args.warm_sample} correct notebooks in turn, per notebook: a grader process each "
                  f"{cold[0]:.1f} s wall, {cold[1]:.2f} s CPU;\n  one warm grader process for all: "
                  f"{warm[0]:.1f} s wall, {warm[1]:.2f} s CPU")
        if not args.skip_baseline:
            plain, plain_cpu = baseline(work / "submissions")
            print(f"baseline: plain nbclient, serial, no grading: {plain:.1f} s = {60 * args.count / plain:.1f}/min "
                  f"({plain / args.count:.2f} s wall, {plain_cpu / args.count:.2f} s CPU per notebook)")
        print("\nfixed costs (one run each):")
        for label, value in phases():
            print(f"  {label:<72} {value:5.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
