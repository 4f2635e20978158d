"""Static half of the "no torch.optim" rule: read an optimizer class's source (never run it).

The runtime half lives in probes.py (a trace function that records calls into torch/optim/ while the student's
optimizer runs). Either finding scores that optimizer 0.
"""

from __future__ import annotations

import ast

from autograder.notebook import Notebook, python_source

DYNAMIC = {"getattr", "__import__", "import_module", "eval", "exec", "compile", "globals", "vars"}


def _is_optim_chain(node: ast.AST, aliases: set[str]) -> bool:
    """`torch.optim`, `torch.optim.Adam`, `optim.SGD` or an alias of them (not a call's result)."""
    while isinstance(node, ast.Attribute):
        if node.attr == "optim":
            return True
        node = node.value
    return isinstance(node, ast.Name) and node.id in aliases | {"optim"}


def _optim_aliases(notebook: Notebook) -> set[str]:
    """Module-level names bound to torch.optim or anything in it, across the notebook."""
    aliases: set[str] = set()
    for cell in notebook.cells:
        try:
            tree = ast.parse(python_source(cell.source))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                aliases |= {a.asname for a in node.names if "optim" in a.name and a.asname}
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                aliases |= {a.asname or a.name for a in node.names if "optim" in module or a.name == "optim"}
            elif isinstance(node, ast.Assign) and _is_optim_chain(node.value, aliases):
                aliases |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return aliases


def _bound_inside(tree: ast.AST) -> set[str]:
    """Names the class binds itself (parameters, assignments, loop variables): not globals."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
    return bound


def findings(notebook: Notebook, class_name: str) -> list[str]:
    """Reasons, in Markdown, why the last definition of `class_name` reaches for torch.optim."""
    definition = notebook.last(class_name)
    if definition is None:
        return []
    tree = ast.parse(python_source(definition.source))
    aliases = _optim_aliases(notebook) - _bound_inside(tree)
    reasons = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "optim":
            reasons.append("uses `torch.optim`")
        elif isinstance(node, ast.Name) and node.id in aliases | {"optim"}:
            reasons.append(f"uses `{node.id}`, which is bound to `torch.optim`")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "optim" in node.value.lower():
            reasons.append(f"names `torch.optim` in a string ({node.value!r})")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if any("optim" in n for n in names):
                reasons.append("imports from `torch.optim`")
        elif isinstance(node, ast.Call):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called in DYNAMIC and not all(isinstance(a, ast.Constant) for a in node.args[1:2] or node.args[:1]):
                reasons.append(f"looks names up dynamically (`{called}(...)` with a computed name)")
    return sorted(set(reasons))
