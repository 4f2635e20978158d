"""run_autograder's modes. Thin: parsing here, work in grade.py (and batch.py / build.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.grade import grade
from autograder.results import console_table

ROOT = Path(__file__).resolve().parent.parent
GRADESCOPE_SUBMISSION = Path("/autograder/submission")
GRADESCOPE_RESULTS = Path("/autograder/results/results.json")
EXAMPLES = [
    ("reference solution", ROOT / "solution/notebooks/hw4_part1.ipynb"),
    ("student template", ROOT / "student_template/hw4_part1.ipynb"),
    ("Adam without bias correction", ROOT / "tests/submissions/hw4_part1/adam_no_bias_correction.ipynb"),
    ("SGD on the full batch", ROOT / "tests/submissions/hw4_part1/sgd_full_batch.ipynb"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="run_autograder",
        description="With no arguments, grade /autograder/submission as Gradescope does.")
    parser.add_argument("--submission", type=Path, help="a notebook, or a folder holding one (local dry run)")
    parser.add_argument("--results", type=Path, default=Path("results.json"), help="where results.json goes")
    parser.add_argument("--assignment", help="assignment folder name; detected from the notebook by default")
    parser.add_argument("--examples", action="store_true", help="grade the shipped example submissions")
    args = parser.parse_args(argv)
    if args.examples:
        return _examples(args.results.parent if args.results != Path("results.json") else Path("out/examples"))
    if args.submission is None:
        grade(GRADESCOPE_SUBMISSION, GRADESCOPE_RESULTS)
        return 0
    results = grade(args.submission, args.results, args.assignment, log=lambda m: print(m, file=sys.stderr))
    print(results["output"], "\n")
    print(console_table(results))
    print(f"\nresults written to {args.results}")
    return 0


def _examples(out: Path) -> int:
    summary = []
    for label, notebook in EXAMPLES:
        target = out / f"{notebook.stem}.results.json"
        results = grade(notebook, target, log=lambda m: None)
        total = sum(t["max_score"] for t in results["tests"])
        summary.append(f"{label:<32} {results['score']:>5g} / {total:g}   ({target})")
        print(f"\n=== {label}: {notebook.relative_to(ROOT)}\n{console_table(results)}")
    print("\n" + "\n".join(summary))
    return 0
