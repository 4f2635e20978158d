"""Written 1.1 (a)-(e) as code: the network, each partial in index form and in matrix form, and autograd.

Network (one sample): q = W1 x + b1, h = ReLU(q), p = W2 h + b2, L = (p - y)^T (p - y), with W1 of shape (H1, D),
W2 of shape (H2, H1). Every gradient has the shape of its parameter (numerator layout, torch's); the transposed
(denominator) layout is accepted in written answers.

An index form is a list of factors with their indices: the same object computes the gradient (an einsum, Kronecker
deltas as identity matrices) and prints the LaTeX the key shows, so the key's formula cannot differ from the code
the tests check against autograd. A matrix form keeps its LaTeX beside the function that computes it.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["Point", "Factor", "IndexForm", "MatrixForm", "Question", "QUESTIONS", "forward", "relu_mask",
           "autograd_grads", "sgd_update_W1", "SGD_LATEX"]


@dataclass(frozen=True)
class Point:
    """Parameters and one sample: W1 (H1, D), b1 (H1,), W2 (H2, H1), b2 (H2,), x (D,), y (H2,)."""
    W1: torch.Tensor
    b1: torch.Tensor
    W2: torch.Tensor
    b2: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self):
        h1, d = self.W1.shape
        h2 = self.W2.shape[0]
        expected = {"b1": (h1,), "W2": (h2, h1), "b2": (h2,), "x": (d,), "y": (h2,)}
        for name, shape in expected.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"{name} has shape {tuple(getattr(self, name).shape)}, expected {shape}")


def forward(pt: Point) -> dict[str, torch.Tensor]:
    q = pt.W1 @ pt.x + pt.b1
    h = torch.relu(q)
    p = pt.W2 @ h + pt.b2
    return {"q": q, "h": h, "p": p, "L": (p - pt.y) @ (p - pt.y)}


def relu_mask(q: torch.Tensor) -> torch.Tensor:
    """1[q_i > 0]: ReLU's derivative, taken as 0 at q_i = 0 (torch's choice too)."""
    return (q > 0).to(q.dtype)


Values = dict[str, torch.Tensor]  # the point's tensors and the forward pass's, by name


@dataclass(frozen=True)
class Factor:
    """One factor of an index form: `latex` has one '@' per index slot (a single index fills them all)."""
    indices: str
    latex: str
    value: Callable[[Values], torch.Tensor]

    def render(self) -> str:
        out, slots = self.latex, self.latex.count("@")
        for index in (self.indices * slots if len(self.indices) == 1 else self.indices):
            out = out.replace("@", index, 1)
        return out


@dataclass(frozen=True)
class IndexForm:
    output: str  # the free indices, in the parameter's order
    factors: tuple[Factor, ...]

    def __call__(self, pt: Point) -> torch.Tensor:
        values = {**{k: getattr(pt, k) for k in ("W1", "b1", "W2", "b2", "x", "y")}, **forward(pt)}
        spec = ",".join(f.indices for f in self.factors) + "->" + self.output
        return torch.einsum(spec, *(f.value(values) for f in self.factors))

    def latex(self) -> str:
        summed = []
        for f in self.factors:
            summed += [i for i in f.indices if i not in self.output and i not in summed]
        return "".join(rf"\sum_{i} " for i in summed) + r"\, ".join(f.render() for f in self.factors)


@dataclass(frozen=True)
class MatrixForm:
    latex: str
    compute: Callable[[Values], torch.Tensor]

    def __call__(self, pt: Point) -> torch.Tensor:
        return self.compute({**{k: getattr(pt, k) for k in ("W1", "b1", "W2", "b2", "x", "y")}, **forward(pt)})


def _err(indices: str) -> Factor:
    return Factor(indices, "2(p_@ - y_@)", lambda v: 2 * (v["p"] - v["y"]))


def _delta(indices: str, size_of: str) -> Factor:
    return Factor(indices, r"\delta_{@@}", lambda v: torch.eye(len(v[size_of]), dtype=v[size_of].dtype))


def _W2(indices: str) -> Factor:
    return Factor(indices, r"W^{(2)}_{@@}", lambda v: v["W2"])


def _mask(indices: str) -> Factor:
    return Factor(indices, r"\mathbb{1}[q_@ > 0]", lambda v: relu_mask(v["q"]))


def _x(indices: str) -> Factor:
    return Factor(indices, "x_@", lambda v: v["x"])


def _h(indices: str) -> Factor:
    return Factor(indices, "h_@", lambda v: v["h"])


@dataclass(frozen=True)
class Question:
    param: str  # the parameter differentiated, as a Point field
    symbol: str  # its LaTeX
    entry: str  # LaTeX indices of one entry, e.g. "ij"
    chain: IndexForm  # the chain rule with every Kronecker delta written out
    result: IndexForm  # the deltas summed out
    matrix: MatrixForm


_OUTER_ERR = r"\left( W^{(2)\top}\, 2(p - y) \odot \mathbb{1}[q > 0] \right)"
QUESTIONS: dict[str, Question] = {
    "a": Question("W2", "W^{(2)}", "kl",
                  IndexForm("kl", (_err("m"), _delta("mk", "p"), _h("l"))),
                  IndexForm("kl", (_err("k"), _h("l"))),
                  MatrixForm(r"2(p - y)\, h^\top", lambda v: torch.outer(2 * (v["p"] - v["y"]), v["h"]))),
    "b": Question("b2", "b^{(2)}", "k",
                  IndexForm("k", (_err("m"), _delta("mk", "p"))),
                  IndexForm("k", (_err("k"),)),
                  MatrixForm(r"2(p - y)", lambda v: 2 * (v["p"] - v["y"]))),
    "c": Question("W1", "W^{(1)}", "ij",
                  IndexForm("ij", (_err("k"), _W2("km"), _delta("mn", "q"), _mask("n"), _delta("ni", "q"), _x("j"))),
                  IndexForm("ij", (_err("k"), _W2("ki"), _mask("i"), _x("j"))),
                  MatrixForm(_OUTER_ERR + r" x^\top", lambda v: torch.outer(
                      (v["W2"].T @ (2 * (v["p"] - v["y"]))) * relu_mask(v["q"]), v["x"]))),
    "d": Question("b1", "b^{(1)}", "i",
                  IndexForm("i", (_err("k"), _W2("km"), _delta("mn", "q"), _mask("n"), _delta("ni", "q"))),
                  IndexForm("i", (_err("k"), _W2("ki"), _mask("i"))),
                  MatrixForm(r"W^{(2)\top}\, 2(p - y) \odot \mathbb{1}[q > 0]",
                             lambda v: (v["W2"].T @ (2 * (v["p"] - v["y"]))) * relu_mask(v["q"]))),
}


def autograd_grads(pt: Point) -> dict[str, torch.Tensor]:
    """The oracle: torch.autograd on the same network."""
    leaves = {name: getattr(pt, name).detach().clone().requires_grad_(True) for name in ("W1", "b1", "W2", "b2")}
    loss = forward(Point(**leaves, x=pt.x, y=pt.y))["L"]
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return dict(zip(leaves, grads))


# (e) one SGD step on W1 at the sample (x*, y*) held in `pt`
SGD_LATEX = (r"W^{(1)} \leftarrow W^{(1)} - \eta \left( W^{(2)\top}\, 2(p^* - y^*) \odot \mathbb{1}[q^* > 0] \right) "
             r"x^{*\top}")


def sgd_update_W1(pt: Point, lr: float) -> torch.Tensor:
    return pt.W1 - lr * QUESTIONS["c"].matrix(pt)
