"""Corpus notebooks graded in the simulated Gradescope box (tests/gradescope_box.py: 768 MiB and half a core around
everything, Docker's seccomp and capabilities, cold page cache, a fresh overlay per grading). Root only.

    .venv/bin/python benchmarks/box_corpus.py [--only GLOB,GLOB] [--pairs] [--jobs N] [--keep DIR]

Each notebook's expectation is test_corpus.py's hand-written EXPECTED_FAILURES (the tests it must fail, the tests
it may fail), turned into points with the assignment's rubric.yml. A row matches when, in every box it was graded
in, the failed tests lie between the two, the score is the sum of the passed tests' points and the cheap checks
the corpus tests state hold: no `needs_review` for a notebook that deserves full marks, the summary of the course
notebooks says "without errors" and nothing about ctypes, the staff log names the measurement's policy layers
(seccomp, Landlock, the torch.optim guard), the fallback sandbox (the box refuses namespaces) and a start-up
one step at a time (the 768 MiB box leaves no room to overlap it with the sandbox).
attack_network's row also mismatches when it reached a listener on the host's loopback: the fallback's notebook
run has the container's network (docs/trust_model.md), and the box, as Docker, gives the container a loopback of
its own.

--pairs grades the chosen notebooks again, two boxes at once (neighbours in --only's order side by side, an odd
last one beside the first): two containers on one host share its uids, which the fallback's fresh uid per
run (autograder/supervisor/runusers.py) must keep apart. --jobs N runs N of the alone gradings at once (each still
alone in its own box). Peak anonymous memory (the whole container's), CPU and wall seconds and the container's
OOM kills are the alone run's; the machine's one-minute load when that grading started is printed beside them.
Exits 1 when a row mismatches.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import os
import re
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench_box import grade  # noqa: E402  (benchmarks/ is this script's folder, first on sys.path)

from autograder.assignment import load_assignment  # noqa: E402
from tests.submissions.part1_attacks import NETWORK_PORT  # noqa: E402
from tests.test_corpus import EXPECTED_FAILURES, NEW_STYLES, _listener, _path  # noqa: E402

ASSIGNMENT = "hw4_part1"
DEFAULT = ("course_*,attack_boundary_*,attack_optim_*,attack_fork_bomb,attack_memory_hog,attack_network,"
           "attack_proc_scan,attack_leftovers_*")
CLEAN_SUMMARY = set(NEW_STYLES) | {"course_correct"}  # test_corpus's test_feedback_tells_the_truth
LAYERS = ("seccomp (measurement)", "file policy: Landlock ABI", "guard (torch.optim)")  # as test_corpus_boundary
WEIGHTS = {number: row.weight for number, row in load_assignment(ASSIGNMENT).rubric().items()}


def chosen(patterns: str) -> list[str]:
    """The corpus's names that the globs match, in the globs' order (--pairs pairs neighbours of this list)."""
    globs = [p.strip() for p in patterns.split(",") if p.strip()]
    if unmatched := [g for g in globs if not any(fnmatch.fnmatchcase(n, g) for n in EXPECTED_FAILURES)]:
        raise SystemExit(f"no corpus notebook matches {', '.join(unmatched)}")
    return list(dict.fromkeys(n for g in globs for n in EXPECTED_FAILURES if fnmatch.fnmatchcase(n, g)))


def expected(name: str) -> str:
    must, may = EXPECTED_FAILURES[name]
    full = sum(WEIGHTS.values())
    best, worst = full - sum(WEIGHTS[n] for n in must), full - sum(WEIGHTS[n] for n in may)
    return f"{best:g}" if best == worst else f"{worst:g}-{best:g}"


def staff_log(results: dict) -> str:
    return next((t["output"] for t in results["tests"] if t["name"].startswith("Grader log")), "")


def problems(name: str, figures: dict) -> list[str]:
    """What disagrees with the corpus's expectations in one grading ([] when it matches)."""
    results = figures["results"]
    if figures["score"] is None:
        return [f"no results.json (box exit {figures['exit']}): {figures['stderr'][-600:]!r}"]
    graded = [t for t in results["tests"] if t["max_score"] > 0]
    failed = {t["number"] for t in graded if t["status"] == "failed"}
    must, may = EXPECTED_FAILURES[name]
    found = []
    if not must <= failed <= may:
        found.append(f"failed tests it should pass: {sorted(failed - may)}; passed tests it should fail: "
                     f"{sorted(must - failed)}")
    if results["score"] != sum(t["max_score"] for t in graded if t["number"] not in failed):
        found.append(f"score {results['score']} is not the sum of the passed tests' points")
    review = results["extra_data"].get("needs_review", [])
    if review and not may:
        found.append(f"needs review on a notebook that deserves full marks: {review}")
    if name in CLEAN_SUMMARY:
        summary = results["output"]
        if "without errors" not in summary or "ctypes" in summary or results["extra_data"]["status"] != "ok":
            found.append(f"summary or status: {results['extra_data']['status']}: {summary[:300]!r}")
    if results["extra_data"]["status"] == "invalid":  # never run (not JSON, another assignment): no sandbox to name
        return found
    log = staff_log(results)
    layers = re.search(r"measurement policy layers: (.*)", log)
    if layers is None or not all(layer in layers.group(1) for layer in LAYERS):
        found.append(f"policy layers: {layers.group(1) if layers else 'no such line in the staff log'}")
    if not any(line.startswith("FALLBACK SANDBOX") for line in log.splitlines()):
        found.append("the staff log does not say FALLBACK SANDBOX: did the box let bubblewrap make namespaces?")
    if "start-up: one step at a time" not in log:  # 768 MiB: the grader must not hold torch beside the sandbox
        found.append("the start-up overlapped the sandbox in the 768 MiB box")
    return found


