"""HW4 Part 1 self-check: the grader's own step-by-step judgement, on the course's public data, in your notebook.

Put this file beside hw4_part1.ipynb (in Colab: the Files panel, Upload, into /content) and run a check cell:

    from hw4_part1_selfcheck import check
    check("2c")          # (1b), (2a), (2b), (2c) or (2d); check() checks them all

It runs your classes from the notebook on the course data (seed 10605, X_train, y_train) as the notebook does,
and with the grader's other hyper-parameters on the same inputs with targets near the starting point, and checks
every step against the update rule, from your optimizer's own state, exactly as the grader does: any uniform
sampler is fine.
When a step breaks the rule it says which step, what was expected, what your code gave, and the likely mistake.
The grader also runs your classes on problems of its own; passing here is a good sign, not a promise.
Nothing here is the solution: the update rule it checks is the one written in the notebook. Your notebook's
random number generators are left as they were. Needs only torch and numpy; runs offline in a few seconds.

This file is generated (student_template/selfcheck.py in the course's autograder kit); do not edit it.
"""
# The bundler replaces the two lines marked `# bundle:` below with the grader's replay.py and its run settings.

from __future__ import annotations

import contextlib
import io
import math
import random
import sys
import types

import torch

RULE_SOURCE = r'''"""The trusted side's check of an optimizer run: each step against the update rule, from the student's own state.

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
'''  # the grader's replay.py, verbatim
RUNS = {'GD': [{'label': "GD(), the notebook's 300 steps", 'data': 'course', 'kwargs': {}, 'steps': 300, 'draws': 0},
        {'label': 'GD(lr=0.05), 100 steps on targets near the starting point',
         'data': 'near_start',
         'kwargs': {'lr': 0.05},
         'steps': 100,
         'draws': 0}],
 'SGD': [{'label': "SGD(), the notebook's 300 steps", 'data': 'course', 'kwargs': {}, 'steps': 300, 'draws': 0},
         {'label': 'SGD(lr=0.03), 100 steps on targets near the starting point',
          'data': 'near_start',
          'kwargs': {'lr': 0.03},
          'steps': 100,
          'draws': 0}],
 'AdaGrad': [{'label': "AdaGrad(lr=0.1), the notebook's 300 steps",
              'data': 'course',
              'kwargs': {'lr': 0.1},
              'steps': 300,
              'draws': 300},
             {'label': 'AdaGrad(lr=0.3, epsilon=0.5), 100 steps on targets near the starting point',
              'data': 'near_start',
              'kwargs': {'lr': 0.3, 'epsilon': 0.5},
              'steps': 100,
              'draws': 0}],
 'Adam': [{'label': "Adam(lr=0.1), the notebook's 300 steps",
           'data': 'course',
           'kwargs': {'lr': 0.1},
           'steps': 300,
           'draws': 600},
          {'label': 'Adam(lr=0.05, beta1=0.8, beta2=0.95, epsilon=0.3), 100 steps on targets near the starting '
                    'point',
           'data': 'near_start',
           'kwargs': {'lr': 0.05, 'beta1': 0.8, 'beta2': 0.95, 'epsilon': 0.3},
           'steps': 100,
           'draws': 0}]}

PARTS = {"1b": "model", "2a": "GD", "2b": "SGD", "2c": "AdaGrad", "2d": "Adam"}
SAMPLING_HINT = ("no single training sample reproduces this step: `calculate_gradient` should use exactly one "
                 "sample, chosen uniformly at random, per call (e.g. `i = torch.randint(0, len(X), (1,))`).")


def _load_rule() -> types.ModuleType:
    """The grader's replay.py as a module of its own (its names cannot clash with the notebook's or these)."""
    module = types.ModuleType("hw4_part1_selfcheck_rule")
    sys.modules[module.__name__] = module  # dataclasses look their module up while the class is built
    exec(compile(RULE_SOURCE, "hw4_part1_selfcheck (the grader's replay.py)", "exec"), module.__dict__)
    return module


rule = _load_rule()


class _Model:
    """The notebook's plain LinearModel of (2a)'s evaluation cell, so the check does not depend on which one
    the notebook defined last."""

    def __init__(self):
        self.w = torch.tensor([[5.0, 5.0]])
        self.b = torch.tensor(10.0)

    def forward(self, X):
        return X @ self.w.T + self.b


