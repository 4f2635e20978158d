"""Judgements of one optimizer's measured runs, each raising AssertionError with the student's feedback.

Every fact goes where its evidence is: a gradient hint only in the gradient test (and for SGD in a run test only
when that step's gradient is not one sample's), `t` only when the run completed, the method that raised an error
by name. AdaGrad's and Adam's runs are replayed on their own gradients (replay.py, `own_gradients`), so their
run tests judge the update rule alone. Observations are untrusted JSON: anything malformed fails with a sentence.
"""

from __future__ import annotations

import base64
import functools
import math
from typing import TypeGuard

import numpy as np

from autograder.assignments.hw4_part1 import replay as rule
from autograder.assignments.hw4_part1.reference import course_problem
from autograder.checks import fmt

__all__ = ["check_steps", "check_gradient", "check_accumulator_start", "check_adam_state", "stopped", "apart"]

SAMPLING_HINT = ("Hint: `calculate_gradient` should use exactly one training sample, chosen uniformly at random, "
                 "per call (e.g. `i = torch.randint(0, len(X), (1,))`).")
WHAT = {"handout": "", "custom": " with other hyper-parameters", "public": " on the course data"}
STATE_STEPS = 3  # the first steps show how the state started
METHODS = {"__init__": "`{name}(...)` (its `__init__`)", "LinearModel()": "`LinearModel()`",
           "calculate_gradient": "`{name}.calculate_gradient`", "apply_gradient": "`{name}.apply_gradient`",
           "the parameters after apply_gradient": "reading `model.w` and `model.b` after `{name}.apply_gradient`"}


@functools.lru_cache(maxsize=1)
def course() -> tuple[np.ndarray, np.ndarray]:
    """The course data (X, y) (the notebook's X_train, y_train), computed here once."""
    X, y = course_problem()
    return rule._array(X), rule._array(y)


def unpacked(packed: dict) -> np.ndarray:
    """The float32 array hw4_part1.packed wrote: a hidden problem's X or y, from the grader's own call."""
    return np.frombuffer(base64.b64decode(packed["float32"]), dtype=np.float32).reshape(packed["shape"])


def apart(expected: list, got: list) -> tuple[str, str]:
    """Both rows printed with the fewest significant digits (at least 4) that tell them apart."""
    for digits in range(4, 13):
        shown = fmt(expected, digits), fmt(got, digits)
        if shown[0] != shown[1]:
            return shown
    return shown


def stopped(name: str, got: dict, step: int | None = None) -> str:
    """Where the student's code raised, named by method: "`AdaGrad(...)` (its `__init__`) raised `...`"."""
    where = METHODS.get(got.get("failed_in") or "", "your code").format(name=name)
    at = f" at step {step}" if step and got.get("failed_in") not in ("__init__", "LinearModel()") else ""
    return f"{where} raised{at}: `{got.get('error')}`" if got.get("error") else f"{where} stopped{at}"


def _numbers(row: object, size: int = 3) -> TypeGuard[list[float]]:
    return isinstance(row, list) and len(row) == size and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in row)


def _observation(submission, name: str, run: str):
    """(measurement, X, y, hyper-parameters, steps asked), the measurement's trajectory checked for shape."""
    got = submission.probe(f"{name}:{run}")
    args = submission.calls[f"{name}:{run}"].args
    X, y = course() if run == "public" else (unpacked(args["X"]), unpacked(args["y"]))
    if not isinstance(got, dict) or not isinstance(got.get("trajectory"), list):
        raise AssertionError(f"`{name}` could not be measured: its run returned nothing readable.")
    for index, row in enumerate(got["trajectory"]):
        if not _numbers(row):
            count = len(row) if isinstance(row, list) else "no"
            raise AssertionError(f"After step {index + 1} of `{name}`, `model.w` and `model.b` hold {count} numbers; "
                                 "they should keep their shapes, (1, 2) and a scalar (2 + 1 numbers).")
    if not isinstance(got.get("gradients"), list):
        got["gradients"] = []
    if not got["trajectory"]:  # the same sentence in every test of this optimizer: said once (plugin._said_once)
        raise AssertionError(f"{stopped(name, got, 1)}.")
    return got, X, y, args["kwargs"], args["steps"]


