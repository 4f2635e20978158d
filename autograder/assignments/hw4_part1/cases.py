"""HW4 Part 1 graded cases (40 points). Each compares one observation with the reference's answer to the
same call. Weights and numbers sit beside each case; the docstring's first line is what students see."""

from gradescope_utils.autograder_utils.decorators import number, weight

from autograder.assignments.hw4_part1 import forbidden
from autograder.assignments.hw4_part1.reference import course_mse
from autograder.checks import NotRun, assert_close, assert_same_steps, fmt

FIRST_STEPS = 10
SAMPLING_HINT = ("Hint: your optimizer used the random number generator differently from the reference, which "
                 "draws exactly one index per step with `torch.randint(0, N, (1,))` inside `calculate_gradient`.")


def _params(row) -> str:
    return f"w = {fmt(row[:2])}, b = {fmt(row[2:])}"


def _enforce_no_torch_optim(submission, name: str) -> None:
    """Static findings on the class's source, and calls into torch/optim/ recorded while it ran."""
    reasons = forbidden.findings(submission.notebook, name) if submission.notebook else []
    for run in ("handout", "custom"):
        try:
            got = submission.probe(f"{name}:{run}")
        except NotRun:
            continue
        reasons += [f"called `{hit}` while running" for hit in got.get("torch_optim_calls", [])[:3]]
        if got.get("monitor_removed"):
            reasons.append("removed the grader's call monitor (`sys.settrace`) while running")
    if reasons:
        raise AssertionError(f"`{name}` must not use `torch.optim` (the handout forbids built-in optimizers "
                             f"here), so it scores 0. Your `{name}`:\n" + "\n".join(f"- {r}" for r in sorted(set(reasons))))


def _run(submission, name: str, run: str):
    """The student's and the reference's run of optimizer `name`, after the no-torch.optim rule."""
    got = submission.probe(f"{name}:{run}")
    _enforce_no_torch_optim(submission, name)
    return got, submission.expected(f"{name}:{run}")


def _hint_for(got, expected) -> str:
    """Only a one-sample optimizer that ran to the end can have drawn differently."""
    if got["error"] or "next_draw" not in expected or got.get("next_draw") == expected["next_draw"]:
        return ""
    return SAMPLING_HINT


def check_gradient(submission, name: str) -> None:
    got, expected = _run(submission, name, "handout")
    if got["first_gradient"] is None:
        raise AssertionError(f"`{name}.calculate_gradient` failed at the first step: `{got['error']}`")
    assert_close(got["first_gradient"], expected["first_gradient"],
                 f"`{name}.calculate_gradient` at the first step, as (grad_w1, grad_w2, grad_b)",
                 hint=_hint_for(got, expected))


def check_first_steps(submission, name: str) -> None:
    got, expected = _run(submission, name, "custom")
    assert_same_steps(got["trajectory"][:FIRST_STEPS], expected["trajectory"][:FIRST_STEPS],
                      f"The first {FIRST_STEPS} steps of `{name}` with other hyper-parameters", _params,
                      error=got["error"], hint=_hint_for(got, expected))


def check_full_run(submission, name: str, run: str) -> None:
    got, expected = _run(submission, name, run)
    what = f"{len(expected['trajectory'])} steps of `{name}`" + (" with other hyper-parameters" if run == "custom" else "")
    assert_same_steps(got["trajectory"], expected["trajectory"], what, _params, error=got["error"],
                      hint=_hint_for(got, expected))


def check_public(submission, name: str, target: float, tolerance: float) -> None:
    final = submission.probe("public_protocol")[name]
    _enforce_no_torch_optim(submission, name)
    if "error" in final:
        raise AssertionError(f"The notebook's check of `{name}` could not run: `{final['error']}`")
    mse = course_mse(final["params"])
    if not abs(mse - target) < tolerance:
        raise AssertionError(f"The notebook's check: after 300 steps of `{name}` on the course data, the training "
                             f"MSE should be {target} (within {tolerance}); yours is {mse:.4f}.")


