"""Build each student template and its solution notebook from one master source.

A master (`student_template/source/<name>.py`) is a percent-format script; see student_template/README.md.
The template keeps the stub inside each solution block; the solution notebook replaces the block with the
reference's own source (`inspect.getsource`), so the answer key is the code the oracle tests prove.

    python student_template/build.py          # rewrite every notebook
    python student_template/build.py --check  # exit 1 if a committed notebook differs from its master
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "student_template" / "source"
TEMPLATE_DIR = ROOT / "student_template"
SOLUTION_DIR = ROOT / "solution" / "notebooks"

_HEADER = re.compile(r"^# %%(?: \[(?P<kind>markdown)\])? id=(?P<id>[A-Za-z0-9_-]+)\s*$")
_BEGIN = re.compile(r"^\s*# BEGIN SOLUTION(?: (?P<refs>.+))?$")
_SPLIT = re.compile(r"^\s*# SOLUTION\s*$")
_END = re.compile(r"^\s*# END SOLUTION\s*$")


@dataclass(frozen=True)
class Cell:
    kind: str  # "markdown" or "code"
    id: str
    template: str
    solution: str


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


def parse_master(path: Path) -> list[Cell]:
    cells: list[Cell] = []
    header, body = None, []

    def flush():
        if header is None:
            return
        where = f"{path.name} cell {header['id']}"
        if header["kind"] == "markdown":
            text = "\n".join(re.sub(r"^# ?", "", line) for line in body).strip("\n")
            cells.append(Cell("markdown", header["id"], text, text))
        else:
            cells.append(Cell("code", header["id"], *_split_code(body, where)))

    for number, line in enumerate(path.read_text().split("\n"), 1):
        if line.startswith("# %%"):
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
    return cells


def to_notebook(cells: list[Cell], solution: bool) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for cell in cells:
        text = cell.solution if solution else cell.template
        make = nbformat.v4.new_markdown_cell if cell.kind == "markdown" else nbformat.v4.new_code_cell
        notebook.cells.append(make(text, id=cell.id))
    return notebook


def render(master: Path) -> dict[Path, str]:
    """Target path -> notebook JSON text, for the template and the solution of one master."""
    cells = parse_master(master)
    return {
        TEMPLATE_DIR / f"{master.stem}.ipynb": nbformat.writes(to_notebook(cells, solution=False)) + "\n",
        SOLUTION_DIR / f"{master.stem}.ipynb": nbformat.writes(to_notebook(cells, solution=True)) + "\n",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="report drift instead of writing")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    drifted = []
    for master in sorted(SOURCES.glob("*.py")):
        for target, text in render(master).items():
            if args.check:
                if not target.exists() or target.read_text() != text:
                    drifted.append(target)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
                print(f"wrote {target}")
    if drifted:
        print("out of date with their masters (run: python student_template/build.py):")
        print("\n".join(f"  {path}" for path in drifted))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