def _course_data() -> tuple:
    """The notebook's data recipe (1b)."""
    torch.manual_seed(10605)
    X = torch.randn(2000, 2)
    noise = torch.randn(2000, 1)
    return X, X @ torch.tensor([[4.0], [3.0]]) + 2 + noise, noise


def _flat(value) -> list:
    if isinstance(value, (tuple, list)):
        return [x for part in value for x in _flat(part)]
    return torch.as_tensor(value, dtype=torch.float32).detach().reshape(-1).tolist()


def _three(grads):
    try:
        flat = _flat(grads)
    except Exception:
        return None
    return flat if len(flat) == 3 else None


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:.4g}" if math.isfinite(v) else str(v) for v in values) + "]"


def _params(row) -> str:
    return f"w = {_fmt(row[:2])}, b = {_fmt(row[2:])}"


@contextlib.contextmanager
def _no_torch_optim():
    """torch.optim's optimizers refuse to start while the student's classes run, as the grader's do (there a
    sandbox enforces it; here it only tells an honest student early)."""
    def refuse(*args, **kwargs):
        raise RuntimeError("torch.optim is not allowed in (2a)–(2d): the grader refuses it; write the update "
                           "with tensor arithmetic")
    original = torch.optim.Optimizer.__init__
    torch.optim.Optimizer.__init__ = refuse
    try:
        yield
    finally:
        torch.optim.Optimizer.__init__ = original


def _drive(Optimizer, X, y, kwargs: dict, steps: int, draws: int) -> dict:
    """`steps` steps from a fresh model, torch's generator where the notebook leaves it (`draws` index draws
    after the data): the parameters after each step and the gradient each step returned."""
    torch.manual_seed(10605)
    torch.randn(2000, 2), torch.randn(2000, 1)
    for _ in range(draws):
        torch.randint(0, len(X), (1,))
    run = {"trajectory": [], "gradients": [], "error": None}
    try:
        with contextlib.redirect_stdout(io.StringIO()), _no_torch_optim():  # prints would bury the verdict
            optimizer, model = Optimizer(**kwargs), _Model()
            for _ in range(steps):
                grads = optimizer.calculate_gradient(X, y, model)
                run["gradients"].append(_three(grads))
                optimizer.apply_gradient(grads, model)
                run["trajectory"].append(_flat((model.w, model.b)))
    except Exception as error:  # the student's code: reported, never raised into the notebook
        run["error"] = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return run


def _judge(name: str, setting: dict, X, y, course: list) -> list[str]:
    """Problems found in one run (an empty list: every step follows the rule). As in the grader, AdaGrad's and
    Adam's steps are replayed on the gradients their own calculate_gradient returned."""
    run = _drive(setting["optimizer"], X, y, setting["kwargs"], setting["steps"], setting["draws"])
    trajectory, gradients = run["trajectory"], run["gradients"]
    if not trajectory:
        stub = " (is it still the template's stub?)" if run["error"] == "NotImplementedError" else ""
        return [f"your code stopped at the first step with `{run['error']}`{stub}."]
    Xl, yl = X.tolist(), y.tolist()
    own = name in rule.OWN_GRADIENTS
    extra = {"own_gradients": own, "course": course if own else None}
    result = rule.replay(name, setting["kwargs"], Xl, yl, trajectory, gradients=gradients, **extra)
    if result.ok and run["error"]:
        return [f"your code stopped at step {len(trajectory) + 1} with `{run['error']}`."]
    if result.ok:
        if name in rule.ONE_SAMPLE and len(set(result.samples)) < 2:
            return ["it used the same training sample at every step; it should draw a new random one each step."]
        return []
    index = result.first_bad
    lines = [f"step {index + 1} is the first that does not follow the update rule.",
             f"expected {_params(result.expected)}", f"got      {_params(trajectory[index])}"]
    if not all(math.isfinite(x) for x in trajectory[index]):
        lines.append("Your parameters are no longer numbers (NaN or infinite) after this step: a division by zero"
                     + (", e.g. a bias correction 1 − βᵗ with `t` still 0: increment `self.t` before using it."
                        if name == "Adam" else "."))
        return lines
    mistake = rule.diagnose(name, setting["kwargs"], Xl, yl, trajectory, result, gradients, **extra)
    if mistake:
        lines.append(f"Likely mistake: {mistake}.")
    elif name in rule.ONE_SAMPLE:
        lines.append("Hint: " + SAMPLING_HINT)
    return lines


