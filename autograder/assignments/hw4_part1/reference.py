"""The reference's answer to each probe call. Forward and loss: the same measurement code on the solution's
classes. Optimizer runs are judged step by step against the update rule instead (replay.py), from the student's
own states, so the reference's answer there is the problem itself."""

from __future__ import annotations

import solution
from autograder.assignment import Call
from autograder.assignments.hw4_part1 import probes


def expected(call: Call) -> dict:
    if call.entry == "probe_forward":
        return probes.measure_forward(solution.TorchLinearModel, call.args)
    if call.entry == "probe_loss":
        return probes.measure_loss(solution.loss, call.args)
    if call.entry in ("probe_optimizer", "probe_public"):
        return {}
    raise ValueError(f"no reference for probe entry {call.entry!r}")


def course_problem() -> tuple[list, list]:
    X, y = solution.make_data()
    return X.tolist(), y.tolist()


def course_mse(params: list[float]) -> float:
    """Training-set MSE on the course data of flat parameters [w1, w2, b], computed here, not in the sandbox."""
    import torch
    X, y = solution.make_data()
    model = solution.LinearModel()
    model.w, model.b = torch.tensor([params[:2]]), torch.tensor(params[2])
    return solution.mse(X, y, model)