@weight(2)
@number("1.1")
def test_forward(submission):
    """1b. LinearModel.forward returns x w^T + b with shape (n, 1)"""
    got, expected = submission.probe("forward"), submission.expected("forward")
    assert_close(got["public"], expected["public"], "`LinearModel()(tensor([[1., 2.]]))`")
    if got["batch_shape"] != expected["batch_shape"]:
        raise AssertionError(f"For a batch of {expected['batch_shape'][0]} inputs, `forward` should return shape "
                             f"`{expected['batch_shape']}`; yours has shape `{got['batch_shape']}`.")
    assert_close(got["batch"], expected["batch"], "`forward` on a batch of inputs")


@weight(2)
@number("1.2")
def test_loss(submission):
    """1b. loss is the mean squared error, a scalar"""
    got, expected = submission.probe("loss"), submission.expected("loss")
    assert_close(got["public"], expected["public"], "`loss(tensor([[25.]]), tensor([3.]))`")
    if got["hidden_shape"] != []:
        raise AssertionError(f"`loss` should return a scalar tensor; yours has shape `{got['hidden_shape']}`.")
    assert_close(got["hidden"], expected["hidden"], "`loss` on targets and predictions of shape (n, 1)",
                 hint="Hint: the **mean** of the squared differences, not their sum.")


@weight(2)
@number("1.3")
def test_builtin_adam(submission):
    """1c. train_with_torch_adam: last mini-batch loss of each epoch and final parameters"""
    got, expected = submission.probe("builtin_adam"), submission.expected("builtin_adam")
    assert_close(got["losses"], expected["losses"], "Last mini-batch loss of each epoch (3 epochs, batch 16)",
                 rtol=1e-3, atol=1e-4, hint="Hint: consecutive mini-batches, no shuffling, one step per batch.")
    assert_close(got["params"], expected["params"], "Final (w1, w2, b)", rtol=1e-3, atol=1e-4)


@weight(2)
@number("2.1")
def test_gd_gradient(submission):
    """2a. GD: gradient over the whole training set"""
    check_gradient(submission, "GD")


@weight(2)
@number("2.2")
def test_gd_first_steps(submission):
    """2a. GD: the first steps with lr=0.05"""
    check_first_steps(submission, "GD")


@weight(3)
@number("2.3")
def test_gd_run(submission):
    """2a. GD: 300 steps with the default learning rate"""
    check_full_run(submission, "GD", "handout")


@weight(2)
@number("2.4")
def test_sgd_gradient(submission):
    """2b. SGD: gradient at one random training point"""
    check_gradient(submission, "SGD")


@weight(2)
@number("2.5")
def test_sgd_first_steps(submission):
    """2b. SGD: the first steps with lr=0.03"""
    check_first_steps(submission, "SGD")


@weight(3)
@number("2.6")
def test_sgd_run(submission):
    """2b. SGD: 300 steps with the default learning rate"""
    check_full_run(submission, "SGD", "handout")


@weight(1)
@number("2.7")
def test_adagrad_accumulator_start(submission):
    """2c. AdaGrad: the accumulator starts at 0.1"""
    got, expected = _run(submission, "AdaGrad", "handout")
    state = got.get("state_before", {})
    if "accumulator" not in state:
        raise AssertionError("`AdaGrad` should keep its running sum in `self.accumulator = (acc_w, acc_b)`.")
    assert_close(state["accumulator"], expected["state_before"]["accumulator"],
                 "`AdaGrad().accumulator` before the first step, as (acc_w1, acc_w2, acc_b)")


@weight(1)
@number("2.8")
def test_adagrad_gradient(submission):
    """2c. AdaGrad: gradient at one random training point"""
    check_gradient(submission, "AdaGrad")


