"""HW4 Part 1 graded cases. Points, names and visibility live in rubric.yml (by number); each case compares one
measurement with the reference: forward and loss by value, every optimizer run step by step against the update
rule (replay.py). The failure message is the student's feedback: the first step that differs, expected and got,
and the likely mistake by name when a known one reproduces the run."""

import math

from gradescope_utils.autograder_utils.decorators import number

from autograder.assignments.hw4_part1 import replay as rule
from autograder.assignments.hw4_part1.reference import course_mse, course_problem
from autograder.checks import assert_close, fmt

FIRST_STEPS = 10
PUBLIC_TARGETS = {"GD": 0.9611, "SGD": 0.9707, "AdaGrad": 29.5416, "Adam": 1.0076}
SAMPLING_HINT = ("Hint: no single training sample reproduces this step. `calculate_gradient` should use exactly "
                 "one sample, chosen uniformly at random, per call (e.g. `i = torch.randint(0, len(X), (1,))`).")
WHAT = {"handout": "", "custom": " with other hyper-parameters", "public": " on the course data"}


def _params(row) -> str:
    return f"w = {fmt(row[:2])}, b = {fmt(row[2:])}"


def _problem(submission, name: str, run: str):
    """(measurement, problem X, y, hyper-parameters, steps asked)."""
    got = submission.probe(f"{name}:{run}")
    args = submission.calls[f"{name}:{run}"].args
    X, y = course_problem() if run == "public" else (args["X"], args["y"])
    return got, X, y, args["kwargs"], args["steps"]


def check_steps(submission, name: str, run: str, steps: int | None = None) -> rule.Replay:
    """The first `steps` steps (all by default) follow the update rule from the optimizer's own state."""
    got, X, y, kwargs, asked = _problem(submission, name, run)
    want = steps or asked
    trajectory, gradients = got["trajectory"][:want], got.get("gradients")
    result = rule.replay(name, kwargs, X, y, trajectory, gradients=gradients)
    if result.ok and len(trajectory) == want:
        return result
    what = f"The first {want} steps of `{name}`" if steps else f"{want} steps of `{name}`"
    lines = []
    if not result.ok:
        index = result.first_bad
        lines.append(f"{what}{WHAT[run]}: step {index + 1} is the first that does not follow the update rule.\n"
                     f"- expected {_params(result.expected)}\n- got {_params(trajectory[index])}")
    else:
        lines.append(f"{what}{WHAT[run]}: your code stopped at step {len(trajectory) + 1}"
                     + (f" with `{got['error']}`." if got.get("error") else "."))
    mistake = rule.diagnose(name, kwargs, X, y, trajectory, result, gradients) if not result.ok else ""
    if not result.ok and not all(math.isfinite(x) for x in trajectory[result.first_bad]):
        lines.append("Your parameters are no longer numbers (NaN or infinite) after this step: a division by zero"
                     + (", e.g. a bias correction 1 − βᵗ with `t` still 0: increment `self.t` before using it."
                        if name == "Adam" else "."))
    elif mistake:
        lines.append(f"Likely mistake: {mistake}.")
    elif not result.ok and name in rule.ONE_SAMPLE:
        lines.append(SAMPLING_HINT)
    raise AssertionError("\n\n".join(lines))


def check_gradient(submission, name: str) -> None:
    got, X, y, kwargs, _ = _problem(submission, name, "handout")
    if not got["gradients"]:
        raise AssertionError(f"`{name}.calculate_gradient` failed at the first step: `{got['error']}`")
    import torch
    G = rule._gradients(torch.tensor(X, dtype=torch.float64), torch.tensor(y, dtype=torch.float64).reshape(-1),
                        torch.tensor(rule.START, dtype=torch.float64))
    candidates = G.mean(0, keepdim=True) if name == "GD" else G
    first = got["gradients"][0]
    if first is None or len(first) != 3:
        raise AssertionError(f"`{name}.calculate_gradient` should return (grad_w, grad_b) with 2 + 1 numbers; "
                             f"yours {'is not a pair of tensors' if first is None else f'has {len(first)}'}.")
    distance = ((candidates - torch.tensor(first, dtype=torch.float64)).abs()
                - (rule.ATOL + rule.RTOL * candidates.abs())).amax(1)
    best = int(distance.argmin())
    if float(distance[best]) > 0:
        where = "over the whole training set" if name == "GD" else "at any one training sample"
        hint = "" if name == "GD" else "\n\n" + SAMPLING_HINT
        if abs(first[0] * 2 - float(candidates[best][0])) < 1e-3 * (1 + abs(float(candidates[best][0]))):
            hint = "\n\nLikely mistake: the factor 2 of the squared error's gradient is missing."
        raise AssertionError(f"`{name}.calculate_gradient` at the first step, as (grad_w1, grad_w2, grad_b): "
                             f"no gradient {where} matches yours. Closest expected `{fmt(candidates[best].tolist())}`, "
                             f"got `{fmt(first)}`.{hint}")


def check_public(submission, name: str) -> None:
    result = check_steps(submission, name, "public")
    got = submission.probe(f"{name}:public")
    mse = course_mse(got["trajectory"][-1])
    target = PUBLIC_TARGETS[name]
    if name == "GD" and abs(mse - target) >= 1e-3:
        raise AssertionError(f"After 300 steps of `GD` on the course data the training MSE should be {target}; "
                             f"yours is {mse:.4f}.")
    if name in rule.ONE_SAMPLE and len(set(result.samples)) < 2:
        raise AssertionError(f"`{name}` used the same training sample at every step; it should draw a new one each step.")


