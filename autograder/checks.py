"""Assertions for graded cases whose failure messages teach: what was checked, where it first went wrong,
what was expected and what came back (rounded), in Markdown. No inputs are printed."""

from __future__ import annotations

import math
from typing import Sequence

__all__ = ["NotRun", "fmt", "assert_close", "assert_same_steps", "first_divergence"]


class NotRun(Exception):
    """The case could not run (missing definition, crashed probe, no observations): it scores 0."""


def fmt(value, digits: int = 4) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v, digits) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else str(value)
    return str(value)


def _close(a, b, rtol: float, atol: float) -> bool:
    if not isinstance(a, (int, float)) or isinstance(a, bool) or not math.isfinite(a):
        return False
    return abs(a - b) <= atol + rtol * abs(b)


def _all_close(got: Sequence, expected: Sequence, rtol: float, atol: float) -> bool:
    return (isinstance(got, (list, tuple)) and len(got) == len(expected)
            and all(_close(g, e, rtol, atol) for g, e in zip(got, expected)))


def assert_close(got, expected, what: str, rtol: float = 1e-4, atol: float = 1e-5, hint: str = "") -> None:
    """`got` and `expected` are numbers or flat lists of numbers."""
    if isinstance(expected, (int, float)):
        ok = _close(got, expected, rtol, atol)
    else:
        ok = _all_close(got, expected, rtol, atol)
    if not ok:
        digits = next((d for d in range(4, 13) if fmt(expected, d) != fmt(got, d)), 12)  # enough to tell them apart
        raise AssertionError(f"{what}: expected `{fmt(expected, digits)}`, got `{fmt(got, digits)}`."
                             + (f"\n\n{hint}" if hint else ""))


def first_divergence(got: Sequence[Sequence[float]], expected: Sequence[Sequence[float]],
                     rtol: float, atol: float) -> int | None:
    """Index of the first row that differs (or is missing), or None when all rows agree."""
    for index, row in enumerate(expected):
        if index >= len(got) or not _all_close(got[index], row, rtol, atol):
            return index
    return None


def assert_same_steps(got: Sequence, expected: Sequence, what: str, describe_row, rtol: float = 1e-3,
                      atol: float = 1e-4, error: str | None = None, hint: str = "") -> None:
    """Compare step-by-step states; name the first step that differs. `describe_row` renders one state."""
    index = first_divergence(got, expected, rtol, atol)
    if index is None:
        return
    lines = [f"{what}: step {index + 1} of {len(expected)} is the first that differs."]
    if index < len(got):
        lines.append(f"- expected {describe_row(expected[index])}\n- got {describe_row(got[index])}")
    elif error:
        lines.append(f"Your code stopped at step {index + 1} with `{error}`.")
    else:
        lines.append(f"Your code produced only {len(got)} steps.")
    if hint:
        lines.append(hint)
    raise AssertionError("\n\n".join(lines))
