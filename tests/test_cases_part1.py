"""Part 1's cases on observations made in this process (no sandbox): state in any container is judged by what the
steps do, one slip is charged once, and no observation, however malformed, makes a case crash (hypothesis)."""

import copy
import dataclasses
import functools
import inspect
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograder.assignments.hw4_part1 import judge, probes
from autograder.checks import NotRun
from solution import part1
from tests import part1_inprocess as inprocess
from tests.submissions import part1_styles as style

SOLUTION = inspect.getsource(part1)
OPTIMIZER_CALLS = {f"{name}:{run}" for name in ("AdaGrad", "Adam") for run in ("handout", "custom", "public")}


def scope_with(**cells: str) -> dict:
    """The solution's classes with some replaced by a style's cell, run with the notebook's globals."""
    scope = inprocess.namespace(SOLUTION)
    scope.update(np=np, device=torch.device("cpu"), NUM_EXAMPLES=2000)
    for source in cells.values():
        exec(compile(source, "<cell>", "exec"), scope)
    return scope


def judged(scope: dict) -> dict[str, str]:
    """AdaGrad's and Adam's state, gradient and run checks: "" when passed, else the feedback."""
    submission = inprocess.observe(scope, only=OPTIMIZER_CALLS)
    checks = {"4.1": lambda: judge.check_accumulator_start(submission),
              "5.1": lambda: judge.check_adam_state(submission),
              "4.2": lambda: judge.check_gradient(submission, "AdaGrad"),
              "5.2": lambda: judge.check_gradient(submission, "Adam"),
              "4.5": lambda: judge.check_steps(submission, "AdaGrad", "custom"),
              "5.5": lambda: judge.check_steps(submission, "Adam", "custom")}
    found = {}
    for number, check in checks.items():
        try:
            check()
            found[number] = ""
        except AssertionError as error:
            found[number] = str(error)
    return found


@pytest.mark.parametrize("adagrad, adam", [
    (style.FLOAT_TUPLE_ADAGRAD, style.LAZY_DICT_ADAM), (style.SCALAR_TENSOR_TUPLE_ADAGRAD, style.NUMPY_ADAM),
    (style.DICT_ADAGRAD, style.DEVICE_ADAM), (style.ONE_TENSOR_ADAGRAD, style.LAZY_DICT_ADAM),
    (style.NUMPY_ADAGRAD, style.DEVICE_ADAM), (style.NUM_EXAMPLES_ADAGRAD, style.NUMPY_ADAM)])
def test_state_in_any_container_passes(adagrad, adam):
    assert judged(scope_with(AdaGrad=adagrad, Adam=adam)) == dict.fromkeys(("4.1", "5.1", "4.2", "5.2", "4.5", "5.5"), "")


def test_a_two_sample_helper_costs_the_gradient_tests_only():
    scope = scope_with()
    two = lambda X, y: (lambda i: (X[i], y[i]))(torch.randint(0, len(X), (2,)))  # noqa: E731
    for name in ("AdaGrad", "Adam"):
        scope[name].calculate_gradient.__globals__["_one_sample"] = two
    found = judged(scope)
    assert {n for n, text in found.items() if text} == {"4.2", "5.2"}
    assert "two training samples" in found["4.2"]


def test_an_update_rule_bug_is_not_charged_to_the_start_or_the_gradient():
    """No bias correction: 5.1 (m, v, t start at 0, t counts) and 5.2 pass, and no sampling hint anywhere."""
    adam = inspect.getsource(part1.Adam).replace("m / (1 - self.beta1 ** self.t)", "m").replace(
        "v / (1 - self.beta2 ** self.t)", "v")
    found = judged(scope_with(Adam=adam))
    assert found["5.1"] == found["5.2"] == "" and "bias correction" in found["5.5"]
    assert not any("one training sample" in text for text in found.values())


def test_a_gradient_at_parameters_the_update_rule_made_nan_is_not_charged_to_sampling():
    """t never counted: 1 - β⁰ = 0, so step 1 leaves NaN parameters, and every later gradient is NaN. That is the
    update rule's fault (5.1, 5.5); the gradient at step 1, at finite parameters, is right (5.2 passes)."""
    adam = inspect.getsource(part1.Adam).replace("self.t += 1", "pass")
    assert adam != inspect.getsource(part1.Adam)
    found = judged(scope_with(Adam=adam))
    assert found["5.1"] and found["5.5"] and found["5.2"] == ""
    assert not any("one training sample" in text for text in found.values())


def test_a_zero_start_is_named_from_the_steps_when_the_state_cannot_be_read():
    adagrad = style.LAZY_DICT_ADAM and inspect.getsource(part1.AdaGrad).replace(
        "self.accumulator = (torch.full((1, 2), 0.1), torch.tensor(0.1))", "self.accumulator = None").replace(
        "G_w, G_b = self.accumulator", "G_w, G_b = self.accumulator or (torch.zeros(1, 2), torch.tensor(0.0))")
    found = judged(scope_with(AdaGrad=adagrad))
    assert "starts at 0" in found["4.1"] and found["4.2"] == ""


