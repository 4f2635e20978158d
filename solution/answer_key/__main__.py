"""`python -m solution.answer_key --out key/ [--run RUN_DIR]`: the whole HW4 key (written 1.1 and Part 2) with
its rubric, as Markdown, PDF and Gradescope rubric files. Without --run, Part 2 comes from a smoke run (labelled)."""

import argparse
from pathlib import Path

from solution.answer_key.build import build_key

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m solution.answer_key", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("key"), help="output folder (default: key/)")
    parser.add_argument("--run", type=Path, default=None,
                        help="a finished `python -m solution.finetune` output folder; default: a fresh smoke run")
    args = parser.parse_args(argv)
    for name, path in build_key(args.out, args.run).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
