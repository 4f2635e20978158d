"""The reference's answer to each probe call: the same measurement code, run on the solution's classes."""

from __future__ import annotations

import solution
from autograder.assignment import Call
from autograder.assignments.hw4_part1 import probes
from solution.part1 import train_with_torch_adam


def expected(call: Call) -> dict:
    args = call.args
    if call.entry == "probe_forward":
        return probes.measure_forward(solution.TorchLinearModel, args)
    if call.entry == "probe_loss":
        return probes.measure_loss(solution.loss, args)
    if call.entry == "probe_builtin_adam":
        return probes.measure_builtin_adam(solution.TorchLinearModel, train_with_torch_adam, args)
    if call.entry == "probe_optimizer":
        return probes.measure_optimizer(getattr(solution, args["class"]), solution.LinearModel, args)
    if call.entry == "probe_public_protocol":
        classes = {name: getattr(solution, name) for name in ("GD", "SGD", "AdaGrad", "Adam")}
        return probes.measure_public_protocol(classes, solution.LinearModel, args["steps"])
    raise ValueError(f"no reference for probe entry {call.entry!r}")


def course_mse(params: list[float]) -> float:
    """Training-set MSE on the course data of flat parameters [w1, w2, b], computed here, not in the kernel."""
    import torch
    X, y = solution.make_data()
    model = solution.LinearModel()
    model.w, model.b = torch.tensor([params[:2]]), torch.tensor(params[2])
    return solution.mse(X, y, model)
