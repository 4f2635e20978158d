"""replay.py on its own, in process: the update rules step by step, judged on the optimizer's own gradients where
that is asked for, which reported gradients are trusted, and which samples each step used."""

import numpy as np
import pytest
import torch

from autograder.assignments.hw4_part1 import replay as rule
from solution import part1

ROWS = 60


def problem(seed: int = 3):
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(ROWS, 2, generator=generator)
    y = X @ torch.tensor([[1.0], [-2.0]]) + 0.5 + 0.3 * torch.randn(ROWS, 1, generator=generator)
    return X, y


def run(optimizer, X, y, steps: int = 12, sampler=None, seed: int = 0):
    """The trajectory and the reported gradients of `optimizer`, drawing rows with `sampler(n)` (default: one)."""
    torch.manual_seed(seed)
    model, trajectory, gradients, used = part1.LinearModel(), [], [], []
    for _ in range(steps):
        if isinstance(optimizer, part1.SGD):
            rows = sampler(len(X)) if sampler else torch.randint(0, len(X), (1,))
            used.append(rows.tolist())
            grads = part1._squared_error_gradient(X[rows], y[rows], model)
        else:
            grads = optimizer.calculate_gradient(X, y, model)
        gradients.append(torch.cat([grads[0].reshape(-1), grads[1].reshape(-1)]).tolist())
        optimizer.apply_gradient(grads, model)
        trajectory.append(torch.cat([model.w.reshape(-1), model.b.reshape(-1)]).tolist())
    return trajectory, gradients, used


class Sampled(part1.AdaGrad):
    """AdaGrad whose rows come from a sampler (two rows: the shared-helper slip)."""

    def __init__(self, sampler, **kwargs):
        super().__init__(**kwargs)
        self.sampler = sampler

    def calculate_gradient(self, X, y, model):
        rows = self.sampler(len(X))
        return part1._squared_error_gradient(X[rows], y[rows], model)


class SampledAdam(part1.Adam):
    def __init__(self, sampler, **kwargs):
        super().__init__(**kwargs)
        self.sampler = sampler

    def calculate_gradient(self, X, y, model):
        rows = self.sampler(len(X))
        return part1._squared_error_gradient(X[rows], y[rows], model)


def two(n):
    return torch.randint(0, n, (2,))


@pytest.mark.parametrize("kind, kwargs", [("GD", {"lr": 0.05}), ("SGD", {"lr": 0.03}), ("AdaGrad", {"lr": 0.1}),
                                          ("Adam", {"lr": 0.1})])
def test_the_reference_follows_every_rule(kind, kwargs):
    X, y = problem()
    trajectory, gradients, _ = run(getattr(part1, kind)(**kwargs), X, y)
    for own in (False, True):
        assert rule.replay(kind, kwargs, X.tolist(), y.tolist(), trajectory, gradients=gradients,
                           own_gradients=own).ok


@pytest.mark.parametrize("cls, kind", [(Sampled, "AdaGrad"), (SampledAdam, "Adam")])
def test_a_two_sample_gradient_is_charged_to_sampling_only(cls, kind):
    X, y = problem()
    trajectory, gradients, _ = run(cls(two, lr=0.1), X, y)
    args = (kind, {"lr": 0.1}, X.tolist(), y.tolist(), trajectory)
    assert rule.replay(*args, gradients=gradients, own_gradients=True).ok  # the update rule is right
    assert not rule.replay(*args, gradients=gradients).ok  # as one-sample steps it is not
    assert rule.matching_samples(X.tolist(), y.tolist(), trajectory, gradients)[0] is None


def test_a_made_up_gradient_is_not_trusted():
    """Zeros and noise are no gradient of the loss: an optimizer that does nothing with them fails."""
    X, y = problem()
    still = [list(rule.START)] * 5
    for made_up in ([0.0, 0.0, 0.0], [0.123, -4.56, 7.89]):
        assert not rule.replay("AdaGrad", {"lr": 0.1}, X.tolist(), y.tolist(), still, gradients=[made_up] * 5,
                               own_gradients=True).ok