@weight(2)
@number("2.9")
def test_adagrad_first_steps(submission):
    """2c. AdaGrad: the first steps with lr=0.3, epsilon=0.5, small gradients"""
    check_first_steps(submission, "AdaGrad")


@weight(2)
@number("2.10")
def test_adagrad_run(submission):
    """2c. AdaGrad: 300 steps with lr=0.1"""
    check_full_run(submission, "AdaGrad", "handout")


@weight(1)
@number("2.11")
def test_adagrad_custom_run(submission):
    """2c. AdaGrad: 100 steps with lr=0.3, epsilon=0.5"""
    check_full_run(submission, "AdaGrad", "custom")


@weight(1)
@number("2.12")
def test_adam_state(submission):
    """2d. Adam: m and v start at 0, t at 0, and t counts the steps"""
    got, expected = _run(submission, "Adam", "handout")
    before, after = got.get("state_before", {}), got.get("state_after", {})
    if any(name not in before for name in ("m", "v", "t")):
        raise AssertionError("`Adam` should keep `self.m`, `self.v` and `self.t`.")
    if any(abs(x) > 0 for x in before["m"] + before["v"]) or before["t"] != [0.0]:
        raise AssertionError(f"Before the first step `m`, `v` and `t` should all be 0; yours are "
                             f"m = `{fmt(before['m'])}`, v = `{fmt(before['v'])}`, t = `{fmt(before['t'])}`.")
    steps = len(expected["trajectory"])
    if after.get("t") != [float(steps)]:
        raise AssertionError(f"After {steps} steps `t` should be {steps}; yours is `{fmt(after.get('t'))}`.")


@weight(1)
@number("2.13")
def test_adam_gradient(submission):
    """2d. Adam: gradient at one random training point"""
    check_gradient(submission, "Adam")


@weight(2)
@number("2.14")
def test_adam_first_steps(submission):
    """2d. Adam: the first steps with beta1=0.8, beta2=0.95, epsilon=0.3"""
    check_first_steps(submission, "Adam")


@weight(2)
@number("2.15")
def test_adam_run(submission):
    """2d. Adam: 300 steps with lr=0.1"""
    check_full_run(submission, "Adam", "handout")


@weight(1)
@number("2.16")
def test_adam_custom_run(submission):
    """2d. Adam: 100 steps with beta1=0.8, beta2=0.95, epsilon=0.3"""
    check_full_run(submission, "Adam", "custom")


@weight(1)
@number("3.1")
def test_public_baseline(submission):
    """Notebook check 1b: LinearModel gives 25.0 and loss gives 484.0"""
    forward, loss = submission.probe("forward"), submission.probe("loss")
    if forward["public"] != [25.0] or loss["public"] != [484.0]:
        raise AssertionError(f"Expected exactly 25.0 and 484.0; got {fmt(forward['public'])} and {fmt(loss['public'])}.")


@weight(1)
@number("3.2")
def test_public_gd(submission):
    """Notebook check 2a: GD reaches a training MSE of 0.9611"""
    check_public(submission, "GD", 0.9611, 1e-3)


@weight(1)
@number("3.3")
def test_public_sgd(submission):
    """Notebook check 2b: SGD reaches a training MSE of 0.9707"""
    check_public(submission, "SGD", 0.9707, 0.05)


@weight(1)
@number("3.4")
def test_public_adagrad(submission):
    """Notebook check 2c: AdaGrad(lr=0.1) reaches a training MSE of 29.5416"""
    check_public(submission, "AdaGrad", 29.5416, 0.05)


@weight(2)
@number("3.5")
def test_public_adam(submission):
    """Notebook check 2d: Adam(lr=0.1) reaches a training MSE of 1.0076 with w near [4.186, 3.128]"""
    check_public(submission, "Adam", 1.0076, 0.05)
    w = submission.probe("public_protocol")["Adam"]["params"][:2]
    assert_close(w, [4.1860504, 3.1284819], "The notebook's check of Adam's final w", rtol=0, atol=0.05)
