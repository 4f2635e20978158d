"""Cells of a Part 2 notebook that the grader reads but never runs: the last-layer answer, the notebook's literal
constants, and whether the notebook is Part 2's at all. Cells are found by their content: the course's notebook
has no cell ids."""

from __future__ import annotations

import ast
import json
import re

from autograder.notebook import CodeCell, Notebook, python_source

__all__ = ["last_layer_cell", "notebook_constants", "other_assignment"]

_ASSIGNS_GRAD = re.compile(r"requires_grad(_\s*\(|\s*=(?!=))")
_TODO = re.compile(r"TODO|YOUR CODE|NotImplementedError")
_TOP_LEVEL_SKIP = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom, ast.Assert)
PART2_NAMES = ("MyLoraLayer", "get_lora_model")  # what students write; MyLoraConfig is given
PART1_NAMES = ("LinearModel", "GD", "SGD", "AdaGrad", "Adam")


def _top_level_code(cell: CodeCell) -> str:
    """The cell's statements other than definitions, imports and asserts ("" when it cannot be parsed)."""
    try:
        source = python_source(cell.source)
        tree = ast.parse(source)
    except Exception:  # a syntax error is reported by the summary; such a cell cannot be the answer
        return ""
    return "\n".join(ast.get_source_segment(source, node) or "" for node in tree.body
                     if not isinstance(node, _TOP_LEVEL_SKIP))


def last_layer_cell(notebook: Notebook) -> CodeCell | None:
    """The first cell whose top-level code sets `requires_grad` and mentions `classifier` (get_lora_model's cell
    does so inside a function and is not taken); failing that, the first cell still holding a TODO that mentions
    the classifier (an unanswered last-layer cell, graded as such)."""
    answers: list[CodeCell] = []
    unanswered: list[CodeCell] = []
    for cell in notebook.cells:
        code = _top_level_code(cell)
        if "classifier" in code and _ASSIGNS_GRAD.search(code):
            answers.append(cell)
        elif code and "classifier" in cell.source and _TODO.search(cell.source) and "get_lora_model" not in code:
            unanswered.append(cell)
    found = answers or unanswered
    return found[0] if found else None


def notebook_constants(notebook: Notebook) -> dict:
    """Top-level `NAME = literal` assignments (last wins): definitions may read them, e.g. as default arguments,
    though the cells that set them do not run here."""
    constants = {}
    for cell in notebook.cells:
        try:
            tree = ast.parse(python_source(cell.source))
        except Exception:  # reported by the summary
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                try:
                    value = ast.literal_eval(node.value)
                    json.dumps(value)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    continue
                constants[node.targets[0].id] = value
    return constants


def other_assignment(notebook: Notebook | None) -> str | None:
    """A sentence for a Part 1 notebook handed in to Part 2 (None for anything else)."""
    if notebook is None or any(name in notebook.definitions for name in PART2_NAMES):
        return None
    part1 = [name for name in PART1_NAMES if name in notebook.definitions]
    if len(part1) < 3:
        return None
    return ("This notebook looks like **HW4 Part 1 (building your own optimizers)**: it defines "
            + ", ".join(f"`{n}`" for n in part1) + " and neither `MyLoraLayer` nor `get_lora_model`. This is the "
            "Part 2 (LoRA) assignment: submit `hw4_part1.ipynb` to Part 1 and your LoRA notebook (`hw4_part2.ipynb`) "
            "here.")
