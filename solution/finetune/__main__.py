"""`python -m solution.finetune [--smoke] [--data DIR] [--model FOLDER] ...`: the Part 2 answer key.

Every option is a field of FinetuneConfig, and its default is that field's value in the preset (DEFAULT, or SMOKE
with --smoke), so the CLI cannot drift from the config.
"""

import argparse
import dataclasses
import inspect
import re
import types
import typing
from pathlib import Path

from solution.finetune.config import DEFAULT, SMOKE, FinetuneConfig

__all__ = ["build_parser", "config_from_args", "main"]


def _element_type(field: dataclasses.Field):
    """The scalar type behind a field's hint: `int | None` -> int, `tuple[int, ...]` -> int."""
    hint = field.type
    if isinstance(hint, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], True
    return hint, False


def _parse_list(item_type):
    def parse(text: str) -> tuple:
        return tuple(item_type(x) for x in text.split(",") if x.strip())
    return parse


def _field_comments() -> dict[str, str]:
    """Each field's same-line comment in FinetuneConfig's source: the help text, written once."""
    pattern = re.compile(r"^\s+(\w+): [^#]*#\s*(.+)$")
    return {m[1]: m[2] for line in inspect.getsource(FinetuneConfig).splitlines() if (m := pattern.match(line))}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m solution.finetune", description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rerun methods that already finished")
    parser.add_argument("--plots-only", action="store_true", help="only redraw figures and report from the JSON")
    comments = _field_comments()
    for field in dataclasses.fields(FinetuneConfig):
        flag = "--" + field.name.replace("_", "-")
        default, smoke = getattr(DEFAULT, field.name), getattr(SMOKE, field.name)
        shown = f"default {default!r}" + (f", {smoke!r} with --smoke" if smoke != default else "")
        if field.name in comments:
            shown = f"{comments[field.name]} ({shown})".replace("%", "%%")  # argparse formats help with %
        item_type, is_list = _element_type(field)
        if item_type is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=shown)
        elif is_list:
            parser.add_argument(flag, type=_parse_list(item_type), default=None, metavar="A,B,...", help=shown)
        else:
            parser.add_argument(flag, type=item_type, default=None, help=shown)
    return parser


def config_from_args(args: argparse.Namespace) -> FinetuneConfig:
    preset = SMOKE if args.smoke else DEFAULT
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(FinetuneConfig)
                 if getattr(args, f.name) is not None}
    return dataclasses.replace(preset, **overrides)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    if args.plots_only:
        from solution.finetune.plots import plot_all
        from solution.finetune.report import write_report

        plot_all(Path(cfg.out), cfg)
        print(f"report: {write_report(Path(cfg.out), cfg)}")
        return 0
    from solution.finetune.runner import run

    run(cfg, force=args.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
