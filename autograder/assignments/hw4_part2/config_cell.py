"""The student's LoRA configuration, read from the notebook's config cell without running it.

The course's config cell reads `lora_config = MyLoraConfig(r=16, target_modules=[...], lora_alpha=32,
lora_dropout=0.4)` followed, in the same cell, by `model = get_lora_model(model, lora_config)`. That cell also
touches the downloaded model, so it never runs in the grader: the call's arguments are evaluated here with
`ast.literal_eval` (positional or keyword). A name that the notebook binds to a literal at top level
(`LORA_R = 16`) is read as that literal too; anything else makes the configuration unreadable.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import TypeGuard

from autograder.notebook import CodeCell, Notebook, python_source

__all__ = ["COURSE_CONFIG", "ARGUMENTS", "LoraSettings", "ConfigReading", "read_config", "find_config_cell",
           "matched_modules", "bert_base_module_names", "grouped"]

ARGUMENTS = ("r", "target_modules", "lora_alpha", "lora_dropout")  # MyLoraConfig's positional order
_CONFIG_CLASS = "MyLoraConfig"


@dataclass(frozen=True)
class LoraSettings:
    r: int
    target_modules: tuple[str, ...]
    lora_alpha: float
    lora_dropout: float

    def to_json(self) -> dict:
        return {"r": self.r, "target_modules": list(self.target_modules), "lora_alpha": self.lora_alpha,
                "lora_dropout": self.lora_dropout}


COURSE_CONFIG = LoraSettings(r=16, target_modules=("query", "value"), lora_alpha=32, lora_dropout=0.4)


@dataclass(frozen=True)
class ConfigReading:
    """What the config cell says: `settings` when it could be read, else `problem` (a Markdown sentence)."""

    settings: LoraSettings | None
    problem: str | None
    cell: CodeCell | None = None
    call_source: str = ""  # the `MyLoraConfig(...)` call as written
    notes: list[str] = field(default_factory=list)

    @property
    def effective(self) -> LoraSettings:
        """The student's settings, or the course's where they cannot be read."""
        return self.settings or COURSE_CONFIG


def _parse(cell: CodeCell) -> ast.Module | None:
    try:
        return ast.parse(python_source(cell.source))
    except Exception:  # a syntax error is reported by the summary
        return None


def _is_config_call(node: ast.AST) -> TypeGuard[ast.Call]:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == _CONFIG_CLASS


def _calls_get_lora_model(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "get_lora_model"
               for n in ast.walk(node))


def _candidates(tree: ast.Module) -> list[tuple[int, ast.Call]]:
    """(rank, call) of each top-level MyLoraConfig(...) call in a cell; a lower rank is a better match."""
    found: list[tuple[int, ast.Call]] = []
    for index, node in enumerate(tree.body):
        later = tree.body[index + 1:]
        if isinstance(node, ast.Assign) and _is_config_call(node.value):
            names = {t.id for t in node.targets if isinstance(t, ast.Name)}
            passed = any(isinstance(a, ast.Name) and a.id in names
                         for n in later for c in ast.walk(n) if isinstance(c, ast.Call)
                         and isinstance(c.func, ast.Name) and c.func.id == "get_lora_model" for a in c.args)
            found.append((0 if passed else 2, node.value))
        elif _calls_get_lora_model(node):  # get_lora_model(model, MyLoraConfig(...)) in one line
            found.extend((1, n) for n in ast.walk(node) if _is_config_call(n))
    return found


def find_config_cell(notebook: Notebook) -> tuple[CodeCell, ast.Call] | None:
    """The course's config cell first (an assignment from `MyLoraConfig(...)` that `get_lora_model` then
    receives in the same cell), else a `MyLoraConfig(...)` passed to `get_lora_model` directly, else any
    top-level `x = MyLoraConfig(...)`; the first in notebook order within each kind."""
    best = None
    for cell in notebook.cells:
        tree = _parse(cell)
        for rank, call in _candidates(tree) if tree else []:
            if best is None or rank < best[0]:
                best = (rank, cell, call)
    return (best[1], best[2]) if best else None


def _literal_constants(notebook: Notebook) -> dict:
    constants = {}
    for cell in notebook.cells:
        for node in (_parse(cell) or ast.Module([], [])).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                try:
                    constants[node.targets[0].id] = ast.literal_eval(node.value)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    constants.pop(node.targets[0].id, None)  # rebound to something that is not a literal
    return constants


def _value(node: ast.expr, constants: dict, source: str):
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(f"`{ast.get_source_segment(source, node) or ast.unparse(node)}` is not a literal "
                         "(a number, a string or a list of strings)") from None


def _checked(values: dict) -> LoraSettings:
    for name, value in values.items():
        if value is Ellipsis or isinstance(value, (list, tuple, set)) and Ellipsis in value:
            raise ValueError(f"`{name}` is still the placeholder `...`")
    r, targets, alpha, dropout = (values[name] for name in ARGUMENTS)
    if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
        raise ValueError(f"`r` should be a positive integer, not `{r!r}`")
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, (list, tuple, set)) or not targets or not all(isinstance(t, str) for t in targets):
        raise ValueError(f"`target_modules` should be a list of module names, not `{targets!r}`")
    for name, number in (("lora_alpha", alpha), ("lora_dropout", dropout)):
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ValueError(f"`{name}` should be a number, not `{number!r}`")
    if not 0 <= dropout < 1:
        raise ValueError(f"`lora_dropout` should lie in [0, 1), not `{dropout!r}`")
    return LoraSettings(r, tuple(targets), alpha, dropout)


def read_config(notebook: Notebook) -> ConfigReading:
    found = find_config_cell(notebook)
    if found is None:
        return ConfigReading(None, "No config cell was found: the cell that sets `lora_config = MyLoraConfig(r=16, "
                                   "target_modules=[...], lora_alpha=32, lora_dropout=0.4)` and then calls "
                                   "`model = get_lora_model(model, lora_config)`.")
    cell, call = found
    source = python_source(cell.source)
    shown = ast.get_source_segment(source, call) or ast.unparse(call)
    where = f"In your config cell ({cell.label}), `{' '.join(shown.split())[:200]}`"
    constants = _literal_constants(notebook)
    values: dict = {}
    try:
        if len(call.args) > len(ARGUMENTS) or any(isinstance(a, ast.Starred) for a in call.args):
            raise ValueError(f"`{_CONFIG_CLASS}` takes the four arguments {', '.join(ARGUMENTS)}")
        for name, node in zip(ARGUMENTS, call.args):
            values[name] = _value(node, constants, source)
        for keyword in call.keywords:
            if keyword.arg not in ARGUMENTS:
                raise ValueError(f"`{_CONFIG_CLASS}` has no argument `{keyword.arg or '**'}`; its arguments are "
                                 + ", ".join(f"`{a}`" for a in ARGUMENTS))
            if keyword.arg in values:
                raise ValueError(f"`{keyword.arg}` is given twice")
            values[keyword.arg] = _value(keyword.value, constants, source)
        missing = [a for a in ARGUMENTS if a not in values]
        if missing:
            raise ValueError("it does not set " + ", ".join(f"`{a}`" for a in missing))
        settings = _checked(values)
    except ValueError as error:
        return ConfigReading(None, f"{where} could not be read without running it: {error}.", cell, shown)
    return ConfigReading(settings, None, cell, shown)


# bert-base-uncased's classifier (BertForSequenceClassification, 12 layers), as `named_modules()` names its
# modules; written out rather than built so that the grader never imports torch and transformers for it (their
# memory would sit beside the student's processes). tests/test_part2_grading.py compares it with transformers.
BERT_BASE_LAYERS = 12
_BERT_LAYER_MODULES = ("attention", "attention.self", "attention.self.query", "attention.self.key",
                       "attention.self.value", "attention.self.dropout", "attention.output",
                       "attention.output.dense", "attention.output.LayerNorm", "attention.output.dropout",
                       "intermediate", "intermediate.dense", "intermediate.intermediate_act_fn", "output",
                       "output.dense", "output.LayerNorm", "output.dropout")


def bert_base_module_names() -> list[str]:
    """Every module name of bert-base-uncased's classifier, in `named_modules()` order."""
    names = ["bert", "bert.embeddings"]
    names += [f"bert.embeddings.{n}" for n in ("word_embeddings", "position_embeddings", "token_type_embeddings",
                                                "LayerNorm", "dropout")]
    names += ["bert.encoder", "bert.encoder.layer"]
    for layer in range(BERT_BASE_LAYERS):
        names += [f"bert.encoder.layer.{layer}"] + [f"bert.encoder.layer.{layer}.{n}" for n in _BERT_LAYER_MODULES]
    return names + ["bert.pooler", "bert.pooler.dense", "bert.pooler.activation", "dropout", "classifier"]


def matched_modules(targets: tuple[str, ...]) -> list[str]:
    """The bert-base modules that a replacement loop testing `name.endswith(target)` would wrap."""
    return [name for name in bert_base_module_names() if any(name.endswith(t) for t in targets)]


def grouped(names: list[str]) -> list[str]:
    """`bert.encoder.layer.N.attention.self.key` (12x) style summary of module names."""
    counts: dict[str, int] = {}
    for name in names:
        parts = ["N" if p.isdigit() else p for p in name.split(".")]
        key = ".".join(parts)
        counts[key] = counts.get(key, 0) + 1
    return [f"`{key}`" + (f" ({n}x)" if n > 1 else "") for key, n in counts.items()]
