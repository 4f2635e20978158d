"""run_autograder in a checkout: the grading modes (autograder/cli.py) plus the staff's commands, `build` (the
Gradescope zip) and `--submissions` (a batch regrade). The one boundary for errors: the staff's bad input is a
message and exit 2, a refused build exit 1; anything else is a bug and keeps its traceback (Python exits 1)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder import cli
from autograder.argv import hidden
from autograder.config import GraderConfig, from_environment
from autograder.errors import BuildError, InputError

# The batch, the build and the class report (matplotlib: 40 MB) are imported by the commands that use them: a local
# grading through this CLI holds no more than the grading modes of autograder/cli.py while the student's code runs.

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the batch's folders are the classmates' notebooks: off the command line (autograder/argv.py)
        argv = hidden()
    parser = argparse.ArgumentParser(
        prog="run_autograder",
        description="With no arguments, grade /autograder/submission as Gradescope does.")
    cli.add_grading_arguments(parser)
    parser.add_argument("--submissions", type=Path, help="grade every submission in this folder (batch; also a "
                        "Gradescope export with submission_metadata.yml)")
    parser.add_argument("--out", type=Path, help="batch output folder (default: out/batch/<folder name>)")
    parser.add_argument("--jobs", type=int, help="batch: submissions graded at once (default: the CPU count)")
    parser.add_argument("--force", action="store_true", help="batch: regrade submissions already graded")
    parser.add_argument("--zip", type=Path, dest="uploaded", metavar="UPLOADED.zip",
                        help="batch: grade with the secret and rubric of this zip (the one uploaded to Gradescope)")
    parser.add_argument("--dev-secret", action="store_true",
                        help="batch: allow the development secret (a rehearsal: its hidden inputs are public)")
    parser.add_argument("--known", type=Path, metavar="DIR",
                        help="batch: known public solutions (notebooks or .py) for the report's similar submissions")
    commands = parser.add_subparsers(dest="command", metavar="build")
    build_parser = commands.add_parser("build", help="write the Gradescope zip of one assignment")
    build_parser.add_argument("--assignment", required=True, help="assignment folder name, e.g. hw4_part1")
    build_parser.add_argument("-o", "--output", type=Path, default=Path("dist"), help="folder for the zip")
    build_parser.add_argument("--secret-from", type=Path, metavar="OLD.zip",
                              help="keep the secret of this earlier zip (the one uploaded), so hidden inputs stay")
    args = parser.parse_args(argv)
    config = from_environment()  # read once, here, and passed down
    try:
        return _run(args, parser, config)
    except InputError as error:
        print(f"{args.command or ('batch' if args.submissions else 'grading')} failed: {error}", file=sys.stderr)
        return 2
    except BuildError as error:
        print(f"build failed: {error}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser, config: GraderConfig) -> int:
    if args.command == "build":
        from autograder.staff.build import build
        build(args.assignment, args.output, secret_from=args.secret_from, config=config)
        return 0
    if args.submissions is not None:
        return _batch(args)
    if args.uploaded is not None or args.dev_secret or args.known is not None:
        parser.error("--zip, --dev-secret and --known go with --submissions (batch)")
    return cli.run_grading(args, config)


def _batch(args: argparse.Namespace) -> int:
    from autograder.staff import batch
    out = args.out or batch.default_out(args.submissions)
    jobs = {} if args.jobs is None else {"jobs": args.jobs}  # else grade_all's default
    try:
        rows = batch.grade_all(args.submissions, out, **jobs, force=args.force, assignment=args.assignment,
                               uploaded=args.uploaded, dev_secret=args.dev_secret)
    except KeyboardInterrupt:
        print("interrupted: submissions in progress were not recorded; rerun to finish", file=sys.stderr)
        return 130
    print(batch.summary_text(rows, out))
    _class_report(out, args.known)
    return 0


def _class_report(out: Path, known: Path | None) -> None:
    """OUT/report.html. The grades are written by now: a failing report is told, never allowed to hide them."""
    try:
        from autograder.staff.class_report import write_class_report
        print(f"class report: {write_class_report(out, known=known)}")
    except Exception as error:
        print(f"class report failed: {error!r}", file=sys.stderr)