def test_which_gradients_count_as_the_losss():
    X, y = problem()
    G = rule._gradients(X.double().numpy(), y.double().reshape(-1).numpy(), rule._array(rule.START))
    assert rule.is_loss_gradient(G, G[7].tolist())
    assert rule.is_loss_gradient(G, ((G[3] + G[11]) / 2).tolist())  # two samples
    assert rule.is_loss_gradient(G, G.mean(0).tolist()) and rule.is_loss_gradient(G, G.sum(0).tolist())
    assert rule.is_loss_gradient(G, (G[5] / 2).tolist())  # a missing factor 2
    course = G[:3] * 1.7 + 0.2  # any rows given as the course data's
    assert rule.is_loss_gradient(G, course[1].tolist(), course) and not rule.is_loss_gradient(G, course[1].tolist())
    for bad in ([0.0, 0.0, 0.0], [float("nan"), 1.0, 2.0], [1.0, 2.0], "text", None, [1.0, 2.0, "x"],
                [0.123, -4.56, 7.89], [str(x) for x in G[7].tolist()], [None, 1.0, 2.0], [10 ** 400, 1, 2]):
        assert not rule.is_loss_gradient(G, bad), bad


def test_the_shortcut_for_a_samples_gradient_trusts_exactly_what_is_loss_gradient_trusts():
    """replay tries `_trusted` (one sample's gradient first) where is_loss_gradient is the rule: the same answers."""
    X, y = problem()
    theta, X, y = rule._array(rule.START), X.double().numpy(), y.double().reshape(-1).numpy()
    data, course = rule._Problem(X, y), rule._Problem(X[:4] * 1.3, y[:4])
    G, course_rows = rule._gradients(X, y, theta), rule._gradients(X[:4] * 1.3, y[:4], theta)
    zero = rule._Problem(X, X @ theta[:2] + theta[2])  # every row's gradient is 0
    cases = [G[7].tolist(), ((G[3] + G[11]) / 2).tolist(), G.mean(0).tolist(), (G[5] / 2).tolist(),
             course_rows[2].tolist(), [0.0, 0.0, 0.0], [float("nan"), 1.0, 2.0], [float("inf")] * 3, [1.0, 2.0],
             "text", None, [1.0, 2.0, "x"], [0.123, -4.56, 7.89], (G[2] * (1 + 5e-4)).tolist()]
    for where, reported in [(data, c) for c in cases] + [(zero, [0.0, 0.0, 0.0]), (zero, [1e-7, 0.0, 0.0])]:
        residuals = where.residuals(theta)
        every = where.gradients(residuals)
        matched = rule._matching_at(where, residuals, reported)
        assert (matched is None) == (rule._matching(every, reported) is None), reported
        shortcut = rule._trusted(where, residuals, reported, matched, course, theta)
        assert shortcut == rule.is_loss_gradient(every, reported, course_rows), reported


def test_matching_samples_names_each_steps_row():
    X, y = problem()
    trajectory, gradients, used = run(part1.SGD(lr=0.03), X, y, steps=8)
    assert rule.matching_samples(X.tolist(), y.tolist(), trajectory, gradients) == [rows[0] for rows in used]


@pytest.mark.parametrize("mistake, kind, kwargs", [
    ("no_bias_correction", "Adam", {"lr": 0.05, "beta1": 0.8, "beta2": 0.95, "epsilon": 0.3}),
    ("accumulator_from_zero", "AdaGrad", {"lr": 0.3, "epsilon": 0.5}),
])
def test_diagnose_names_an_update_rule_mistake_on_own_gradients(mistake, kind, kwargs):
    """The mistaken rule's run, on a two-sample gradient: replayed on its own gradients, the mistake is named."""
    X, y = problem()
    X64, y64 = X.double().numpy(), y.double().reshape(-1).numpy()
    G0 = rule._gradients(X64, y64, rule._array(rule.START))
    theta, state, trajectory, gradients = rule._array(rule.START), rule._state(kind, mistake), [], []
    torch.manual_seed(1)
    for _ in range(6):
        rows = torch.randint(0, ROWS, (2,)).numpy()
        g = rule._gradients(X64, y64, theta)[rows].mean(0)
        update, new = rule._candidates(kind, {**rule.DEFAULTS[kind], **kwargs}, theta, g[None], state, mistake)
        state = rule._keep(new, np.array([0]), np.array([0])) if new else state
        theta = theta - update[0, 0]
        gradients.append(g.tolist())
        trajectory.append(theta.tolist())
    assert G0.shape == (ROWS, 3)
    correct = rule.replay(kind, kwargs, X.tolist(), y.tolist(), trajectory, gradients=gradients, own_gradients=True)
    assert not correct.ok
    named = rule.diagnose(kind, kwargs, X.tolist(), y.tolist(), trajectory, correct, gradients, own_gradients=True)
    assert named == rule.MISTAKES[mistake][1]
