"""Written 1.1 (f)-(g): the network as a 4-step Wengert list, executed forward and backward.

(f) Steps 1 and 3 are 3-input functions (weight, input, bias), step 2 is ReLU, step 4 the loss:
    z1 = q = f1(W1, x, b1),  z2 = h = f2(q),  z3 = p = f3(W2, h, b2),  z4 = L = f4(p, y).
(g) Reverse mode needs, for every step, the backward function of each input that leads to a parameter: given the
gradient of L with respect to the step's output, the gradient with respect to that input. Those for x and y are
never needed (data, not parameters).
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch

from solution.answer_key.formulas import Point, relu_mask

__all__ = ["Step", "WENGERT", "BACKWARD", "execute", "backward"]


@dataclass(frozen=True)
class Step:
    output: str
    function: str  # the name the key prints
    inputs: tuple[str, ...]
    apply: Callable[..., torch.Tensor]


WENGERT: tuple[Step, ...] = (
    Step("q", "f1", ("W1", "x", "b1"), lambda W, x, b: W @ x + b),
    Step("h", "f2", ("q",), torch.relu),
    Step("p", "f3", ("W2", "h", "b2"), lambda W, h, b: W @ h + b),
    Step("L", "f4", ("p", "y"), lambda p, y: (p - y) @ (p - y)),
)


@dataclass(frozen=True)
class Backward:
    """d L / d `wrt`, from the step's values and d L / d (step output); `equals` names the symbolic result."""
    step: str
    wrt: str
    apply: Callable[[dict[str, torch.Tensor], torch.Tensor], torch.Tensor]
    formula: str  # LaTeX, as the key prints it
    equals: str  # which closed form (or intermediate) this is


BACKWARD: tuple[Backward, ...] = (
    Backward("f4", "p", lambda v, g: g * 2 * (v["p"] - v["y"]),
             r"\bar p = \bar L \cdot 2(p - y)", "dL/dp, with dL/dL = 1"),
    Backward("f3", "W2", lambda v, g: torch.outer(g, v["h"]),
             r"\bar W^{(2)} = \bar p\, h^\top", "(a)"),
    Backward("f3", "b2", lambda v, g: g, r"\bar b^{(2)} = \bar p", "(b)"),
    Backward("f3", "h", lambda v, g: v["W2"].T @ g, r"\bar h = W^{(2)\top} \bar p", "dL/dh"),
    Backward("f2", "q", lambda v, g: g * relu_mask(v["q"]),
             r"\bar q = \bar h \odot \mathbb{1}[q > 0]", "dL/dq"),
    Backward("f1", "W1", lambda v, g: torch.outer(g, v["x"]), r"\bar W^{(1)} = \bar q\, x^\top", "(c)"),
    Backward("f1", "b1", lambda v, g: g, r"\bar b^{(1)} = \bar q", "(d)"),
)

_OUTPUT_OF = {step.function: step.output for step in WENGERT}


def execute(pt: Point) -> dict[str, torch.Tensor]:
    """Run the list forward; returns every value by name (inputs included)."""
    values = {name: getattr(pt, name) for name in ("W1", "b1", "W2", "b2", "x", "y")}
    for step in WENGERT:
        values[step.output] = step.apply(*(values[name] for name in step.inputs))
    return values


def backward(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Run the backward functions in reverse order of the list; returns dL/d(name) for every name reached."""
    grads = {"L": torch.ones((), dtype=values["L"].dtype)}
    for bw in BACKWARD:  # already in reverse order of the steps
        grads[bw.wrt] = bw.apply(values, grads[_OUTPUT_OF[bw.step]])
    return grads
