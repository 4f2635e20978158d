"""Assertions for graded cases whose failure messages teach: what was checked, where it first went wrong,
what was expected and what came back (rounded), in Markdown. No inputs are printed."""

from __future__ import annotations

import math
from typing import Sequence

from autograder.errors import NotRun

__all__ = ["NotRun", "fmt", "assert_close"]  # NotRun re-exported: the cases raise it from here


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

