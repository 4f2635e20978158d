"""An assignment's rubric.yml, the single source of every case's points, name and visibility, and the check that
it and the cases describe the same tests (a case without a row would score 0/0 unnoticed; a row without a case
would promise points nobody can earn)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Iterable

import jsonschema
import yaml

from autograder.errors import RubricError

__all__ = ["Row", "SCHEMA", "load_rubric", "case_numbers", "check_matches"]

SCHEMA = json.loads(Path(__file__).with_name("rubric_schema.json").read_text())


@dataclass(frozen=True)
class Row:
    weight: float
    visibility: str = "visible"
    name: str = ""  # "" : the case's docstring names it


def load_rubric(path: Path) -> dict[str, Row]:
    """Test number -> Row, from a rubric file valid against rubric_schema.json with each number once."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise RubricError(f"cannot read the rubric {path}: {error}") from None
    try:
        jsonschema.validate(data, SCHEMA)
    except jsonschema.ValidationError as error:
        where = "/".join(str(part) for part in error.absolute_path) or "the top level"
        raise RubricError(f"{path}: {where}: {error.message}") from None
    tests = data["tests"]
    if twice := sorted(n for n, count in Counter(t["number"] for t in tests).items() if count > 1):
        raise RubricError(f"{path}: test number(s) {', '.join(twice)} appear more than once")
    return {t["number"]: Row(float(t["weight"]), t.get("visibility", "visible"), t.get("name", "")) for t in tests}


def case_numbers(cases: ModuleType) -> list[str]:
    """The numbers of a cases module's graded functions (test_*), each of which must have one."""
    functions = {name: f for name, f in vars(cases).items() if name.startswith("test_") and callable(f)}
    if unnumbered := sorted(name for name, f in functions.items() if not getattr(f, "__number__", "")):
        raise RubricError(f"{cases.__name__}: {', '.join(unnumbered)} without @number: the rubric cannot weigh them")
    return sorted(f.__number__ for f in functions.values())


def check_matches(rubric: dict[str, Row], numbers: Iterable[str], where: str) -> None:
    """Raise RubricError unless every case has a rubric row and every row a case."""
    numbers = list(numbers)
    twice = sorted(n for n, count in Counter(numbers).items() if count > 1)
    without_row = sorted(set(numbers) - set(rubric))
    without_case = sorted(set(rubric) - set(numbers))
    if twice or without_row or without_case:
        raise RubricError(f"{where}: the rubric and the cases disagree: cases numbered twice: {twice or 'none'}; "
                          f"cases without a rubric row: {without_row or 'none'}; "
                          f"rubric rows without a case: {without_case or 'none'}")