def test_an_error_in_init_is_reported_as_init():
    adagrad = inspect.getsource(part1.AdaGrad).replace("self.epsilon = epsilon", "self.epsilon = UNDEFINED_NAME")
    found = judged(scope_with(AdaGrad=adagrad))
    assert all("`AdaGrad(...)` (its `__init__`) raised" in found[n] for n in ("4.1", "4.2", "4.5"))


def test_digits_enough_to_differ():
    assert judge.apart([1.00001, 2.0], [1.00002, 2.0]) == ("[1.00001, 2]", "[1.00002, 2]")


# --- No case crashes, whatever the observation holds.

NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6), st.booleans())
LEAF = st.one_of(NUMBERS, st.none(), st.text(max_size=8))
JSONISH = st.recursive(LEAF, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(st.text(max_size=3), inner, max_size=3)),
                       max_leaves=12)
ROW = st.one_of(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=3, max_size=3), JSONISH)
STATE = st.dictionaries(st.sampled_from(["accumulator", "m", "v", "t"]),
                        st.one_of(st.lists(NUMBERS, max_size=5), JSONISH), max_size=4)
OBSERVATION = st.fixed_dictionaries({
    "trajectory": st.one_of(st.lists(ROW, max_size=6), JSONISH),
    "gradients": st.one_of(st.lists(ROW, max_size=6), JSONISH),
    "error": st.one_of(st.none(), st.text(max_size=20)),
    "failed_in": st.one_of(st.none(), st.sampled_from(["__init__", "calculate_gradient", "apply_gradient", "x"])),
    "state_before": st.one_of(STATE, JSONISH), "state_after": st.one_of(STATE, JSONISH)})


@functools.lru_cache(maxsize=1)
def _calls():
    return inprocess.observe({}, only=set())  # the calls (hidden problems) without measuring anything


def fake_submission(observation: dict):
    base = _calls()
    return dataclasses.replace(base, reply={"probes": {name: {"ok": True, "value": copy.deepcopy(observation)}
                                                       for name in base.calls}, "cells": []}, _expected={})


CHECKS = [lambda s: judge.check_accumulator_start(s), lambda s: judge.check_adam_state(s),
          lambda s: judge.check_gradient(s, "AdaGrad"), lambda s: judge.check_gradient(s, "GD"),
          lambda s: judge.check_steps(s, "Adam", "custom"), lambda s: judge.check_steps(s, "SGD", "handout", 3)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(observation=OBSERVATION)
def test_no_case_crashes_on_any_observation(observation):
    submission = fake_submission(observation)
    for check in CHECKS:
        try:
            check(submission)
        except (AssertionError, NotRun):
            pass


DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int64, torch.bool]


@st.composite
def containers(draw):
    """State as a student may keep it: numbers, tensors of any dtype and shape, numpy arrays, in tuples, lists,
    dicts, or None until the first step."""
    leaf = st.one_of(
        st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5),
        st.builds(lambda shape, dtype: torch.full(shape, 0.1).to(dtype),
                  st.sampled_from([(), (1,), (1, 2), (2,), (3,)]), st.sampled_from(DTYPES)),
        st.builds(lambda n: np.full(n, 0.1), st.integers(0, 3)), st.none())
    return draw(st.recursive(leaf, lambda inner: st.one_of(st.tuples(inner, inner), st.lists(inner, max_size=3),
                                                           st.dictionaries(st.sampled_from("wb"), inner)),
                             max_leaves=6))


@settings(max_examples=40, deadline=None)
@given(accumulator=containers(), m=containers(), t=st.one_of(st.integers(0, 3), st.floats(allow_nan=True)))
def test_the_probe_reads_any_container_and_the_cases_judge_it(accumulator, m, t):
    holder = type("State", (), {})()
    holder.accumulator, holder.m, holder.v, holder.t = accumulator, m, m, t
    state = probes._state(holder)  # never raises: unreadable state is reported as such
    assert set(state) == {"accumulator", "m", "v", "t"}
    for value in state.values():
        assert value is None or isinstance(value, (list, str))
    observation = {"trajectory": [[5.0, 5.0, 10.0], [math.nan, 1.0, 2.0]], "gradients": [[1.0, 2.0, 3.0], None],
                   "error": None, "failed_in": None, "state_before": state, "state_after": state}
    for check in CHECKS[:2]:
        try:
            check(fake_submission(observation))
        except AssertionError:
            pass


def test_an_optimizer_that_does_nothing_earns_no_start_point():
    """No state to read and no step taken: nothing shows a right start (the forged-class attack's AdaGrad)."""
    idle = ("class AdaGrad:\n    def __init__(self, lr=0.001, epsilon=1e-7):\n        self.lr = lr\n\n"
            "    def calculate_gradient(self, X, y, model):\n        return torch.zeros(1, 2), torch.tensor(0.0)\n\n"
            "    def apply_gradient(self, grads, model):\n        pass\n")
    adam = inspect.getsource(part1.Adam).replace("        model.w = model.w - ", "        _ = model.w - ").replace(
        "        model.b = model.b - ", "        _ = model.b - ")
    found = judged(scope_with(AdaGrad=idle, Adam=adam))
    assert "does not move" in found["4.1"] and found["4.2"] and "does not move" in found["5.1"]
