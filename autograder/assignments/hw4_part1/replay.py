"""The trusted side's check of an optimizer run: each step against the update rule, from the student's own state.

For every step the reference update is computed from the parameters the student's optimizer had before it, for
every sample of the problem at once (one-sample optimizers) or for the whole batch (GD); the step passes if one
candidate gives the parameters the student's optimizer reached. So any uniform sampler is fine (numpy, `random`,
a permutation), each step is judged on its own (no error piles up), and the samples found show whether each step
used exactly one. Optimizer state (AdaGrad's accumulator, Adam's m, v, t) follows the samples found. When a step
fails, the same replay with each named mistake says which mistake reproduces the run. Float64 throughout.

With `own_gradients`, AdaGrad's and Adam's update rules are judged on their own: each step is replayed on the
gradient the optimizer's calculate_gradient returned, when that is a gradient of the loss at all (at one or two
samples, the whole set or the course data's samples, up to a factor of 2: `is_loss_gradient`), so a sampling slip
is charged to the gradient test only. A made-up gradient (zeros, noise) is not trusted: every sample is tried.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["Replay", "replay", "diagnose", "RTOL", "ATOL", "is_loss_gradient", "matching_samples",
           "OWN_GRADIENTS"]

RTOL, ATOL = 1e-3, 1e-4
STEP_ATOL = 2e-5  # float32 parameters near 5 are exact to about 5e-7; their difference, to about 1e-6
TIE, MAX_TIES = 0.5, 512
ONE_SAMPLE = {"SGD", "AdaGrad", "Adam"}
OWN_GRADIENTS = {"AdaGrad", "Adam"}  # update rules judged on the gradients their calculate_gradient returned
GRADIENT_MISTAKES = {"half_gradient", "sum_not_mean", "full_batch"}  # the gradient's, not the update rule's
DEFAULTS = {"GD": {"lr": 0.01}, "SGD": {"lr": 0.01}, "AdaGrad": {"lr": 0.001, "epsilon": 1e-7},
            "Adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7}}
START = (5.0, 5.0, 10.0)
# name -> (optimizers it applies to, what the student is told)
MISTAKES = {
    "no_bias_correction": ({"Adam"}, "Adam without bias correction: use m̂ = m / (1 − β1ᵗ) and v̂ = v / (1 − β2ᵗ)"),
    "eps_inside_sqrt": ({"AdaGrad", "Adam"}, "ε inside the square root: divide by √v + ε, not √(v + ε)"),
    "t_not_counted": ({"Adam"}, "`t` is not counted: increment `self.t` once per step, before the bias correction"),
    "accumulator_from_zero": ({"AdaGrad"}, "the accumulator starts at 0: it should start at 0.1"),
    "no_sqrt": ({"AdaGrad"}, "the square root is missing: divide by √r + ε"),
    "half_gradient": ({"GD", "SGD", "AdaGrad", "Adam"}, "the factor 2 of the squared error's gradient is missing"),
    "sum_not_mean": ({"GD"}, "the gradient sums over the samples instead of taking their mean"),
    "b_not_updated": ({"GD", "SGD", "AdaGrad", "Adam"}, "`b` is never updated"),
    "full_batch": ({"SGD", "AdaGrad", "Adam"}, "each step uses the whole training set instead of one random sample"),
}


@dataclass
class Replay:
    steps: int  # steps checked
    first_bad: int | None  # 0-based step that no candidate reproduces, or None
    samples: list[int] = field(default_factory=list)  # sample index found for each good step (one-sample kinds)
    expected: list[float] = field(default_factory=list)  # at first_bad: the reference's next parameters (best sample)

    @property
    def ok(self) -> bool:
        return self.first_bad is None


def _array(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


class _Problem:
    """A problem's inputs with a column of ones, stored by feature ((3, N): numpy is several times faster along
    the long axis), and its targets: each sample's gradient at theta comes from one product."""

    def __init__(self, X: ArrayLike, y: ArrayLike):
        X = _array(X).reshape(-1, 2)
        self.design, self.y = np.vstack([X.T, np.ones(len(X))]), _array(y).reshape(-1)

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        """(N,): twice each sample's residual, which is also its gradient in b."""
        return 2 * (theta @ self.design - self.y)

    def gradients(self, residuals: np.ndarray, rows=slice(None)) -> np.ndarray:
        """(N, 3) (or those `rows`): the squared error's gradient in (w1, w2, b) at each sample."""
        return (self.design[:, rows] * residuals[rows]).T


