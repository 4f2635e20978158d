"""The hand-written optimizers equal torch.optim, step for step, on the same one-sample index stream."""

import pytest
import torch

from solution import GD, SGD, AdaGrad, Adam, LinearModel

STEPS = 300


@pytest.fixture(autouse=True)
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def make_problem(seed: int, n: int = 200):
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, generator=generator)
    y = X @ torch.tensor([[-1.5], [0.7]]) + 0.3 + 0.5 * torch.randn(n, 1, generator=generator)
    return X, y


def own_trajectory(optimizer, X, y, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    model = LinearModel()
    states = []
    for _ in range(STEPS):
        optimizer.apply_gradient(optimizer.calculate_gradient(X, y, model), model)
        states.append(torch.cat([model.w.flatten(), model.b.reshape(1)]))
    return torch.stack(states)


def torch_trajectory(make_optimizer, X, y, seed: int, full_batch: bool = False) -> torch.Tensor:
    torch.manual_seed(seed)
    w = torch.tensor([[5.0, 5.0]], requires_grad=True)
    b = torch.tensor(10.0, requires_grad=True)
    optimizer = make_optimizer([w, b])
    states = []
    for _ in range(STEPS):
        if full_batch:
            Xi, yi = X, y
        else:
            i = torch.randint(0, len(X), (1,))
            Xi, yi = X[i], y[i]
        loss = ((Xi @ w.T + b - yi) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        states.append(torch.cat([w.detach().flatten(), b.detach().reshape(1)]))
    return torch.stack(states)


def assert_same_trajectory(own: torch.Tensor, oracle: torch.Tensor) -> None:
    torch.testing.assert_close(own, oracle, rtol=1e-6, atol=1e-9)


CASES = [
    ("GD", lambda: GD(), lambda p: torch.optim.SGD(p, lr=0.01), True),
    ("GD lr=0.2", lambda: GD(lr=0.2), lambda p: torch.optim.SGD(p, lr=0.2), True),
    ("SGD", lambda: SGD(), lambda p: torch.optim.SGD(p, lr=0.01), False),
    ("SGD lr=0.05", lambda: SGD(lr=0.05), lambda p: torch.optim.SGD(p, lr=0.05), False),
    ("AdaGrad lr=0.1", lambda: AdaGrad(lr=0.1),
     lambda p: torch.optim.Adagrad(p, lr=0.1, initial_accumulator_value=0.1, eps=1e-7), False),
    ("AdaGrad lr=0.5 eps=0.3", lambda: AdaGrad(lr=0.5, epsilon=0.3),
     lambda p: torch.optim.Adagrad(p, lr=0.5, initial_accumulator_value=0.1, eps=0.3), False),
    ("Adam lr=0.1", lambda: Adam(lr=0.1), lambda p: torch.optim.Adam(p, lr=0.1, eps=1e-7), False),
    ("Adam defaults", lambda: Adam(), lambda p: torch.optim.Adam(p, lr=0.001, eps=1e-7), False),
    ("Adam betas=(0.5, 0.9) eps=0.1", lambda: Adam(lr=0.05, beta1=0.5, beta2=0.9, epsilon=0.1),
     lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.5, 0.9), eps=0.1), False),
]


@pytest.mark.parametrize("seed", [0, 7, 10605])
@pytest.mark.parametrize("name, make_own, make_oracle, full_batch", CASES, ids=[case[0] for case in CASES])
def test_trajectory_equals_torch_optim(name, make_own, make_oracle, full_batch, seed):
    X, y = make_problem(seed)
    assert_same_trajectory(own_trajectory(make_own(), X, y, seed), torch_trajectory(make_oracle, X, y, seed, full_batch))


class AdamWithoutBiasCorrection(Adam):
    def apply_gradient(self, grads, model):
        self.t += 1
        self.m = tuple(self.beta1 * m + (1 - self.beta1) * g for m, g in zip(self.m, grads))
        self.v = tuple(self.beta2 * v + (1 - self.beta2) * g ** 2 for v, g in zip(self.v, grads))
        model.w = model.w - self.lr * self.m[0] / (torch.sqrt(self.v[0]) + self.epsilon)
        model.b = model.b - self.lr * self.m[1] / (torch.sqrt(self.v[1]) + self.epsilon)


def test_the_comparison_catches_missing_bias_correction():
    X, y = make_problem(3)
    oracle = torch_trajectory(lambda p: torch.optim.Adam(p, lr=0.1, eps=1e-7), X, y, 3)
    with pytest.raises(AssertionError):
        assert_same_trajectory(own_trajectory(AdamWithoutBiasCorrection(lr=0.1), X, y, 3), oracle)


def test_sgd_draws_exactly_one_index_per_step():
    X, y = make_problem(1)
    torch.manual_seed(5)
    optimizer, model = SGD(), LinearModel()
    for _ in range(10):
        optimizer.calculate_gradient(X, y, model)
    after_own = torch.randint(0, 1000, (1,))
    torch.manual_seed(5)
    torch.randint(0, len(X), (10,))
    assert after_own.item() == torch.randint(0, 1000, (1,)).item()


def test_optimizer_state_starts_as_the_handout_says():
    adagrad, adam = AdaGrad(), Adam()
    assert all(torch.equal(acc, torch.full_like(acc, 0.1)) for acc in adagrad.accumulator)
    assert adam.t == 0 and all(float(m.abs().sum()) == 0 for m in adam.m + adam.v)
    assert (adam.lr, adam.beta1, adam.beta2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    assert (adagrad.lr, adagrad.epsilon, GD().lr, SGD().lr) == (0.001, 1e-7, 0.01, 0.01)