def check_steps(submission, name: str, run: str, steps: int | None = None) -> rule.Replay:
    """The first `steps` steps (all by default) follow the update rule from the optimizer's own state."""
    got, X, y, kwargs, asked = _observation(submission, name, run)
    want = steps or asked
    trajectory, gradients = got["trajectory"][:want], got["gradients"]
    own = name in rule.OWN_GRADIENTS
    data = course() if own else None
    result = rule.replay(name, kwargs, X, y, trajectory, gradients=gradients, own_gradients=own, course=data)
    index = result.first_bad
    if index is None and len(trajectory) == want:
        return result
    what = f"The first {want} steps of `{name}`" if steps else f"{want} steps of `{name}`"
    if index is None:
        raise AssertionError(f"{what}{WHAT[run]}: {stopped(name, got, len(trajectory) + 1)}.")
    expected, reached = apart(result.expected, trajectory[index])
    lines = [f"{what}{WHAT[run]}: step {index + 1} is the first that does not follow the update rule.\n"
             f"- expected w, b = {expected}\n- got w, b = {reached}"]
    if not all(math.isfinite(x) for x in trajectory[index]):
        lines.append("Your parameters are no longer numbers (NaN or infinite) after this step: a division by zero"
                     + (", e.g. a bias correction 1 − βᵗ with `t` still 0: increment `self.t` before using it."
                        if name == "Adam" else "."))
    elif mistake := rule.diagnose(name, kwargs, X, y, trajectory, result, gradients, own_gradients=own, course=data):
        lines.append(f"Likely mistake: {mistake}.")
    elif name == "SGD" and index < len(gradients) and \
            rule.matching_samples(X, y, trajectory[:index], gradients[:index + 1])[-1] is None:
        lines.append("At this step your gradient is not the gradient at any one training sample. " + SAMPLING_HINT)
    raise AssertionError("\n\n".join(lines))


@np.errstate(all="ignore")  # a reported infinity is compared, not warned about
def _gradient_hint(name: str, X: np.ndarray, y: np.ndarray, theta: list, g: list) -> str:
    """The mistake a wrong gradient shows, by evidence: which gradient of the loss it equals."""
    every = rule._gradients(X, y, rule._array(theta))
    on_course = rule._gradients(*course(), rule._array(theta))
    wanted = every.mean(0, keepdims=True) if name == "GD" else every
    course_rows = on_course.mean(0, keepdims=True) if name == "GD" else on_course
    mine = rule._array(g)
    if rule._close_rows(wanted / 2, mine).any():
        return "Likely mistake: the factor 2 of the squared error's gradient is missing."
    if rule._close_rows(course_rows, mine).any():
        return ("Likely mistake: `calculate_gradient` reads the notebook's `X_train` and `y_train` instead of its "
                "arguments `X` and `y`; the grader calls it with data of its own.")
    if name == "GD":
        if rule._close_rows(every.sum(0, keepdims=True), mine).any():
            return "Likely mistake: the gradient sums over the samples instead of taking their mean."
        return ""
    if rule._close_rows(every.mean(0, keepdims=True), mine).any():
        return "Likely mistake: each step uses the whole training set instead of one random sample. " + SAMPLING_HINT
    if rule._pair_mean(every, mine):
        return "Likely mistake: each step uses two training samples instead of one. " + SAMPLING_HINT
    return SAMPLING_HINT


@np.errstate(all="ignore")
def check_gradient(submission, name: str) -> None:
    """The first gradient is the loss's gradient (over the whole set for GD, at one sample otherwise); for AdaGrad
    and Adam, at every step, at one sample, and not the same one every time."""
    got, X, y, _, _ = _observation(submission, name, "handout")
    gradients = got["gradients"]
    if not gradients:
        raise AssertionError(f"`{name}.calculate_gradient` returned nothing the grader could read.")
    steps = gradients if name in rule.OWN_GRADIENTS else gradients[:1]
    samples = rule.matching_samples(X, y, got["trajectory"], steps) if name != "GD" else []
    checked = 0
    for index, reported in enumerate(steps):
        theta = list(rule.START) if index == 0 else got["trajectory"][index - 1]
        if not (_numbers(theta) and all(math.isfinite(x) for x in theta)):
            break  # the update rule left the parameters NaN or infinite (charged to it): no gradient to judge here
        checked += 1
        if not _numbers(reported):
            raise AssertionError(f"`{name}.calculate_gradient` should return (grad_w, grad_b) with 2 + 1 numbers; "
                                 f"at step {index + 1} yours "
                                     + (f"has {len(reported)}." if isinstance(reported, list) else "does not."))
        if name == "GD":
            G = rule._gradients(X, y, rule._array(theta)).mean(0, keepdims=True)
            good = bool(rule._close_rows(G, rule._array(reported)).any())
            closest = G[0].tolist()
        else:
            good = samples[index] is not None
            closest = None
        if not good:
            where = "over the whole training set" if name == "GD" else "at any one training sample"
            text = (f"`{name}.calculate_gradient` at step {index + 1}, as (grad_w1, grad_w2, grad_b): no gradient "
                    f"{where} matches yours, `{fmt(reported, 6)}`.")
            if closest is not None:
                expected, mine = apart(closest, reported)
                text = (f"`{name}.calculate_gradient` at step {index + 1}, as (grad_w1, grad_w2, grad_b): expected "
                        f"`{expected}`, got `{mine}`.")
            hint = _gradient_hint(name, X, y, theta, reported)
            raise AssertionError(text + (f"\n\n{hint}" if hint else ""))
    if name in rule.OWN_GRADIENTS and checked > 1 and len(set(samples[:checked])) < 2:
        raise AssertionError(f"`{name}` used the same training sample at every step; `calculate_gradient` should "
                             "draw a new random one each call.")