def _gradients(X: ArrayLike, y: ArrayLike, theta: np.ndarray) -> np.ndarray:
    """(N, 3): the squared error's gradient in (w1, w2, b) at each sample."""
    problem = _Problem(X, y)
    return problem.gradients(problem.residuals(theta))


def _state(kind: str, mistake: str | None) -> dict:
    """A beam of one state: AdaGrad's accumulator or Adam's moments, one row per state still consistent."""
    if kind == "AdaGrad":
        return {"acc": np.full((1, 3), 0.0 if mistake == "accumulator_from_zero" else 0.1)}
    if kind == "Adam":
        return {"m": np.zeros((1, 3)), "v": np.zeros((1, 3)), "t": 0}
    return {}


def _effective(kind: str, G: np.ndarray, mistake: str | None) -> np.ndarray:
    """The gradients a step may use, (K, 3): one per sample, or the batch's (GD, a full-batch mistake)."""
    if mistake == "half_gradient":
        G = G / 2
    if mistake == "full_batch" or kind == "GD":
        G = (G.sum(0) if mistake == "sum_not_mean" else G.mean(0))[None, :]
    return G


def _finite_three(reported) -> np.ndarray | None:
    """The reported gradient as a (3,) array, or None when it is anything but three finite numbers (the student's
    code decides what calculate_gradient returns: strings, None, nested lists, NaN)."""
    if not isinstance(reported, list) or len(reported) != 3:
        return None
    try:
        if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in reported):
            return None
    except OverflowError:  # an integer too large for a float
        return None
    return _array(reported)


def _matching(G: np.ndarray, reported) -> np.ndarray | None:
    """Rows of G equal to the gradient the student's calculate_gradient returned (None: no usable report)."""
    g = _finite_three(reported)
    if g is None:
        return None
    return _equal_rows(G[:, 2], lambda rows: G[rows], g)


def _matching_at(problem: _Problem, residuals: np.ndarray, reported) -> np.ndarray | None:
    """_matching(problem.gradients(residuals), reported), building only the rows that b's column lets through."""
    g = _finite_three(reported)
    if g is None:
        return None
    return _equal_rows(residuals, lambda rows: problem.gradients(residuals, rows), g)


def _equal_rows(b_column: np.ndarray, rows_of, g: np.ndarray) -> np.ndarray | None:
    rows = np.flatnonzero(_distance(b_column, g[2]) <= 1)  # b's column first: few rows get past it
    if len(rows):
        rows = rows[(_distance(rows_of(rows), g) <= 1).all(1)]
    return rows if len(rows) else None


def _distance(G: np.ndarray, g: np.ndarray) -> np.ndarray:
    """|G - g| in units of the tolerance (NaN where either is not finite enough to compare)."""
    return np.abs(G - g) / (1e-5 + RTOL * np.abs(G))


def _close_rows(G: np.ndarray, g: np.ndarray) -> np.ndarray:
    return (np.abs(G - g) <= 1e-5 + RTOL * np.abs(G)).all(-1)


def _pair_mean(G: np.ndarray, g: np.ndarray) -> bool:
    """Whether g is the mean of two rows of G: for each row i, is 2g - G[i] another row? (by its last column)"""
    target = 2 * g - G
    order = np.argsort(G[:, 2], kind="stable")
    position = np.searchsorted(G[order, 2], target[:, 2])
    for offset in (-1, 0, 1):
        partner = order[np.clip(position + offset, 0, len(G) - 1)]
        if _close_rows(G[partner], target).any():
            return True
    return False


