"""Written 1.1 (h): every intermediate number at the handout's point, computed by the Wengert list and checked
against the closed forms and autograd (the key prints these values; none is typed by hand)."""

import torch

from solution.answer_key.formulas import QUESTIONS, Point, autograd_grads
from solution.answer_key.wengert import backward, execute

__all__ = ["HANDOUT", "handout_point", "h_steps", "h_answers"]

# The handout's values (HW4_INTERFACE.md, "Written 1.1 (h)").
HANDOUT = {"x": [2, 7], "y": [4, 5, 8], "W1": [[3, 8], [4, 5]], "b1": [4, 10],
           "W2": [[11, 4], [8, 13], [6, 10]], "b2": [9, 2, 15]}


def handout_point() -> Point:
    return Point(**{name: torch.tensor(value, dtype=torch.float64) for name, value in HANDOUT.items()})


def _exact(t: torch.Tensor):
    """Integers as Python ints (every value here is one); anything else is a bug in the point or the code."""
    as_list = t.tolist()
    flat = as_list if isinstance(as_list, list) else [as_list]
    flat = [v for row in flat for v in (row if isinstance(row, list) else [row])]
    if any(v != int(v) for v in flat):
        raise ValueError(f"non-integer value {as_list} at the handout's point")
    if isinstance(as_list, list):
        return [[int(v) for v in row] if isinstance(row, list) else int(row) for row in as_list]
    return int(as_list)


def h_steps() -> list[tuple[str, str, object]]:
    """(symbol as LaTeX, how it is computed as LaTeX, value) for every intermediate, forward then backward."""
    v = execute(handout_point())
    g = backward(v)
    return [
        ("q", r"W^{(1)} x + b^{(1)}", _exact(v["q"])),
        ("h", r"\mathrm{ReLU}(q)", _exact(v["h"])),
        (r"\mathbb{1}[q > 0]", rf"\text{{{int((v['q'] > 0).sum())} of {len(v['q'])} units active}}",
         _exact((v["q"] > 0).double())),
        ("p", r"W^{(2)} h + b^{(2)}", _exact(v["p"])),
        ("p - y", "", _exact(v["p"] - v["y"])),
        ("L", r"(p - y)^\top (p - y)", _exact(v["L"])),
        (r"\partial L / \partial p", r"2(p - y)", _exact(g["p"])),
        (r"\partial L / \partial h", r"W^{(2)\top}\, \partial L / \partial p", _exact(g["h"])),
        (r"\partial L / \partial q", r"\partial L / \partial h \odot \mathbb{1}[q > 0]", _exact(g["q"])),
        (r"\partial L / \partial W^{(1)}", r"(\partial L / \partial q)\, x^\top", _exact(g["W1"])),
        (r"\partial L / \partial b^{(1)}", r"\partial L / \partial q", _exact(g["b1"])),
    ]


def h_answers() -> dict[str, int]:
    """The two asked entries (1-based as in the handout) and L, each by the list, the closed forms and autograd."""
    pt = handout_point()
    v = execute(pt)
    g = backward(v)
    auto = autograd_grads(pt)
    dW1, db1 = QUESTIONS["c"].matrix, QUESTIONS["d"].matrix
    answers = {"L": _exact(v["L"]), "dL/dW1[1,1]": _exact(g["W1"][0, 0]), "dL/db1[2]": _exact(g["b1"][1])}
    for name, other in (("dL/dW1[1,1]", (dW1(pt)[0, 0], auto["W1"][0, 0])),
                        ("dL/db1[2]", (db1(pt)[1], auto["b1"][1]))):
        if any(_exact(o) != answers[name] for o in other):
            raise AssertionError(f"{name}: Wengert list, closed form and autograd disagree")
    return answers
