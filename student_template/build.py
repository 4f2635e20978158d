"""Build each student template and its solution notebook from one master source, and the Part 1 self-check.

A master (`student_template/source/<name>.py`) is a percent-format script; see student_template/README.md.
The template keeps the stub inside each solution block; the solution notebook replaces the block with the
reference's own source (`inspect.getsource`), so the answer key is the code the oracle tests prove.
The students' self-check (`hw4_part1_selfcheck.py`) is built from the grader's replay.py by selfcheck.py.

    python student_template/build.py          # rewrite every notebook and the self-check
    python student_template/build.py --check  # exit 1 if a committed file differs from its sources
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import inspect
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "student_template" / "source"
TEMPLATE_DIR = ROOT / "student_template"
SOLUTION_DIR = ROOT / "solution" / "notebooks"

_NOTEBOOK = re.compile(r"^# %% notebook((?: [a-z_]+=[A-Za-z0-9_.-]+)*)\s*$")
_HEADER = re.compile(r"^# %%(?: \[(?P<kind>markdown)\])? id=(?P<id>[A-Za-z0-9_-]+)"
                     r"(?P<attrs>(?: [a-z_]+(?:=[A-Za-z0-9_.-]+)?)*)\s*$")
_BEGIN = re.compile(r"^\s*# BEGIN SOLUTION(?: (?P<refs>.+))?$")
_SPLIT = re.compile(r"^\s*# SOLUTION\s*$")
_END = re.compile(r"^\s*# END SOLUTION\s*$")
_CELL_ATTRS = {"grade_id", "points", "solution"}  # nbgrader's, on the header of a code cell
_NOTEBOOK_ATTRS = {"shape", "accelerator", "gpu"}
_KERNELSPEC = {"display_name": "Python 3", "name": "python3"}  # as Colab writes it


@dataclass(frozen=True)
class Cell:
    kind: str  # "markdown" or "code"
    id: str
    template: str
    solution: str
    attrs: dict = field(default_factory=dict)  # header attributes: grade_id, points, solution


def reference_source(refs: str) -> str:
    """Source of `module:Name[, Name ...]`; `Name as Alias` renames a class or function in its header."""
    module_name, _, names = refs.partition(":")
    module = importlib.import_module(module_name.strip())
    chunks = []
    for item in names.split(","):
        name, _, alias = (part.strip() for part in item.partition(" as "))
        source = inspect.getsource(getattr(module, name))
        if alias:
            source = re.sub(rf"^(class|def) {name}\b", rf"\1 {alias}", source, count=1)
        chunks.append(source.rstrip("\n"))
    return "\n\n\n".join(chunks)


def _split_code(lines: list[str], where: str) -> tuple[str, str]:
    template, solution = [], []
    block: list[str] | None = None  # lines of the open block, or None outside one
    inline: list[str] | None = None  # inline solution lines after "# SOLUTION"
    refs = None
    for number, line in enumerate(lines, 1):
        if (begin := _BEGIN.match(line)):
            if block is not None:
                raise ValueError(f"{where}:{number}: nested BEGIN SOLUTION")
            block, inline, refs = [], None, begin["refs"]
        elif block is not None and _SPLIT.match(line):
            inline = []
        elif block is not None and _END.match(line):
            template += block
            if refs:
                solution += reference_source(refs).split("\n")
            elif inline is not None:
                solution += inline
            else:
                raise ValueError(f"{where}:{number}: a solution block needs a reference or a '# SOLUTION' part")
            block = inline = None
        elif inline is not None:
            inline.append(line)
        elif block is not None:
            block.append(line)
        else:
            template.append(line)
            solution.append(line)
    if block is not None:
        raise ValueError(f"{where}: BEGIN SOLUTION without END SOLUTION")
    return "\n".join(template).strip("\n"), "\n".join(solution).strip("\n")


def _attributes(text: str, allowed: set[str], where: str) -> dict:
    attrs = {}
    for token in text.split():
        key, _, value = token.partition("=")
        if key not in allowed:
            raise ValueError(f"{where}: unknown attribute {key!r} (known: {', '.join(sorted(allowed))})")
        attrs[key] = value or True
    return attrs


def parse_master(path: Path) -> tuple[dict, list[Cell]]:
    """The master's notebook attributes (its optional `# %% notebook ...` first line) and its cells."""
    cells: list[Cell] = []
    options: dict = {}
    header, body = None, []

    def flush():
        if header is None:
            return
        where = f"{path.name} cell {header['id']}"
        attrs = _attributes(header["attrs"], _CELL_ATTRS, where)
        if header["kind"] == "markdown":
            if attrs:
                raise ValueError(f"{where}: nbgrader attributes belong on code cells")
            text = "\n".join(re.sub(r"^# ?", "", line) for line in body).strip("\n")
            cells.append(Cell("markdown", header["id"], text, text))
        else:
            if attrs and ("grade_id" not in attrs or ("points" in attrs) == ("solution" in attrs)):
                raise ValueError(f"{where}: a graded cell has a `grade_id=` and is either `solution` or a test "
                                 "with `points=`")
            cells.append(Cell("code", header["id"], *_split_code(body, where), attrs))

    for number, line in enumerate(path.read_text().split("\n"), 1):
        if number == 1 and (directive := _NOTEBOOK.match(line)):
            options = _attributes(directive[1], _NOTEBOOK_ATTRS, f"{path.name}:1")
        elif line.startswith("# %%"):
            flush()
            if not (header := _HEADER.match(line)):
                raise ValueError(f"{path.name}:{number}: malformed cell header {line!r}")
            body = []
        elif header is not None:
            body.append(line)
    flush()
    ids = [cell.id for cell in cells]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{path.name}: duplicate cell ids")
    return options, cells


