"""Finding, loading and reading a submitted notebook: its code cells and the definitions they make.

Nothing here executes student code. Graded code is located by name (class / def), not by cell index, so
deleted, moved and duplicated cells are tolerated: as in Python, the last definition of a name wins.
"""

from __future__ import annotations

import ast
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from IPython.core.inputtransformer2 import TransformerManager

from autograder.errors import SubmissionError

__all__ = ["CodeCell", "Definition", "Notebook", "find_notebooks", "load_notebook"]

MAX_NOTEBOOK_BYTES = 20_000_000


@dataclass(frozen=True)
class CodeCell:
    index: int  # position among all cells, 0-based
    id: str  # the cell's id, or a stable stand-in for notebooks without ids (nbformat 4.0, Colab)
    source: str  # as written, magics included
    position: int = 0  # 1-based among code cells: what Jupyter and Colab let a student count
    heading: str = ""  # the nearest Markdown heading above it, e.g. "(2d) Adam"

    @property
    def label(self) -> str:
        """How a student finds the cell: by its section's heading and its place among the code cells."""
        where = f"code cell {self.position}"
        return f"the code cell under “{self.heading}” ({where})" if self.heading else where


@dataclass(frozen=True)
class Definition:
    name: str
    kind: str  # "class" or "function"
    bases: tuple[str, ...]  # source text of each base class
    cell: CodeCell
    line: int  # first line in the cell, 1-based
    source: str

    @property
    def is_stub(self) -> bool:
        """Still the template's placeholder."""
        return "raise NotImplementedError" in self.source

    def to_json(self) -> dict:
        """For the measurement process: the source padded so that line numbers are the cell's."""
        return {"name": self.name, "bases": list(self.bases), "label": self.cell.label,
                "source": "\n" * (self.line - 1) + self.source}


@dataclass
class Notebook:
    path: Path
    cells: list[CodeCell]
    definitions: dict[str, list[Definition]] = field(default_factory=dict)
    imports: list[tuple[CodeCell, int, str]] = field(default_factory=list)  # top-level imports: cell, line, text
    # Every other top-level statement (constants, `device`, data, calls): cell, line, text, its syntax tree.
    statements: list[tuple[CodeCell, int, str, ast.stmt]] = field(default_factory=list)
    syntax_errors: list[str] = field(default_factory=list)  # one Markdown line each

    def last(self, name: str, where=lambda d: True) -> Definition | None:
        matches = [d for d in self.definitions.get(name, []) if where(d)]
        return matches[-1] if matches else None

    def definition_cells(self, context: Callable[[ast.stmt], bool] | None = None) -> list[dict]:
        """Every top-level import (one each: a missing package costs only its names), then every def and class
        in notebook order: what the measurements need. With `context`, the top-level statements it accepts run
        among them, in notebook order (the notebook's constants, `device`, data), each on its own, so that a
        graded class sees the globals the student's notebook defines; the rest of the notebook's top-level work
        (`context` refuses the given evaluation loops, say) never runs there. "kind" says which is which."""
        imports = [{"label": cell.label, "source": "\n" * (line - 1) + text, "kind": "import"}
                   for cell, line, text in self.imports]
        ordered = [(d.cell.index, d.line, {"label": d.cell.label, "source": "\n" * (d.line - 1) + d.source,
                                           "kind": "definition"})
                   for group in self.definitions.values() for d in group]
        if context is not None:
            ordered += [(cell.index, line, {"label": cell.label, "source": "\n" * (line - 1) + text,
                                            "kind": "context"})
                        for cell, line, text, node in self.statements if context(node)]
        return imports + [entry for _, _, entry in sorted(ordered, key=lambda item: item[:2])]

    def sources(self) -> dict[str, str]:
        """Cell label -> the cell as plain Python, to quote a failing line."""
        found = {}
        for cell in self.cells:
            try:
                found[cell.label] = python_source(cell.source)
            except Exception:
                found[cell.label] = cell.source
        return found


@functools.lru_cache(maxsize=512)  # pure, and asked for the same cells by many cases
def python_source(cell_source: str) -> str:
    """The cell as plain Python: IPython magics and shell escapes become function calls."""
    return TransformerManager().transform_cell(cell_source)


def find_notebooks(path: Path) -> list[Path]:
    if path.is_symlink():
        raise SubmissionError(f"`{path.name}` is a link; links are not followed. Submit the notebook itself.")
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SubmissionError(f"Nothing was submitted at `{path.name}`.")
    # A link is never followed: it could point at anything the grader can read (the reference notebook, say).
    found = sorted(p for p in path.rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts and p.is_file() and not p.is_symlink())
    if not found:
        names = ", ".join(sorted(p.name for p in path.iterdir())[:10]) or "nothing"
        raise SubmissionError(f"No Jupyter notebook (`*.ipynb`) was found in your submission (it holds: {names}).")
    return found


def load_notebook(path: Path) -> Notebook:
    """Read cells leniently: a notebook without metadata or ids still grades; a non-notebook does not."""
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(f"`{path.name}` is larger than {MAX_NOTEBOOK_BYTES // 1_000_000} MB; clear its outputs.")
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except json.JSONDecodeError as error:
        raise SubmissionError(
            f"`{path.name}` is not a valid notebook: it is not JSON (line {error.lineno}: {error.msg}). "
            "Download it again from Jupyter with File > Download.") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise SubmissionError(f"`{path.name}` is JSON but not a Jupyter notebook (it has no list of cells).")
    cells: list = []
    seen, heading = set(), ""
    for index, raw in enumerate(data["cells"]):
        if not isinstance(raw, dict):
            continue
        source = raw.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if raw.get("cell_type") == "markdown":
            heading = _heading(source) or heading
            continue
        if raw.get("cell_type") != "code":
            continue
        cell_id = str(raw.get("id") or f"cell-{index + 1}")
        if cell_id in seen:  # duplicated cells keep their ids; make them unique for reporting
            cell_id = f"{cell_id}-{index + 1}"
        seen.add(cell_id)
        cells.append(CodeCell(index, cell_id, source, len(cells) + 1, heading))
    notebook = Notebook(path, cells)
    for cell in cells:
        _index_cell(notebook, cell)
    return notebook


def _heading(markdown: str) -> str:
    """The text of the markdown cell's last heading line ("### (2d) Adam" -> "(2d) Adam"), without markup."""
    found = ""
    for line in markdown.split("\n"):
        if line.lstrip().startswith("#"):
            text = line.strip().lstrip("#").strip().replace("**", "").replace("`", "")
            found = "".join(c for c in text if c not in '<>"')[:60] or found
    return found


def _index_cell(notebook: Notebook, cell: CodeCell) -> None:
    try:
        source = python_source(cell.source)
        tree = ast.parse(source)
    except SyntaxError as error:
        notebook.syntax_errors.append(f"{cell.label} has a syntax error at line {error.lineno}: {error.msg}")
        return
    except Exception as error:  # IPython's transformer can fail on odd input
        notebook.syntax_errors.append(f"{cell.label} could not be read: {error}")
        return
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            notebook.imports.append((cell, node.lineno, ast.get_source_segment(source, node) or ""))
        elif isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            lines = source.split("\n")[start - 1:node.end_lineno]
            bases = tuple(ast.unparse(b) for b in getattr(node, "bases", ()))
            kind = "class" if isinstance(node, ast.ClassDef) else "function"
            notebook.definitions.setdefault(node.name, []).append(
                Definition(node.name, kind, bases, cell, start, "\n".join(lines)))
        else:
            text = ast.get_source_segment(source, node)
            if text:
                notebook.statements.append((cell, node.lineno, text, node))
