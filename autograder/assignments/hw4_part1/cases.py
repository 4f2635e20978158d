"""HW4 Part 1 graded cases. Points, names and visibility live in rubric.yml (by number); each case compares one
measurement with the reference: forward and loss by value, every optimizer run step by step against the update
rule (replay.py; AdaGrad's and Adam's on the gradients their own calculate_gradient returned, judge.py). The
failure message is the student's feedback: the first step that differs, expected and got, and the likely mistake
by name when a known one reproduces the run."""

from gradescope_utils.autograder_utils.decorators import number

from autograder.assignments.hw4_part1.judge import (check_accumulator_start, check_adam_state, check_gradient,
                                                     check_steps)
from autograder.assignments.hw4_part1.reference import course_mse
from autograder.checks import assert_close, fmt

FIRST_STEPS = 10
PUBLIC_TARGETS = {"GD": 0.9611, "SGD": 0.9707, "AdaGrad": 29.5416, "Adam": 1.0076}


def check_public(submission, name: str) -> None:
    result = check_steps(submission, name, "public")
    got = submission.probe(f"{name}:public")
    mse = course_mse(got["trajectory"][-1])
    target = PUBLIC_TARGETS[name]
    if name == "GD" and abs(mse - target) >= 1e-3:
        raise AssertionError(f"After 300 steps of `GD` on the course data the training MSE should be {target}; "
                             f"yours is {mse:.6g}.")
    if name == "SGD" and len(set(result.samples)) < 2:
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
    check_accumulator_start(submission)


@number("4.2")
def test_adagrad_gradient(submission):
    check_gradient(submission, "AdaGrad")


@number("4.3")
def test_adagrad_first_steps(submission):
    check_steps(submission, "AdaGrad", "custom", FIRST_STEPS)


@number("4.4")
def test_adagrad_run(submission):
    check_steps(submission, "AdaGrad", "handout")


@number("4.5")
def test_adagrad_custom_run(submission):
    check_steps(submission, "AdaGrad", "custom")


@number("4.6")
def test_public_adagrad(submission):
    check_public(submission, "AdaGrad")


@number("5.1")
def test_adam_state(submission):
    check_adam_state(submission)


@number("5.2")
def test_adam_gradient(submission):
    check_gradient(submission, "Adam")


@number("5.3")
def test_adam_first_steps(submission):
    check_steps(submission, "Adam", "custom", FIRST_STEPS)


@number("5.4")
def test_adam_run(submission):
    check_steps(submission, "Adam", "handout")


@number("5.5")
def test_adam_custom_run(submission):
    check_steps(submission, "Adam", "custom")


@number("5.6")
def test_public_adam(submission):
    check_public(submission, "Adam")
