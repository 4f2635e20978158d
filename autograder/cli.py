"""run_autograder's modes. Thin: parsing here, work in grade.py (and batch.py / build.py)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from autograder.grade import grade
from autograder.results import console_table

ROOT = Path(__file__).resolve().parent.parent
# Gradescope's tree; AUTOGRADER_HOME points elsewhere for a fake tree in tests.
GRADESCOPE = Path(os.environ.get("AUTOGRADER_HOME", "/autograder"))
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
    parser.add_argument("--submissions", type=Path, help="grade every submission in this folder (batch; also a "
                        "Gradescope export with submission_metadata.yml)")
    parser.add_argument("--out", type=Path, help="batch output folder (default: out/batch/<folder name>)")
    parser.add_argument("--jobs", type=int, help="batch: submissions graded at once (default: the CPU count)")
    parser.add_argument("--force", action="store_true", help="batch: regrade submissions already graded")
    parser.add_argument("--zip", type=Path, dest="uploaded", metavar="UPLOADED.zip",
                        help="batch: grade with the secret and rubric of this zip (the one uploaded to Gradescope)")
    parser.add_argument("--dev-secret", action="store_true",
                        help="batch: allow the development secret (a rehearsal: its hidden inputs are public)")
    commands = parser.add_subparsers(dest="command", metavar="build")
    build_parser = commands.add_parser("build", help="write the Gradescope zip of one assignment")
    build_parser.add_argument("--assignment", required=True, help="assignment folder name, e.g. hw4_part1")
    build_parser.add_argument("-o", "--output", type=Path, default=Path("dist"), help="folder for the zip")
    build_parser.add_argument("--secret-from", type=Path, metavar="OLD.zip",
                              help="keep the secret of this earlier zip (the one uploaded), so hidden inputs stay")
    args = parser.parse_args(argv)
    if args.command == "build":
        return _build(args.assignment, args.output, args.secret_from)
    if args.submissions is not None:
        return _batch(args)
    if args.uploaded is not None or args.dev_secret:
        parser.error("--zip and --dev-secret go with --submissions (batch)")
    if args.examples:
        _warn_dev_secret(ROOT / "solution/notebooks/hw4_part1.ipynb", "hw4_part1")
        return _examples(args.results.parent if args.results != Path("results.json") else Path("out/examples"))
    if args.submission is None:
        grade(GRADESCOPE / "submission", GRADESCOPE / "results" / "results.json", keep_warm=False)
        return 0
    _warn_dev_secret(args.submission, args.assignment)
    results = grade(args.submission, args.results, args.assignment, log=lambda m: print(m, file=sys.stderr),
                    keep_warm=False)
    print(results["output"], "\n")
    print(console_table(results))
    print(f"\nresults written to {args.results}")
    return 0


def _examples(out: Path) -> int:
    summary = []
    for number, (label, notebook) in enumerate(EXAMPLES, 1):
        target = out / f"{number}_{notebook.parent.name}_{notebook.stem}.results.json"
        results = grade(notebook, target, log=lambda m: None)
        total = sum(t["max_score"] for t in results["tests"])
        summary.append(f"{label:<32} {results['score']:>5g} / {total:g}   ({target})")
        print(f"\n=== {label}: {notebook.relative_to(ROOT)}\n{console_table(results)}")
    print("\n" + "\n".join(summary))
    return 0


def _warn_dev_secret(submission: Path, assignment: str | None) -> None:
    """A loud warning on the console when this local run would use the development secret."""
    from autograder.assignment import detect_assignment, load_assignment
    from autograder.grade import choose_notebook
    from autograder.inputs import dev_secret_warning
    try:
        chosen = load_assignment(assignment) if assignment else \
            detect_assignment(choose_notebook(submission, None)[0])[0]
    except Exception:  # not a notebook, unknown assignment: grade() says so itself
        return
    if chosen.secret()[1]:
        print(dev_secret_warning([chosen.name]), file=sys.stderr)


# build and batch are staff tools, imported on use: Gradescope's path never depends on them.
def _build(assignment: str, output: Path, secret_from: Path | None = None) -> int:
    from autograder.build import BuildError, build
    try:
        build(assignment, output, secret_from=secret_from)
    except BuildError as error:
        print(f"build failed: {error}", file=sys.stderr)
        return 1
    return 0


def _batch(args: argparse.Namespace) -> int:
    from autograder.batch import default_out, grade_all, summary_text
    jobs = grade_all.__kwdefaults__["jobs"] if args.jobs is None else args.jobs
    out = args.out or default_out(args.submissions)
    try:
        rows = grade_all(args.submissions, out, jobs=jobs, force=args.force, assignment=args.assignment,
                         uploaded=args.uploaded, dev_secret=args.dev_secret)
    except ValueError as error:
        print(f"batch failed: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: submissions in progress were not recorded; rerun to finish", file=sys.stderr)
        return 130
    print(summary_text(rows, out))
    return 0