def _check_optimizer(name: str, namespace: dict) -> bool:
    Optimizer = namespace.get(name)
    if not isinstance(Optimizer, type):
        print(f"  ✗ `{name}` is not defined: run its cell first.")
        return False
    X, y_course, noise = _course_data()
    course = [X.tolist(), y_course.tolist()]
    ok = True
    for setting in RUNS[name]:
        y = y_course if setting["data"] == "course" else X @ torch.tensor([[5.3], [4.8]]) + 9.8 + 0.1 * noise
        problems = _judge(name, {**setting, "optimizer": Optimizer}, X, y, course)
        ok = ok and not problems
        print(f"  {'✗' if problems else '✓'} {setting['label']}: "
              + ("\n      ".join(problems) if problems else "every step follows the update rule."))
    return ok


def _check_model(namespace: dict) -> bool:
    Model, loss = namespace.get("LinearModel"), namespace.get("loss")
    missing = [name for name, value in (("LinearModel", Model), ("loss", loss)) if value is None]
    if missing:
        print(f"  ✗ {' and '.join(f'`{m}`' for m in missing)} not defined: run the (1b) cell first.")
        return False
    problems = []
    X, y, _ = _course_data()
    try:
        model = Model()
        got = torch.as_tensor(model.forward(X[:7])).detach()
        w, b = torch.tensor([[5.0, 5.0]]), torch.tensor(10.0)
        if tuple(got.shape) != (7, 1) or not torch.allclose(got.float(), X[:7] @ w.T + b, rtol=1e-4, atol=1e-4):
            problems.append(f"`forward` on 7 rows of X_train should give X wᵀ + b, of shape (7, 1); yours has "
                            f"shape {tuple(got.shape)}.")
    except Exception as error:
        problems.append(f"`LinearModel().forward` failed: `{type(error).__name__}: {error}`")
    try:
        y_pred = y[:9] + torch.arange(9.0).reshape(9, 1) / 3
        got = torch.as_tensor(loss(y[:9], y_pred)).detach().float()
        want = float(((y[:9] - y_pred) ** 2).mean())
        if got.numel() != 1 or abs(float(got.reshape(-1)[0]) - want) > 1e-4 * (1 + want):
            value = _fmt(got.reshape(-1).tolist()[:3])
            hint = ("\n      Likely mistake: the sum of the squared differences instead of their mean."
                    if got.numel() == 1 and abs(float(got) - 9 * want) < 1e-3 * (1 + want) else "")
            problems.append(f"`loss` on 9 targets of shape (9, 1) should be their mean squared error "
                            f"{want:.4g}, a scalar; yours is {value} of shape {tuple(got.shape)}.{hint}")
    except Exception as error:
        problems.append(f"`loss` failed: `{type(error).__name__}: {error}`")
    for problem in problems:
        print(f"  ✗ {problem}")
    if not problems:
        print("  ✓ `forward` and `loss` give the expected values and shapes.")
    return not problems


def check(part: str | None = None, namespace: dict | None = None) -> bool:
    """Check one part ("1b", "2a", "2b", "2c", "2d", or an optimizer's name), or every part; print what was
    found and return whether all passed. `namespace` defaults to the notebook's (the caller's globals)."""
    if namespace is None:
        namespace = sys._getframe(1).f_globals
    wanted = list(PARTS) if part is None else [key for key, name in PARTS.items()
                                               if str(part).strip("() ").lower() in (key, name.lower())]
    if not wanted:
        raise ValueError(f"part {part!r}: choose one of {', '.join(PARTS)} (or no argument for all)")
    saved = torch.get_rng_state(), random.getstate(), _numpy_state()
    try:
        ok = True
        for key in wanted:
            name = PARTS[key]
            print(f"({key}) {'LinearModel and loss' if name == 'model' else name}, self-check on the course data:")
            ok = (_check_model(namespace) if name == "model" else _check_optimizer(name, namespace)) and ok
        return ok
    finally:  # the notebook's own checks assume its stream continues undisturbed
        torch.set_rng_state(saved[0])
        random.setstate(saved[1])
        if saved[2] is not None:
            sys.modules["numpy"].random.set_state(saved[2])


def _numpy_state():
    """numpy's global generator state, when the notebook uses numpy (it usually does)."""
    numpy = sys.modules.get("numpy")
    return numpy.random.get_state() if numpy is not None else None
