"""HW4 Part 2 (LoRA on BERT): spot checks of the student's LoRA code, on small random-init BERTs.

Only the notebook's imports and definitions run (`run_all_cells=False`): its data download, model download and
hours of training never do. The last-layer answer is top-level code on a global `model`, not a function, so its
cell is found here and its source travels in the probe's arguments; the probe runs it on a small model.
"""

from __future__ import annotations

import ast
import json
import re

from autograder.assignment import Assignment, Call, Seeds
from autograder.notebook import CodeCell, Notebook, python_source
from autograder.sandbox import Limits

__all__ = ["ASSIGNMENT", "SMALL_BERT", "make_calls", "last_layer_cell", "notebook_constants"]

# Small enough for Gradescope's default box (768 MB, CPU), with BERT's structure: 2 layers x (query, value).
SMALL_BERT = {"vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "intermediate_size": 128, "max_position_embeddings": 128, "num_labels": 5}
RANKS = (1, 16, 256)  # the course's ranks; 256 > hidden size is fine for counting
LAST_LAYER_ID = "last-layer"  # the course notebook's cell id
_ASSIGNS_GRAD = re.compile(r"requires_grad(_\s*\(|\s*=(?!=))")
_TOP_LEVEL_SKIP = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom, ast.Assert)


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
    """The cell whose top-level code sets `requires_grad` and mentions `classifier` (get_lora_model's cell does so
    inside a function and is not taken): the course's `last-layer` cell first, then the first such cell in
    notebook order; failing both, the `last-layer` cell as it is (the template's, say)."""
    by_id = [c for c in notebook.cells if c.id == LAST_LAYER_ID or c.id.startswith(LAST_LAYER_ID + "-")]
    answers = [c for c in notebook.cells
               if "classifier" in (code := _top_level_code(c)) and _ASSIGNS_GRAD.search(code)]
    return next((c for c in by_id if c in answers), None) or (answers or by_id or [None])[0]


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


def make_calls(notebook: Notebook, seeds: Seeds) -> list[Call]:
    cell = last_layer_cell(notebook)
    source = None
    if cell is not None:
        try:
            source = python_source(cell.source)
            ast.parse(source)
        except Exception:  # the probe reports the syntax error as the cell's first error
            source = f"raise SyntaxError('the last-layer cell ({cell.label}) has a syntax error')"
    model = {"config": SMALL_BERT, "rows": 4, "length": 16}
    return [
        Call("setup", "probe_setup", {"constants": notebook_constants(notebook), "device": "cpu"}),
        Call("layer_init", "probe_layer_init",
             {"seed": seeds("layer_init"), "in_features": 64, "out_features": 48, "r": 4, "lora_alpha": 8,
              "lora_dropout": 0.1}),
        # alpha / r, r / alpha and alpha differ in both pairs, and the second pair's scale is not 32 / 16.
        Call("scaling", "probe_scaling",
             {"seed": seeds("scaling"), "in_features": 12, "out_features": 10, "rows": 5,
              "pairs": [[2, 5], [8, 2]]}),
        Call("dropout", "probe_dropout",
             {"seed": seeds("dropout"), "size": 8, "rows": 32, "p": 0.9, "lora_alpha": 16}),
        Call("model", "probe_model",
             {**model, "seed": seeds("model"), "ranks": list(RANKS), "init_rank": 16, "lora_alpha": 32,
              "lora_dropout": 0.1}, timeout=120),
        Call("step", "probe_step",
             {**model, "seed": seeds("step"), "r": 4, "lora_alpha": 8, "lora_dropout": 0.1, "lr": 0.01}),
        # Last: a cell that hangs costs only its own check.
        Call("last_layer", "probe_last_layer",
             {"config": SMALL_BERT, "seed": seeds("last_layer"), "source": source,
              "cell": cell.label if cell else None}),
    ]


ASSIGNMENT = Assignment(
    name="hw4_part2",
    title="HW4 Part 2: LoRA (spot checks; the rest is graded by hand)",
    graded_names=("MyLoraConfig", "MyLoraLayer", "get_lora_model"),
    make_calls=make_calls,
    run_all_cells=False,
    limits=Limits(wall_seconds=540, cell_timeout=120, memory_mb=640),
    preload=("torch",),
)
