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

RULE_SOURCE = ""  # bundle: the grader's replay.py, verbatim
RUNS = {}  # bundle: the grader's run settings

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