@np.errstate(all="ignore")  # infinities and NaN are compared as torch would, without warnings
def is_loss_gradient(G: np.ndarray, reported, course: np.ndarray | None = None) -> bool:
    """Whether the reported gradient is a gradient of the squared error at the current parameters: at one sample,
    the mean of two, the whole set (mean or sum), or one sample of the course data (`course`, its per-sample
    gradients: a class that reads the notebook's X_train), up to a factor of 2."""
    g = _finite_three(reported)
    if g is None or not any(reported):
        return False
    rows = np.concatenate([G, G.mean(0, keepdims=True), G.sum(0, keepdims=True)]
                          + ([course] if course is not None else []))
    scales = (1.0, 2.0, 0.5)  # the cheap comparisons at every scale before any search for a pair
    return any(_close_rows(rows * s, g).any() for s in scales) or any(_pair_mean(G * s, g) for s in scales)


def _trusted(problem: _Problem, residuals: np.ndarray, reported, matched: np.ndarray | None,
             course: _Problem | None, theta: np.ndarray) -> bool:
    """is_loss_gradient(the problem's gradients, reported, the course data's), its common case first: a gradient
    equal to one sample's (`matched`: _matching_at(problem, residuals, reported)), a correct optimizer's every
    step, needs no other candidate built."""
    if matched is not None and any(reported):
        return True
    course_rows = course.gradients(course.residuals(theta)) if course is not None else None
    return is_loss_gradient(problem.gradients(residuals), reported, course_rows)


@np.errstate(all="ignore")
def matching_samples(X: ArrayLike, y: ArrayLike, trajectory: list, gradients: list) -> list[int | None]:
    """For each step with a reported gradient: the sample whose gradient, at the parameters before that step,
    it equals, or None when no single sample's does."""
    problem, theta, found = _Problem(X, y), _array(START), []
    for step, reported in enumerate(gradients):
        rows = _matching_at(problem, problem.residuals(theta), reported)
        found.append(int(rows[0]) if rows is not None else None)
        if step >= len(trajectory):
            break
        theta = _array(trajectory[step])
    return found


def _candidates(kind: str, h: dict, theta: np.ndarray, G: np.ndarray, state: dict, mistake: str | None):
    """Next parameters for every (state in the beam, gradient row) pair, (B, K, 3), and the states they leave."""
    G = G[None, :, :]  # (1, K, 3)
    if kind in ("GD", "SGD"):
        update, new = h["lr"] * G, {}
    elif kind == "AdaGrad":
        acc = state["acc"][:, None, :] + G ** 2
        root = np.sqrt(acc + h["epsilon"]) if mistake == "eps_inside_sqrt" else \
            acc if mistake == "no_sqrt" else np.sqrt(acc) + h["epsilon"]
        update, new = h["lr"] * G / root, {"acc": acc}
    else:
        t = 1 if mistake == "t_not_counted" else state["t"] + 1
        m = h["beta1"] * state["m"][:, None, :] + (1 - h["beta1"]) * G
        v = h["beta2"] * state["v"][:, None, :] + (1 - h["beta2"]) * G ** 2
        if mistake == "no_bias_correction":
            m_hat, v_hat = m, v
        else:
            m_hat, v_hat = m / (1 - h["beta1"] ** t), v / (1 - h["beta2"] ** t)
        root = np.sqrt(v_hat + h["epsilon"]) if mistake == "eps_inside_sqrt" else np.sqrt(v_hat) + h["epsilon"]
        update, new = h["lr"] * m_hat / root, {"m": m, "v": v, "t": t}
    if mistake == "b_not_updated":
        update = update.copy()
        update[..., 2] = 0
    return update, new


def _keep(new: dict, rows: np.ndarray, columns: np.ndarray) -> dict:
    return {k: (v[rows, columns] if isinstance(v, np.ndarray) else v) for k, v in new.items()}


