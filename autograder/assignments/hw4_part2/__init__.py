"""HW4 Part 2 (LoRA on BERT): spot checks of the student's LoRA code, on small random-init BERTs.

Only the notebook's imports and definitions run (`run_all_cells=False`): its data download, model download and
hours of training never do. Two answers are top-level code rather than definitions, so they are read here: the
config cell's `MyLoraConfig(...)` call is evaluated as literals (config_cell.py), and the last-layer cell's source
travels in its probe's arguments and runs there on a small model (cells.py).
"""

from __future__ import annotations

import ast

from autograder.assignment import Assignment, Call, MeasurementPolicy, Seeds
from autograder.assignments.hw4_part2.cells import last_layer_cell, notebook_constants
from autograder.assignments.hw4_part2.config_cell import COURSE_CONFIG, read_config
from autograder.notebook import Notebook, python_source
from autograder.limits import Limits

__all__ = ["ASSIGNMENT", "SMALL_BERT", "COURSE_TARGETS", "make_calls", "last_layer_cell", "notebook_constants"]

# Small enough for Gradescope's default box (768 MB, CPU), with BERT's structure: 2 layers x (query, value).
SMALL_BERT = {"vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "intermediate_size": 128, "max_position_embeddings": 128, "num_labels": 5}
RANKS = (1, 16, 256)  # the course's ranks; 256 > hidden size is fine for counting
COURSE_TARGETS = list(COURSE_CONFIG.target_modules)


def _last_layer_source(notebook: Notebook) -> tuple[str | None, str | None]:
    cell = last_layer_cell(notebook)
    if cell is None:
        return None, None
    try:
        source = python_source(cell.source)
        compile(source, "<last-layer cell>", "exec")
    except Exception:  # the probe reports the syntax error as the cell's first error
        source = f"raise SyntaxError('the last-layer cell ({cell.label}) has a syntax error')"
    return source, cell.label


def make_calls(notebook: Notebook, seeds: Seeds) -> list[Call]:
    source, label = _last_layer_source(notebook)
    # Definitions may read setup-cell constants (LORA_DROPOUT, ...) that do not run here; every call gets them.
    common = {"constants": notebook_constants(notebook)}
    model = {**common, "config": SMALL_BERT, "rows": 4, "length": 16, "targets": COURSE_TARGETS}
    return [
        Call("layer_init", "probe_layer_init",
             {**common, "seed": seeds("layer_init"), "in_features": 64, "out_features": 48, "r": 4, "lora_alpha": 8,
              "lora_dropout": 0.1}),
        # alpha / r, r / alpha and alpha differ in both pairs, and the second pair's scale is not 32 / 16.
        Call("scaling", "probe_scaling",
             {**common, "seed": seeds("scaling"), "in_features": 12, "out_features": 10, "rows": 5,
              "pairs": [[2, 5], [8, 2]]}),
        Call("dropout", "probe_dropout",
             {**common, "seed": seeds("dropout"), "size": 8, "rows": 32, "p": 0.9, "lora_alpha": 16}),
        # The counts use the course's targets (the config is graded on its own); the fresh-model check uses the
        # student's configuration, as their notebook builds it.
        Call("model", "probe_model",
             {**model, "seed": seeds("model"), "ranks": list(RANKS), "lora_alpha": 32, "lora_dropout": 0.1,
              "student": read_config(notebook).effective.to_json()}, timeout=120),
        Call("step", "probe_step",
             {**model, "seed": seeds("step"), "r": 4, "lora_alpha": 8, "lora_dropout": 0.1, "lr": 0.01}),
        # Last: a cell that hangs costs only its own check.
        Call("last_layer", "probe_last_layer",
             {**common, "config": SMALL_BERT, "seed": seeds("last_layer"), "source": source, "cell": label}),
    ]


def literal_constant(statement: ast.stmt) -> bool:
    """`NUM_LABELS = 5`, `LORA_ALPHA = 32`: a setup cell's literal constants, which definitions read (as default
    arguments, say), run where the code is measured; nothing else of the notebook's top level does."""
    if not isinstance(statement, ast.Assign) or not all(isinstance(t, ast.Name) for t in statement.targets):
        return False
    try:
        ast.literal_eval(statement.value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


ASSIGNMENT = Assignment(
    name="hw4_part2",
    title="HW4 Part 2: LoRA (spot checks; the rest is graded by hand)",
    graded_names=("MyLoraConfig", "MyLoraLayer", "get_lora_model"),
    make_calls=make_calls,
    run_all_cells=False,
    limits=Limits(wall_seconds=540, cell_timeout=120, memory_mb=640),
    # BERT's transformers modules (the notebook's and the probes' imports): imported once and shared by every
    # measurement child, rather than imported again in each (100-200 MB and seconds of CPU each time).
    preload=("torch", "transformers.models.bert.modeling_bert"),
    # torch.optim and its fused/foreach kernels: unusable and unreadable while the definitions are measured
    policy=MeasurementPolicy(imports=("torch",), forbidden=("torch.optim",),
                             kernels=("aten::_fused_", "aten::_foreach_")),
    # The image has no matplotlib and no datasets (the notebook's plots and SST-5 download never run here).
    absent_modules=("matplotlib", "datasets", "google"),
    context=literal_constant,
)