def review_flags(figures: dict) -> str:
    review = figures["results"]["extra_data"].get("needs_review", []) if figures["score"] is not None else []
    return ",".join(f"{r['number']}:{r['reason']}" for r in review) or "-"


def got(figures: dict | None) -> str:
    if figures is None:
        return ""
    return "none" if figures["score"] is None else f"{figures['score']:g}"


def grade_pairs(names: list[str], out: Path) -> dict[str, dict]:
    """Each notebook graded once more beside another one, in two boxes at once."""
    pairs = [names[i:i + 2] for i in range(0, len(names), 2)]
    if len(pairs[-1]) == 1:
        pairs[-1].append(names[0])
    beside: dict[str, dict] = {}
    for number, (first, second) in enumerate(pairs):
        with ThreadPoolExecutor(2) as pool:
            jobs = [pool.submit(grade, _path(name), ASSIGNMENT, out / f"pair{number}-{side}-{name}.json")
                    for side, name in enumerate((first, second))]
            for name, job in zip((first, second), jobs):
                figures = job.result()
                beside.setdefault(name, figures)
                print(f"  pair {number}: {name}: {got(figures)} ({figures['wall']} s)", file=sys.stderr, flush=True)
    return beside


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=DEFAULT, help="comma-separated globs over the corpus's names")
    parser.add_argument("--pairs", action="store_true", help="also grade them two boxes at once")
    parser.add_argument("--jobs", type=int, default=1, help="alone gradings at once (each in its own box)")
    parser.add_argument("--keep", type=Path, help="write the results.json files here (else a temporary folder)")
    options = parser.parse_args()
    names = chosen(options.only)
    print(f"{len(names)} notebooks; {os.cpu_count()} cores, load {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="box-corpus-") as scratch, contextlib.ExitStack() as stack:
        out = options.keep or Path(scratch)
        out.mkdir(parents=True, exist_ok=True)
        reached: list[str] | None = None
        if "attack_network" in names:
            try:
                reached = stack.enter_context(_listener(NETWORK_PORT))
            except OSError as error:
                print(f"note: port {NETWORK_PORT} is taken ({error}): attack_network's reach is unchecked")

        def alone(name: str) -> dict:
            figures = grade(_path(name), ASSIGNMENT, out / f"alone-{name}.json")
            print(f"  alone: {name}: {got(figures)} ({figures['wall']} s)", file=sys.stderr, flush=True)
            return figures

        with ThreadPoolExecutor(max(1, options.jobs)) as pool:
            first = dict(zip(names, pool.map(alone, names)))
        beside = grade_pairs(names, out) if options.pairs else {}
        print(f"{'notebook':<36} {'expected':>8} {'alone':>6} {'pair':>6} {'anon MB':>7} {'CPU s':>6} "
              f"{'wall s':>6} {'OOM':>3} {'load':>5}  match  needs_review")
        mismatches: dict[str, list[str]] = {}
        for name in names:
            figures = first[name]
            found = problems(name, figures)
            if name == "attack_network" and reached:
                found.append(f"reached the host's loopback listener {len(reached)} time(s): the box's network "
                             "namespace is not its own?")
            if name in beside:
                found += [f"two at once: {problem}" for problem in problems(name, beside[name])]
            if found:
                mismatches[name] = found
            flags = review_flags(figures) + (f" / pair {review_flags(beside[name])}" if name in beside else "")
            print(f"{name:<36} {expected(name):>8} {got(figures):>6} {got(beside.get(name)):>6} "
                  f"{figures['anon']:>7.0f} {figures['cpu']:>6.1f} {figures['wall']:>6.1f} {figures['oom']:>3} "
                  f"{figures['load']:>5}  "
                  f"{'no' if found else 'yes':<5}  {flags}", flush=True)
        for name, found in mismatches.items():
            print(f"\n{name}:\n  " + "\n  ".join(found))
        print(f"\n{len(names) - len(mismatches)}/{len(names)} match; load now "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
