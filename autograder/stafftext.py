"""Staff-facing text stays the grader's: what a run's code wrote is quoted, never mixed in as the grader's own.

TAs read the staff log (a hidden test's Markdown) to review grades. A kernel's output, an error text or a
notebook's label is the student's: `quote` marks every line of it with a prefix the grader's own lines never
start with, turns backticks into a look-alike (no code fence can be closed or opened by it) and drops control
characters (no terminal escapes, no carriage return overwriting a line). `fence` wraps text in a code fence longer
than any run of backticks inside it, so even unquoted text cannot close it.
"""

from __future__ import annotations

import re

__all__ = ["QUOTE_PREFIX", "quote", "fence"]

QUOTE_PREFIX = "\u2502 "  # "│ ": box drawing, not Markdown; no grader line starts with it
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def quote(text: str, limit: int = 4000) -> str:
    """`text` (the run's own output) as quoted lines: at most `limit` characters of it, the last ones."""
    if not isinstance(text, str):
        raise ValueError(f"quote expects text, not {type(text).__name__}")
    text = text[-limit:] if len(text) > limit else text
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\t", "    ")).replace("`", "\u02cb")
    return "\n".join(QUOTE_PREFIX + line for line in text.split("\n"))


def fence(text: str) -> str:
    """`text` in a Markdown code fence that nothing inside it can close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    marks = "`" * max(3, longest + 1)
    return f"{marks}\n{text}\n{marks}"