@np.errstate(all="ignore")
def replay(kind: str, kwargs: dict, X: ArrayLike, y: ArrayLike, trajectory: list, mistake: str | None = None,
           gradients: list | None = None, own_gradients: bool = False,
           course: Sequence[ArrayLike] | None = None) -> Replay:
    """Check `trajectory` (parameters [w1, w2, b] after each step) against the rule, step by step.

    Steps are compared as updates (next minus current parameters), relative to their own size. The gradient the
    student's calculate_gradient returned at each step (`gradients`) names its sample when it equals one; else every
    sample is tried. Several samples can give the same step (Adam's first step is lr times the gradient's signs), so
    every state that reproduces the step about as well as the best does is kept (at most MAX_TIES) until the steps
    tell them apart.

    `own_gradients` (AdaGrad, Adam): a step whose reported gradient is a gradient of the loss (is_loss_gradient;
    `course`: the course data's (X, y), whose samples count too) is replayed on that gradient alone."""
    h = {**DEFAULTS[kind], **kwargs}
    own = own_gradients and kind in OWN_GRADIENTS and bool(gradients)
    course_problem = _Problem(*course) if own and course is not None else None
    problem, state, theta = _Problem(X, y), _state(kind, mistake), _array(START)
    result = Replay(steps=len(trajectory), first_bad=None)
    for step, reached in enumerate(trajectory):
        got = _array(reached)
        reported = gradients[step] if gradients and step < len(gradients) else None
        residuals = problem.residuals(theta)
        matched = _matching_at(problem, residuals, reported) if own else None
        if own and _trusted(problem, residuals, reported, matched, course_problem, theta):
            rows_used = matched[:1] if matched is not None else np.array([-1])
            G = _array(reported)[None, :]
        else:
            G = _effective(kind, problem.gradients(residuals), mistake)
            rows_used = _matching(G, reported)
            if rows_used is not None:
                G = G[rows_used]
        update, new = _candidates(kind, h, theta, G, state, mistake)
        moved = theta - got
        error = (np.abs(update - moved) / (STEP_ATOL + RTOL * np.abs(update))).max(-1)  # (B, K)
        flat = int(error.argmin())
        best = float(error.flat[flat])
        if not all(map(math.isfinite, reached)) or not best <= 1:
            b, k = divmod(flat, error.shape[1])
            result.first_bad, result.expected = step, (theta - update[b, k]).tolist()
            return result
        # Keep what reproduces the step about as well as the best does (float32 rounding is a small fraction of
        # the tolerance); Adam's first step ties every sample whose gradient has the same signs.
        rows, columns = np.nonzero(error <= min(1.0, best + TIE))
        if len(rows) > MAX_TIES:
            order = np.argsort(error[rows, columns], kind="stable")[:MAX_TIES]
            rows, columns = rows[order], columns[order]
        if kind in ONE_SAMPLE and mistake != "full_batch":
            column = flat % error.shape[1]
            result.samples.append(int(rows_used[column]) if rows_used is not None else column)
        state = _keep(new, rows, columns) if kind in ("AdaGrad", "Adam") else state
        theta = got
    return result


def diagnose(kind: str, kwargs: dict, X: ArrayLike, y: ArrayLike, trajectory: list, correct: Replay,
             gradients: list | None = None, own_gradients: bool = False,
             course: Sequence[ArrayLike] | None = None) -> str:
    """The named mistake that reproduces the run further than the correct rule does ("" when none does)."""
    best, reach = "", (correct.first_bad or 0)
    for name, (kinds, text) in MISTAKES.items():
        if kind not in kinds or (own_gradients and name in GRADIENT_MISTAKES):
            continue
        attempt = replay(kind, kwargs, X, y, trajectory, mistake=name, gradients=gradients,
                         own_gradients=own_gradients, course=course)
        got = attempt.steps if attempt.first_bad is None else attempt.first_bad
        if got > reach and got >= min(3, len(trajectory)):
            best, reach = text, got
    return best
