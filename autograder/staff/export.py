"""A folder of submissions as the batch sees it: plain notebooks, or Gradescope's "Export Submissions".

An export holds one folder per submission (`submission_<id>/`) and `submission_metadata.yml`, which Gradescope
writes with Ruby's YAML library: keys are Ruby symbols (`:submitters:`, `:score:`), and some values carry Ruby
tags, e.g. `:score: !ruby/object:BigDecimal 18:0.4e2` (40). A SafeLoader with constructors for those tags reads
it; no tag can build an object, so the file is data, whatever a submitter's name holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml

from autograder.errors import InputError

__all__ = ["METADATA", "Entry", "Exported", "GradescopeLoader", "Submitter", "discover", "read_metadata"]

METADATA = "submission_metadata.yml"


@dataclass(frozen=True)
class Submitter:
    name: str = ""
    email: str = ""
    sid: str = ""


@dataclass(frozen=True)
class Exported:
    """One submission's record in the export."""
    submitters: tuple[Submitter, ...] = ()  # a group submission lists each member
    score: float | None = None  # what Gradescope recorded; None when it has none (never graded, or cleared)


@dataclass(frozen=True)
class Entry:
    key: str  # OUT's folder for it: the export's submission id, or the notebook's stem
    path: Path  # a notebook, or a folder holding the submitted files
    submitters: tuple[Submitter, ...] = ()
    recorded_score: float | None = None  # Gradescope's score for it, from the export


class GradescopeLoader(yaml.SafeLoader):
    """yaml.SafeLoader plus the Ruby tags Gradescope's exports carry, each read as plain data."""


def _big_decimal(loader: yaml.SafeLoader, node: yaml.Node) -> float | None:
    # Ruby's BigDecimal#_dump: "<precision>:<value>", e.g. "18:0.4e2"; the value may be NaN or Infinity.
    text = str(loader.construct_scalar(node))
    try:
        return float(Decimal(text.rpartition(":")[2].strip()))
    except InvalidOperation:
        return None


def _ruby_value(loader: yaml.SafeLoader, suffix: str, node: yaml.Node):
    """Any other `!ruby/...` tag (object:Foo, hash:Foo, hash-with-ivars, array, string, sym): its plain value."""
    if isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
        # hash-with-ivars keeps the entries under `elements`; the instance variables are Ruby's business
        return value.get("elements", value) if suffix.startswith("hash-with-ivars") else value
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    text = loader.construct_scalar(node)
    return f":{text}" if suffix in ("sym", "symbol") else text  # a symbol reads as `:name`, as untagged ones do


GradescopeLoader.add_constructor("!ruby/object:BigDecimal", _big_decimal)
GradescopeLoader.add_multi_constructor("!ruby/", _ruby_value)


def read_metadata(path: Path) -> dict[str, Exported]:
    """Submission id -> its submitters and recorded score, from Gradescope's submission_metadata.yml."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8", errors="replace"), Loader=GradescopeLoader)
    except yaml.YAMLError as error:
        raise InputError(f"{path} is not valid YAML, so the export's submitters are unknown: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path} does not map submission ids to submissions (found a {type(data).__name__})")
    found = {}
    for key, record in data.items():
        record = record if isinstance(record, dict) else {}
        people = _field(record, "submitters")
        found[str(key)] = Exported(
            tuple(Submitter(*(_text(_field(p, f)) for f in ("name", "email", "sid")))
                  for p in (people if isinstance(people, list) else []) if isinstance(p, dict)),
            _number(_field(record, "score")))
    return found


def _field(record: dict, name: str):
    """`:name` (a Ruby symbol, as Gradescope writes keys) or plain `name`."""
    return record.get(f":{name}", record.get(name))


def _text(value) -> str:
    return "" if value is None else str(value)


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def discover(folder: Path) -> list[Entry]:
    """One entry per notebook or folder in `folder`, with submitters and scores when it is a Gradescope export."""
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder of submissions")
    records = read_metadata(folder / METADATA) if (folder / METADATA).is_file() else {}
    entries, keys = [], set()
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "__")) or not (path.is_dir() or path.suffix == ".ipynb"):
            continue
        key = path.name if path.is_dir() or path.stem in keys else path.stem
        keys.add(key)
        record = records.get(path.name, Exported())
        entries.append(Entry(key, path, record.submitters, record.score))
    # Listed in the metadata but absent from the export: graded as empty, so the row says so.
    entries += [Entry(key, folder / key, record.submitters, record.score)
                for key, record in sorted(records.items()) if key not in keys]
    if not entries:
        raise InputError(f"no submissions in {folder}: expected *.ipynb files or one folder per submission")
    return sorted(entries, key=lambda entry: entry.key)
