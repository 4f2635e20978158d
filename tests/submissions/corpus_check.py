"""Does each corpus notebook's code do what its name says? A check that uses the reference (solution/part1.py,
proven against torch.optim by tests/test_part1_oracle.py) as the oracle, not the grader.

For one optimizer of one notebook: load the notebook's imports, functions and classes (its top-level work is
never run), then step its class next to the reference on small generic problems. The gradient it returns
must be the gradient at exactly one training sample (found by trying each, so any generator passes; for GD,
at all of them), and its update the reference's with that sample. Verdict "same" or "differs at step k".

    python -m tests.submissions.corpus_check NAME ...   # prints {notebook: {optimizer: verdict}} as JSON

Only for notebooks whose definitions are harmless to run here (correct, wrong and torch.optim-route variants).
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import torch

from solution import part1
from tests.submissions import course_nb as nb

CORPUS = Path(__file__).resolve().parent / "hw4_part1"
STEPS = 12
# Hyper-parameters, and whether the targets sit close to the starting model (small gradients, where the
# accumulator's 0.1 and a large epsilon show).
RUNS = {
    "GD": [({"lr": 0.05}, False)],
    "SGD": [({"lr": 0.03}, False)],
    "AdaGrad": [({"lr": 0.1}, False), ({"lr": 0.3, "epsilon": 0.5}, True)],
    "Adam": [({"lr": 0.1}, False), ({"lr": 0.1, "beta1": 0.8, "beta2": 0.95, "epsilon": 0.3}, True)],
}


def definitions(notebook: dict) -> str:
    """Imports, functions and classes of every code cell, in order (what a definitions-only run keeps)."""
    kept = []
    for current in notebook["cells"]:
        if current["cell_type"] != "code":
            continue
        source = "\n".join("" if line.lstrip().startswith(("!", "%")) else line
                           for line in nb.text(current).split("\n"))
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        kept += [ast.get_source_segment(source, node) for node in tree.body
                 if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))]
    return "\n\n".join(kept)


def load(name: str) -> dict:
    """The definitions, and the notebook globals some of them read (as the notebook defines them, except the
    row count: these problems have 24 rows)."""
    X_train, y_train = part1.make_data()
    namespace: dict = {"__name__": f"corpus_{name}", "device": torch.device("cpu"), "NUM_EXAMPLES": 24,
                       "X_train": X_train, "y_train": y_train}
    exec(compile(definitions(nb.load(CORPUS / f"{name}.ipynb")), name, "exec"), namespace)
    return namespace


def _problem(seed: int, small: bool) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(24, 2, generator=generator)
    if small:  # targets near the starting model's predictions: gradients of order 0.1
        return X, X @ torch.tensor([[5.0], [5.0]]) + 10 + 0.05 * torch.randn(24, 1, generator=generator)
    return X, X @ torch.tensor([[1.5], [-2.0]]) + 0.5 + 0.3 * torch.randn(24, 1, generator=generator)


def _params(model) -> torch.Tensor:
    return _flat((model.w, model.b))


def compare(namespace: dict, optimizer: str, kwargs: dict, small: bool, seed: int = 5) -> str:
    X, y = _problem(seed, small)
    theirs, reference = namespace[optimizer](**kwargs), getattr(part1, optimizer)(**kwargs)
    model, reference_model = namespace["LinearModel"](), part1.LinearModel()
    torch.manual_seed(seed)
    rows = [slice(None)] if optimizer == "GD" else [slice(i, i + 1) for i in range(len(X))]
    for step in range(1, STEPS + 1):
        grads = theirs.calculate_gradient(X, y, model)
        # Which rows did it use? The gradient says: generic data give every sample its own.
        used = [r for r in rows if torch.allclose(_flat(grads), _flat(part1._squared_error_gradient(
            X[r], y[r], reference_model)), rtol=1e-4, atol=1e-6)]
        if len(used) != 1:
            return f"differs at step {step} (gradient)"
        theirs.apply_gradient(grads, model)
        reference.apply_gradient(part1._squared_error_gradient(X[used[0]], y[used[0]], reference_model),
                                 reference_model)
        if not torch.allclose(_params(model), _params(reference_model), rtol=1e-4, atol=1e-6):
            return f"differs at step {step}"
    return "same"


def _flat(values) -> torch.Tensor:
    return torch.cat([torch.as_tensor(v).reshape(-1) for v in values]).float()


def compare_loss(namespace: dict) -> str:
    y_true, y_pred = torch.randn(7, 1), torch.randn(7, 1)
    got = namespace["loss"](y_true, y_pred)
    return "same" if torch.allclose(torch.as_tensor(got), part1.loss(y_true, y_pred)) else "differs"


def verdicts(name: str) -> dict[str, str]:
    namespace = load(name)
    found = {"loss": compare_loss(namespace)}
    for optimizer, runs in RUNS.items():
        results = []
        for kwargs, small in runs:
            try:
                results.append(compare(namespace, optimizer, kwargs, small))
            except (Exception, SystemExit) as error:  # a stub, a class that cannot run, an exit()
                results.append(f"error: {type(error).__name__}")
        found[optimizer] = next((r for r in results if r != "same"), "same")
    return found


if __name__ == "__main__":
    found = {name: verdicts(name) for name in sys.argv[1:]}
    print(json.dumps(found))  # the last line: what the notebooks print comes before it