def _state_values(state: object, key: str) -> list | None:
    """A readable state entry (a list of numbers), or None (absent, created later, unreadable)."""
    value = state.get(key) if isinstance(state, dict) else None
    return value if isinstance(value, list) and value and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in value) else None


def _descends(got: dict) -> bool:
    """Whether the first step moved the parameters against the gradient calculate_gradient returned (or at all,
    when that gradient cannot be read): an update rule is at work, whatever its state is called."""
    first = got["trajectory"][0]
    moved = [a - b for a, b in zip(rule.START, first)]
    if not all(math.isfinite(x) for x in moved) or not any(abs(x) > 1e-9 for x in moved):
        return False
    gradient = got["gradients"][0] if got["gradients"] else None
    if not _numbers(gradient) or not all(math.isfinite(x) for x in gradient):
        return True
    return all(m * g > 0 or abs(g) <= 1e-12 or abs(m) <= 1e-9 for m, g in zip(moved, gradient))


def _first_steps(submission, name: str, mistake: str | None = None) -> tuple[dict, bool]:
    got, X, y, kwargs, _ = _observation(submission, name, "custom")
    trajectory = got["trajectory"][:STATE_STEPS]
    result = rule.replay(name, kwargs, X, y, trajectory, mistake=mistake, gradients=got["gradients"],
                         own_gradients=True, course=course())
    return got, result.ok


def check_accumulator_start(submission) -> None:
    """Judged by behaviour: the first steps as from 0.1; else the state as read, in any container; else whether
    a zero start reproduces them. A wrong update rule alone is 4.3's to charge."""
    got, follows = _first_steps(submission, "AdaGrad")
    if follows:
        return
    values = _state_values(got.get("state_before"), "accumulator")
    if values is not None and not all(abs(x - 0.1) <= 1e-6 for x in values):
        raise AssertionError(f"Before the first step your accumulator holds `{fmt(values, 6)}`. The accumulator "
                             "starts at 0.1 in every entry, as in the handout.")
    if values is None and _first_steps(submission, "AdaGrad", "accumulator_from_zero")[1]:
        raise AssertionError("Your first steps are those of an accumulator that starts at 0; it should start at 0.1.")
    if not _descends(got):
        raise AssertionError("`AdaGrad`'s first step does not move `w` and `b` against the gradient its "
                             "`calculate_gradient` returned, so nothing shows an accumulator that starts at 0.1.")


def check_adam_state(submission) -> None:
    """m, v and t start at 0 (judged as for AdaGrad's accumulator) and t counts the steps of a completed run."""
    got, follows = _first_steps(submission, "Adam")
    before, after = got.get("state_before") or {}, got.get("state_after") or {}
    if not follows:
        read = {key: _state_values(before, key) for key in ("m", "v", "t")}
        wrong = {key: value for key, value in read.items() if value is not None and any(x != 0 for x in value)}
        if wrong:
            shown = ", ".join(f"{key} = `{fmt(value, 6)}`" for key, value in wrong.items())
            raise AssertionError(f"Before the first step m, v and t should all be 0; yours hold {shown}.")
        if all(value is None for value in read.values()) and _first_steps(submission, "Adam", "t_not_counted")[1]:
            raise AssertionError("Likely mistake: `t` is not counted: increment `self.t` once per step, before the "
                                 "bias correction.")
    t_after, steps = _state_values(after, "t"), len(got["trajectory"])
    if got.get("error") is None and t_after is not None and len(t_after) == 1 and t_after[0] != steps:
        raise AssertionError(f"After {steps} steps `t` should be {steps}; yours is `{fmt(t_after[0])}`.\n\n"
                             "Likely mistake: `t` is not counted: increment `self.t` once per step.")
    if not follows and not _descends(got):
        raise AssertionError("`Adam`'s first step does not move `w` and `b` against the gradient its "
                             "`calculate_gradient` returned, so nothing shows m, v and t starting at 0.")
