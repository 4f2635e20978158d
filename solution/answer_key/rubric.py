"""The rubric (rubric.yml): loaded and checked, rendered as key blocks, and exported per question as CSV and YAML
in Gradescope's shape (one rubric item = points + description)."""

import csv
from pathlib import Path

import yaml

from solution.answer_key.document import Block, Bullets, Heading, Para

__all__ = ["HANDOUT_POINTS", "load_rubric", "rubric_blocks", "write_rubric_files"]

RUBRIC_FILE = Path(__file__).with_name("rubric.yml")
# The handout's points; the YAML must agree (a TA editing it cannot silently change a question's weight).
HANDOUT_POINTS = {"written": {"a": 4, "b": 3, "c": 4, "d": 5, "e": 2, "f": 2, "g": 4, "h": 2, "i": 2},
                  "part2": {"a": 3, "b": 3, "c": 3, "d": 3, "e": 4, "f": 6, "g": 4, "h": 4}}
SECTION_NAMES = {"written": "Written 1.1", "part2": "Part 2"}


def load_rubric(path: Path = RUBRIC_FILE) -> dict:
    rubric = yaml.safe_load(path.read_text())
    for section, points in HANDOUT_POINTS.items():
        got = {q: rubric[section][q]["points"] for q in rubric[section]}
        if got != points:
            raise ValueError(f"rubric {section} points {got} differ from the handout's {points}")
        for q, entry in rubric[section].items():
            for item_points, text in entry["items"]:
                if not -entry["points"] <= item_points <= 0:
                    raise ValueError(f"{section} ({q}) item {text!r}: {item_points} outside [-{entry['points']}, 0]")
    return rubric


def _points(value: float) -> str:
    return f"{value:+g}" if value else "0"


def rubric_blocks(rubric: dict, section: str, question: str) -> list[Block]:
    entry = rubric[section][question]
    return [
        Heading(4, f"Rubric ({question}), {entry['points']} points"),
        Para("Accepted as equivalent:"),
        Bullets(tuple(entry["accepted"])),
        Para("Gradescope items (negative scoring, from full marks):"),
        Bullets(tuple(f"**{_points(p)}** {text}" for p, text in entry["items"])),
    ]


def write_rubric_files(rubric: dict, folder: Path) -> list[Path]:
    """rubric/<section>_<q>.csv and .yml: columns points, description, as Gradescope's rubric editor takes them."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for section in HANDOUT_POINTS:
        for q, entry in rubric[section].items():
            stem = folder / f"{section}_{q}"
            with open(stem.with_suffix(".csv"), "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["points", "description"])
                writer.writerows([[p, text] for p, text in entry["items"]])
            doc = {"question": f"{SECTION_NAMES[section]} ({q}) {entry['title']}", "points": entry["points"],
                   "scoring": "negative", "items": [{"points": p, "description": t} for p, t in entry["items"]]}
            stem.with_suffix(".yml").write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
            written += [stem.with_suffix(".csv"), stem.with_suffix(".yml")]
    return written
