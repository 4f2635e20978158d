"""HW4 Part 1 (optimizers): which probes run, on which hidden inputs.

Every optimizer is probed on its own, with a seed derived from the submission and the secret, twice:
with the notebook's hyper-parameters on an ordinary problem ("handout"), and with unusual ones on a problem
whose optimum lies near the starting point, where gradients are small and details such as the 0.1
accumulator start or where epsilon goes change the steps ("custom").
"""

from __future__ import annotations

import ast
import base64
from typing import TYPE_CHECKING

from autograder.assignment import Assignment, Call, MeasurementPolicy, Seeds
from autograder.notebook import Notebook
from autograder.limits import Limits

if TYPE_CHECKING:
    import torch

OPTIMIZERS = ("GD", "SGD", "AdaGrad", "Adam")
HANDOUT_KWARGS = {"GD": {}, "SGD": {}, "AdaGrad": {"lr": 0.1}, "Adam": {"lr": 0.1}}
CUSTOM_KWARGS = {
    "GD": {"lr": 0.05},
    "SGD": {"lr": 0.03},
    "AdaGrad": {"lr": 0.3, "epsilon": 0.5},
    "Adam": {"lr": 0.05, "beta1": 0.8, "beta2": 0.95, "epsilon": 0.3},
}
HANDOUT_STEPS = 300  # the notebook's own evaluation
CUSTOM_STEPS = 100


ROWS = 2000  # the course's shapes: X_train (2000, 2), y_train (2000, 1); a hidden problem differs only in values


def problem(seed: int, near_start: bool = False) -> dict:
    """A hidden regression problem in the course's shapes: X (2000, 2) and y (2000, 1), packed. Code that is
    right on the course's data (a constant NUM_EXAMPLES = 2000, say) is right here."""
    import torch  # here, not at the top: only the child that makes the calls imports it (answers.py)
    g = torch.Generator().manual_seed(seed)
    n = ROWS
    X = torch.randn(n, 2, generator=g)
    if near_start:  # the model starts at w = [5, 5], b = 10
        w, b, noise = 5 + 0.3 * torch.randn(2, 1, generator=g), 10 + 0.3 * torch.randn(1, generator=g), 0.1
    else:
        w, b, noise = 6 * torch.rand(2, 1, generator=g) - 3, 4 * torch.rand(1, generator=g) - 2, 0.5
    y = X @ w + b + noise * torch.randn(n, 1, generator=g)
    return {"X": packed(X), "y": packed(y)}


def packed(tensor: torch.Tensor) -> dict:
    """A float32 tensor as JSON: its bytes in base64, and its shape. A problem's 6,000 numbers as text cost more to
    write and read, four times on their way to the measurement, than its probe takes to run (probes.unpacked,
    judge.unpacked)."""
    import torch
    data = tensor.to(torch.float32).contiguous().numpy().tobytes()
    return {"float32": base64.b64encode(data).decode("ascii"), "shape": list(tensor.shape)}


# Where torch's stream stands when the notebook's evaluation of each optimizer starts, if every earlier one-sample
# optimizer drew exactly one index per step as the reference does: no optimizer's check depends on another's code.
PUBLIC_DRAWS = {"GD": 0, "SGD": 0, "AdaGrad": HANDOUT_STEPS, "Adam": 2 * HANDOUT_STEPS}


def make_calls(notebook: Notebook, seeds: Seeds) -> list[Call]:
    import torch
    g = torch.Generator().manual_seed(seeds("model"))
    calls = [
        Call("forward", "probe_forward", {"X": torch.randn(7, 2, generator=g).tolist()}),
        Call("loss", "probe_loss", {"y_true": torch.randn(9, 1, generator=g).tolist(),
                                    "y_pred": torch.randn(9, 1, generator=g).tolist()}),
    ]
    for name in OPTIMIZERS:
        for run, kwargs, steps, near in (("handout", HANDOUT_KWARGS, HANDOUT_STEPS, False),
                                         ("custom", CUSTOM_KWARGS, CUSTOM_STEPS, True)):
            seed = seeds(f"{name}:{run}")
            args = {"class": name, "kwargs": kwargs[name], "steps": steps, "seed": seed, **problem(seed, near)}
            calls.append(Call(f"{name}:{run}", "probe_optimizer", args, seed=seed))
        calls.append(Call(f"{name}:public", "probe_public",
                          {"class": name, "kwargs": HANDOUT_KWARGS[name], "steps": HANDOUT_STEPS,
                           "draws": PUBLIC_DRAWS[name]}, seed=seeds(f"{name}:public")))
    return calls


# Top-level code of the notebook that steps an optimizer or trains: the given evaluation cells, the (1c) demo.
GIVEN_RUN_NAMES = frozenset({"apply_gradient", "calculate_gradient", "optim", "backward", "step", "zero_grad"})
LOOPS = (ast.For, ast.AsyncFor, ast.While, ast.Assert)


def runs_in_measurement(statement: ast.stmt) -> bool:
    """A top-level statement graded classes may depend on (constants, `device`, the data cell, a helper's table)
    rather than the given evaluation: no loop (the evaluation loops, (1c)'s training, a student's own runs: slow
    and never needed by a definition), no assert (the locked checks), nothing that steps an optimizer or
    reaches torch.optim."""
    for node in ast.walk(statement):
        if isinstance(node, LOOPS):
            return False
        name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
        if name in GIVEN_RUN_NAMES:
            return False
    return True


ASSIGNMENT = Assignment(
    name="hw4_part1",
    title="HW4 Part 1: building your own optimizers",
    graded_names=("LinearModel", "loss", "GD", "SGD", "AdaGrad", "Adam"),
    make_calls=make_calls,
    run_all_cells=True,
    # 640 MB for the sandboxed run leaves the grader room in Gradescope's default 768 MB box.
    limits=Limits(wall_seconds=540, cell_timeout=120, memory_mb=640),
    # torch._dynamo: torch.optim imports it on an optimizer's first step (the notebook's given (1c) cell).
    preload=("torch", "torch._dynamo", "numpy"),
    measured="optimizers",
    # torch.optim and its fused/foreach kernels: unusable and unreadable while the definitions are measured
    policy=MeasurementPolicy(imports=("torch",), forbidden=("torch.optim",),
                             kernels=("aten::_fused_", "aten::_foreach_")),
    context=runs_in_measurement,
    absent_modules=("matplotlib", "transformers", "datasets", "peft", "google"),
)
