"""run_autograder's grading modes, the ones a Gradescope zip holds: with no arguments, grade
/autograder/submission as Gradescope does; `--submission` for a local dry run; `--examples`. Thin: parsing here,
work in grade.py. The staff's commands (build, batch) are in autograder/staff/cli.py, which adds them to these."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.argv import hidden
from autograder.assignment import detect_assignment, dev_secret_warning, load_assignment
from autograder.config import GraderConfig, from_environment
from autograder.errors import InputError, SubmissionError
from autograder.grade import choose_notebook, grade
from autograder.results import console_table

__all__ = ["main", "add_grading_arguments", "run_grading"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [
    ("reference solution", ROOT / "solution/notebooks/hw4_part1.ipynb"),
    ("student template", ROOT / "student_template/hw4_part1.ipynb"),
    ("Adam without bias correction", ROOT / "tests/submissions/hw4_part1/adam_no_bias_correction.ipynb"),
    ("SGD on the full batch", ROOT / "tests/submissions/hw4_part1/sgd_full_batch.ipynb"),
]


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = hidden()  # as root, `python -m autograder` moved the arguments off the command line (argv.py)
    parser = argparse.ArgumentParser(
        prog="run_autograder",
        description="With no arguments, grade /autograder/submission as Gradescope does.")
    add_grading_arguments(parser)
    return run_grading(parser.parse_args(argv))


def add_grading_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--submission", type=Path, help="a notebook, or a folder holding one (local dry run)")
    parser.add_argument("--results", type=Path, default=Path("results.json"), help="where results.json goes")
    parser.add_argument("--assignment", help="assignment folder name; detected from the notebook by default")
    parser.add_argument("--examples", action="store_true", help="grade the shipped example submissions")


def run_grading(args: argparse.Namespace, config: GraderConfig | None = None) -> int:
    """One of the grading modes. grade() never raises for a submission: it writes results.json whatever happens.
    `config`: the environment's (config.from_environment) unless given."""
    config = config or from_environment()
    if args.examples:
        _warn_dev_secret(ROOT / "solution/notebooks/hw4_part1.ipynb", "hw4_part1", config)
        return _examples(args.results.parent if args.results != Path("results.json") else Path("out/examples"),
                         config)
    if args.submission is None:  # Gradescope's tree ($AUTOGRADER_HOME points at a fake one in tests)
        grade(config.home / "submission", config.home / "results" / "results.json", keep_warm=False, config=config)
        return 0
    _warn_dev_secret(args.submission, args.assignment, config)
    results = grade(args.submission, args.results, args.assignment, log=lambda m: print(m, file=sys.stderr),
                    keep_warm=False, config=config)
    print(results["output"], "\n")
    print(console_table(results))
    print(f"\nresults written to {args.results}")
    return 0


def _examples(out: Path, config: GraderConfig) -> int:
    summary = []
    for number, (label, notebook) in enumerate(EXAMPLES, 1):
        target = out / f"{number}_{notebook.parent.name}_{notebook.stem}.results.json"
        results = grade(notebook, target, log=lambda m: None, config=config)
        total = sum(t["max_score"] for t in results["tests"])
        summary.append(f"{label:<32} {results['score']:>5g} / {total:g}   ({target})")
        print(f"\n=== {label}: {notebook.relative_to(ROOT)}\n{console_table(results)}")
    print("\n" + "\n".join(summary))
    return 0


def _warn_dev_secret(submission: Path, assignment: str | None, config: GraderConfig) -> None:
    """A loud warning on the console when this local run would use the development secret."""
    try:
        chosen = load_assignment(assignment) if assignment else \
            detect_assignment(choose_notebook(submission, None)[0])[0]
    except (SubmissionError, InputError):  # not a notebook, unknown assignment: grade() says so itself
        return
    if chosen.secret(config)[1]:
        print(dev_secret_warning([chosen.name]), file=sys.stderr)
