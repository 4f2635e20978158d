"""HW4 Part 1 probes: what is measured in the measurement process, with the student's definitions.

Each entry point runs in a fresh process holding the notebook's imports, definitions and top-level context (its
constants, `device`, data; never the given evaluation cells; graded classes loaded by `_autograder.load`), where
torch.optim cannot run. Inputs arrive as JSON; results leave as plain lists and numbers.
The grader's cases (cases.py) judge them: the optimizers' runs step by step against the update rule (replay.py).
The reference answers for forward and loss come from the same functions called with the solution's classes.
"""

import base64
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # bound by the measurement process only (see ProbeHelpers)
    from autograder.assignment import ProbeHelpers
    _autograder: ProbeHelpers


def _flat(value) -> list:
    """w (1, 2) and b () as one flat list of floats, whatever shapes and containers the student used (tuples,
    lists, dicts in their order, tensors, numpy arrays, plain numbers)."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [x for part in value for x in _flat(part)]
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64).reshape(-1).tolist()
    return torch.as_tensor(value, dtype=torch.float64).detach().reshape(-1).tolist()


def unpacked(packed: dict) -> torch.Tensor:
    """The float32 tensor hw4_part1.packed wrote."""
    data = bytearray(base64.b64decode(packed["float32"]))  # writable: torch warns about a read-only buffer
    return torch.frombuffer(data, dtype=torch.float32).reshape(packed["shape"])


def _readable(grads):
    """The gradient as three numbers, or None when it is not (grad_w, grad_b)-shaped: the replay then tries every
    sample instead of reading which one this step used."""
    try:
        flat = _flat(grads)
    except Exception:
        return None
    return flat if len(flat) == 3 else None


def _state(optimizer) -> dict:
    state: dict[str, Any] = {}
    for name in ("accumulator", "m", "v", "t"):
        if hasattr(optimizer, name):
            try:
                value = getattr(optimizer, name)
                state[name] = None if value is None else _flat(value)  # None: created at the first step
            except Exception as error:  # state the probe cannot read is reported, not fatal
                state[name] = f"unreadable: {type(error).__name__}"
    return state


def measure_forward(Model, args: dict) -> dict:
    model = Model()
    public = model(torch.tensor([[1.0, 2.0]]))
    batch = model(torch.tensor(args["X"]))
    return {"public": _flat(public), "batch": _flat(batch), "batch_shape": list(batch.shape)}


def measure_loss(loss, args: dict) -> dict:
    public = loss(torch.tensor([[25.0]]), torch.tensor([3.0]))  # the notebook's (1, 1) vs (1,) broadcast
    hidden = loss(torch.tensor(args["y_true"]), torch.tensor(args["y_pred"]))
    return {"public": _flat(public), "hidden": _flat(hidden), "hidden_shape": list(torch.as_tensor(hidden).shape)}


def measure_optimizer(Optimizer, Model, X, y, kwargs: dict, steps: int, describe=repr) -> dict:
    """`steps` steps from a fresh model: the parameters after each, the gradient calculate_gradient returned at
    each (read before apply_gradient runs), the state around them; on an error, the method that raised it."""
    result: dict[str, Any] = {"trajectory": [], "gradients": [], "error": None, "failed_in": None}
    where = "__init__"
    try:
        optimizer = Optimizer(**kwargs)
        where = "LinearModel()"
        model = Model()
        result["state_before"] = _state(optimizer)
        for _ in range(steps):
            where = "calculate_gradient"
            grads = optimizer.calculate_gradient(X, y, model)
            result["gradients"].append(_readable(grads))
            where = "apply_gradient"
            optimizer.apply_gradient(grads, model)
            where = "the parameters after apply_gradient"
            result["trajectory"].append(_flat((model.w, model.b)))
        result["state_after"] = _state(optimizer)
    except (Exception, SystemExit) as error:  # SystemExit too: a student's exit() must not stop the probe
        result["error"], result["failed_in"] = describe(error), where
    return result


def _reseed(seed: int) -> None:
    """The call's own seed, after the notebook's top-level code (its data cell reseeds torch with 10605)."""
    import random
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy
        numpy.random.seed(seed % 2**32)
    except ImportError:
        pass


def course_data() -> tuple:
    """The notebook's data recipe (1b): seed 10605, X, noise, y."""
    torch.manual_seed(10605)
    X = torch.randn(2000, 2)
    noise = torch.randn(2000, 1)
    return X, X @ torch.tensor([[4.0], [3.0]]) + 2 + noise


# Entry points: called in the measurement process, where `_autograder` exists.

def probe_forward(args: dict) -> dict:
    return measure_forward(_autograder.load("LinearModel", base="Module"), args)


def probe_loss(args: dict) -> dict:
    return measure_loss(_autograder.load("loss"), args)


def probe_optimizer(args: dict) -> dict:
    """A hidden problem (X, y given), the generators seeded by the measurement process for this call."""
    Optimizer = _autograder.load(args["class"])
    Model = _autograder.load("LinearModel", not_base="Module")
    X, y = unpacked(args["X"]), unpacked(args["y"])
    _reseed(args.get("seed", 0))
    return measure_optimizer(Optimizer, Model, X, y, args["kwargs"],
                             args["steps"], describe=_autograder.describe)


def probe_public(args: dict) -> dict:
    """The notebook's own evaluation of one optimizer: the course data, torch's stream where the reference's
    earlier optimizers leave it (`draws` one-index draws), 300 steps with the notebook's hyper-parameters."""
    X, y = course_data()
    for _ in range(args["draws"]):
        torch.randint(0, len(X), (1,))
    Optimizer = _autograder.load(args["class"])
    Model = _autograder.load("LinearModel", not_base="Module")
    return measure_optimizer(Optimizer, Model, X, y, args["kwargs"], args["steps"], describe=_autograder.describe)