def check_varies(submission, name: str) -> None:
    result = check_steps(submission, name, "handout")
    if len(set(result.samples)) < 2:
        raise AssertionError(f"`{name}` used the same training sample at every step; it should draw a new random "
                             f"one each step.")


@number("1.1")
def test_forward(submission):
    got, expected = submission.probe("forward"), submission.expected("forward")
    assert_close(got["public"], expected["public"], "`LinearModel()(tensor([[1., 2.]]))`")
    if got["batch_shape"] != expected["batch_shape"]:
        raise AssertionError(f"For a batch of {expected['batch_shape'][0]} inputs, `forward` should return shape "
                             f"`{expected['batch_shape']}`; yours has shape `{got['batch_shape']}`.")
    assert_close(got["batch"], expected["batch"], "`forward` on a batch of inputs")


@number("1.2")
def test_loss(submission):
    got, expected = submission.probe("loss"), submission.expected("loss")
    assert_close(got["public"], expected["public"], "`loss(tensor([[25.]]), tensor([3.]))`")
    if got["hidden_shape"] != []:
        raise AssertionError(f"`loss` should return a scalar tensor; yours has shape `{got['hidden_shape']}`.")
    hint = ""
    if abs(got["hidden"][0] - expected["hidden"][0] * 9) < 1e-3 * (1 + abs(got["hidden"][0])):
        hint = "Likely mistake: the **sum** of the squared differences instead of their mean."
    assert_close(got["hidden"], expected["hidden"], "`loss` on targets and predictions of shape (n, 1)", hint=hint)


@number("1.3")
def test_public_baseline(submission):
    forward, loss = submission.probe("forward"), submission.probe("loss")
    if forward["public"] != [25.0] or loss["public"] != [484.0]:
        raise AssertionError(f"Expected exactly 25.0 and 484.0; got {fmt(forward['public'])} and {fmt(loss['public'])}.")


@number("2.1")
def test_gd_gradient(submission):
    check_gradient(submission, "GD")


@number("2.2")
def test_gd_first_steps(submission):
    check_steps(submission, "GD", "custom", FIRST_STEPS)


@number("2.3")
def test_gd_run(submission):
    check_steps(submission, "GD", "handout")


@number("2.4")
def test_public_gd(submission):
    check_public(submission, "GD")


@number("3.1")
def test_sgd_gradient(submission):
    check_gradient(submission, "SGD")


@number("3.2")
def test_sgd_first_steps(submission):
    check_steps(submission, "SGD", "custom", FIRST_STEPS)


@number("3.3")
def test_sgd_run(submission):
    check_varies(submission, "SGD")


@number("3.4")
def test_public_sgd(submission):
    check_public(submission, "SGD")


@number("4.1")
def test_adagrad_accumulator_start(submission):
    got = submission.probe("AdaGrad:custom")
    state = got.get("state_before", {})
    if "accumulator" not in state:
        raise AssertionError("`AdaGrad` should keep its running sums in `self.accumulator = (acc_w, acc_b)`.")
    assert_close(state["accumulator"], [0.1, 0.1, 0.1], "`AdaGrad().accumulator` before the first step, as "
                 "(acc_w1, acc_w2, acc_b)", hint="The accumulator starts at 0.1, as in the handout.")
    check_steps(submission, "AdaGrad", "handout", 1)  # and the first step behaves as if it did


@number("4.2")
def test_adagrad_gradient(submission):
    check_gradient(submission, "AdaGrad")


@number("4.3")
def test_adagrad_first_steps(submission):
    check_steps(submission, "AdaGrad", "custom", FIRST_STEPS)


@number("4.4")
def test_adagrad_run(submission):
    check_varies(submission, "AdaGrad")


@number("4.5")
def test_adagrad_custom_run(submission):
    check_steps(submission, "AdaGrad", "custom")


@number("4.6")
def test_public_adagrad(submission):
    check_public(submission, "AdaGrad")


@number("5.1")
def test_adam_state(submission):
    got = submission.probe("Adam:custom")
    before, after = got.get("state_before", {}), got.get("state_after", {})
    if any(name not in before for name in ("m", "v", "t")):
        raise AssertionError("`Adam` should keep `self.m`, `self.v` and `self.t`.")
    if any(not isinstance(x, float) or abs(x) > 0 for x in before["m"] + before["v"] + before["t"]):
        raise AssertionError(f"Before the first step `m`, `v` and `t` should all be 0; yours are "
                             f"m = `{fmt(before['m'])}`, v = `{fmt(before['v'])}`, t = `{fmt(before['t'])}`.")
    steps = len(got["trajectory"])
    if after.get("t") != [float(steps)]:
        raise AssertionError(f"After {steps} steps `t` should be {steps}; yours is `{fmt(after.get('t'))}`.\n\n"
                             f"Likely mistake: `t` is not counted: increment `self.t` once per step.")
    check_steps(submission, "Adam", "handout", 2)  # and the first steps behave as if they were


@number("5.2")
def test_adam_gradient(submission):
    check_gradient(submission, "Adam")


@number("5.3")
def test_adam_first_steps(submission):
    check_steps(submission, "Adam", "custom", FIRST_STEPS)


@number("5.4")
def test_adam_run(submission):
    check_varies(submission, "Adam")


@number("5.5")
def test_adam_custom_run(submission):
    check_steps(submission, "Adam", "custom")


@number("5.6")
def test_public_adam(submission):
    check_public(submission, "Adam")
