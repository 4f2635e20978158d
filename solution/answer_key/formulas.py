"""Written 1.1 (a)-(e) as code: the network, each partial in index form and in matrix form, and autograd.

Network (one sample): q = W1 x + b1, h = ReLU(q), p = W2 h + b2, L = (p - y)^T (p - y), with W1 of shape (H1, D),
W2 of shape (H2, H1). Every gradient has the shape of its parameter (numerator layout of torch); the transposed
(denominator) layout is accepted in written answers.

The index forms are written literally, Kronecker deltas included (torch.eye), so that the code reads like the
derivation it checks; the matrix forms are the compact results a student is expected to reach.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["Point", "forward", "relu_mask", "autograd_grads", "CLOSED_FORMS", "sgd_update_W1",
           "dL_dW2_index", "dL_dW2_matrix", "dL_db2_index", "dL_db2_matrix",
           "dL_dW1_index", "dL_dW1_matrix", "dL_db1_index", "dL_db1_matrix"]


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


def _delta(n: int, like: torch.Tensor) -> torch.Tensor:
    return torch.eye(n, dtype=like.dtype)


# (a) dL/dW2_{kl} = sum_m 2(p_m - y_m) delta_{mk} h_l = 2(p_k - y_k) h_l
def dL_dW2_index(pt: Point) -> torch.Tensor:
    f = forward(pt)
    delta = _delta(len(f["p"]), f["p"])
    return torch.einsum("m,mk,l->kl", 2 * (f["p"] - pt.y), delta, f["h"])


def dL_dW2_matrix(pt: Point) -> torch.Tensor:
    f = forward(pt)
    return torch.outer(2 * (f["p"] - pt.y), f["h"])


# (b) dL/db2_k = sum_m 2(p_m - y_m) delta_{mk} = 2(p_k - y_k)
def dL_db2_index(pt: Point) -> torch.Tensor:
    f = forward(pt)
    return torch.einsum("m,mk->k", 2 * (f["p"] - pt.y), _delta(len(f["p"]), f["p"]))


def dL_db2_matrix(pt: Point) -> torch.Tensor:
    f = forward(pt)
    return 2 * (f["p"] - pt.y)


# (c) dL/dW1_{ij} = sum_k sum_m sum_n 2(p_k - y_k) W2_{km} delta_{mn} 1[q_n > 0] delta_{ni} x_j
#                 = sum_k 2(p_k - y_k) W2_{ki} 1[q_i > 0] x_j
def dL_dW1_index(pt: Point) -> torch.Tensor:
    f = forward(pt)
    delta = _delta(len(f["q"]), f["q"])
    return torch.einsum("k,km,mn,n,ni,j->ij", 2 * (f["p"] - pt.y), pt.W2, delta, relu_mask(f["q"]), delta, pt.x)


def dL_dW1_matrix(pt: Point) -> torch.Tensor:
    f = forward(pt)
    return torch.outer((pt.W2.T @ (2 * (f["p"] - pt.y))) * relu_mask(f["q"]), pt.x)


# (d) dL/db1_i = sum_k sum_m sum_n 2(p_k - y_k) W2_{km} delta_{mn} 1[q_n > 0] delta_{ni}
#              = sum_k 2(p_k - y_k) W2_{ki} 1[q_i > 0]
def dL_db1_index(pt: Point) -> torch.Tensor:
    f = forward(pt)
    delta = _delta(len(f["q"]), f["q"])
    return torch.einsum("k,km,mn,n,ni->i", 2 * (f["p"] - pt.y), pt.W2, delta, relu_mask(f["q"]), delta)


def dL_db1_matrix(pt: Point) -> torch.Tensor:
    f = forward(pt)
    return (pt.W2.T @ (2 * (f["p"] - pt.y))) * relu_mask(f["q"])


# question -> (parameter, index form, matrix form)
CLOSED_FORMS: dict[str, tuple[str, Callable[[Point], torch.Tensor], Callable[[Point], torch.Tensor]]] = {
    "a": ("W2", dL_dW2_index, dL_dW2_matrix),
    "b": ("b2", dL_db2_index, dL_db2_matrix),
    "c": ("W1", dL_dW1_index, dL_dW1_matrix),
    "d": ("b1", dL_db1_index, dL_db1_matrix),
}


def autograd_grads(pt: Point) -> dict[str, torch.Tensor]:
    """The oracle: torch.autograd on the same network."""
    leaves = {name: getattr(pt, name).detach().clone().requires_grad_(True) for name in ("W1", "b1", "W2", "b2")}
    loss = forward(Point(**leaves, x=pt.x, y=pt.y))["L"]
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return dict(zip(leaves, grads))


# (e) W1 <- W1 - eta * dL/dW1 at (x*, y*) = W1 - eta * ((W2^T 2(p* - y*)) ⊙ 1[q* > 0]) x*^T
def sgd_update_W1(pt: Point, lr: float) -> torch.Tensor:
    return pt.W1 - lr * dL_dW1_matrix(pt)