def nbgrader_metadata(cell: Cell) -> dict:
    """nbgrader's cell metadata (schema 3): a `solution` cell students fill in, or a locked test worth `points`.
    The checksum is over the template's text, as a release would record it."""
    grade_id = cell.attrs["grade_id"]
    checksum = hashlib.md5(cell.template.encode()).hexdigest()
    common = {"cell_type": "code", "checksum": checksum, "grade_id": grade_id, "schema_version": 3, "task": False}
    if cell.attrs.get("solution"):
        return {"deletable": False, "nbgrader": {**common, "grade": False, "locked": False, "solution": True}}
    return {"deletable": False, "editable": False,
            "nbgrader": {**common, "grade": True, "locked": True, "points": int(cell.attrs["points"]),
                         "solution": False}}


def _course_notebook(options: dict, cells: list[Cell], solution: bool) -> nbformat.NotebookNode:
    """nbformat 4.0 as Colab writes it: no cell `id` field, Colab's own id in each cell's metadata."""
    colab = {"provenance": []}
    metadata = {"colab": colab, "kernelspec": dict(_KERNELSPEC), "language_info": {"name": "python"}}
    if options.get("accelerator"):
        metadata["accelerator"] = options["accelerator"]
        if options.get("gpu"):
            colab["gpuType"] = options["gpu"]
    notebook = nbformat.from_dict({"nbformat": 4, "nbformat_minor": 0, "metadata": metadata, "cells": []})
    for cell in cells:
        meta = {"id": cell.id, **(nbgrader_metadata(cell) if "grade_id" in cell.attrs else {})}
        text = cell.solution if solution else cell.template
        if cell.kind == "markdown":
            notebook.cells.append(nbformat.from_dict({"cell_type": "markdown", "metadata": meta, "source": text}))
        else:
            notebook.cells.append(nbformat.from_dict({"cell_type": "code", "execution_count": None,
                                                      "metadata": meta, "outputs": [], "source": text}))
    return notebook


def _jupyter_notebook(cells: list[Cell], solution: bool) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {"kernelspec": {**_KERNELSPEC, "language": "python"}, "language_info": {"name": "python"}}
    for cell in cells:
        make = nbformat.v4.new_markdown_cell if cell.kind == "markdown" else nbformat.v4.new_code_cell
        notebook.cells.append(make(cell.solution if solution else cell.template, id=cell.id))
    return notebook


def to_notebook(options: dict, cells: list[Cell], solution: bool) -> nbformat.NotebookNode:
    if options.get("shape") == "course":
        return _course_notebook(options, cells, solution)
    return _jupyter_notebook(cells, solution)


def cell_key(cell) -> str:
    """A cell's master id in either shape: the course shape keeps it in `metadata.id`, as Colab does."""
    return cell.get("id") or cell["metadata"]["id"]


def code_cells(path: Path) -> dict[str, str]:
    """Master id -> source of every code cell of a generated notebook (for tests that run cells by id)."""
    notebook = nbformat.read(path, as_version=4)
    return {cell_key(cell): cell.source for cell in notebook.cells if cell.cell_type == "code"}


def render(master: Path) -> dict[Path, str]:
    """Target path -> notebook JSON text, for the template and the solution of one master."""
    options, cells = parse_master(master)
    return {
        TEMPLATE_DIR / f"{master.stem}.ipynb": nbformat.writes(to_notebook(options, cells, solution=False)) + "\n",
        SOLUTION_DIR / f"{master.stem}.ipynb": nbformat.writes(to_notebook(options, cells, solution=True)) + "\n",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="report drift instead of writing")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from student_template import selfcheck  # the students' self-check bundle, built from the grader's replay.py
    drifted = []
    rendered = [render(master) for master in sorted(SOURCES.glob("*.py"))] + [selfcheck.targets()]
    for targets in rendered:
        for target, text in targets.items():
            if args.check:
                if not target.exists() or target.read_text() != text:
                    drifted.append(target)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
                print(f"wrote {target}")
    if drifted:
        print("out of date with their sources (run: python student_template/build.py):")
        print("\n".join(f"  {path}" for path in drifted))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
