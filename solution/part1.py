"""HW4 Part 1 reference: the data recipe, the linear model, the loss and four hand-written optimizers.

The interface follows the course notebook exactly (see shared HW4_INTERFACE.md). Every optimizer has
`calculate_gradient(X, y, model) -> (grad_w, grad_b)` and `apply_gradient(grads, model)`; the one-sample
optimizers draw their sample index with `torch.randint(0, N, (1,))` from the global RNG, so that the
course protocol (seed 10605, one stream through SGD -> AdaGrad -> Adam) is reproduced draw for draw.
No torch.optim anywhere: tests/test_part1_oracle.py proves these equal torch.optim's trajectories.
"""

import torch
from torch import nn

__all__ = [
    "make_data", "TorchLinearModel", "loss", "LinearModel",
    "GD", "SGD", "AdaGrad", "Adam", "mse", "train_with_torch_adam",
]

DATA_SEED = 10605
TRUE_W = [[4.0], [3.0]]
TRUE_B = 2.0


def make_data(n: int = 2000, seed: int | None = DATA_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """The course's training set: y = X @ [[4], [3]] + 2 + noise, drawn from the *global* RNG.

    The global RNG is left where the course leaves it, so that SGD's draws continue the stream.
    `seed=None` draws from wherever the global RNG stands.
    """
    if seed is not None:
        torch.manual_seed(seed)
    X = torch.randn(n, 2)
    noise = torch.randn(n, 1)
    y = X @ torch.tensor(TRUE_W) + TRUE_B + noise
    return X, y


class TorchLinearModel(nn.Module):
    """(1b) The baseline model, an nn.Module (the notebook names it `LinearModel`)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([[5.0, 5.0]]))  # (1, 2)
        self.b = nn.Parameter(torch.tensor(10.0))  # scalar

    def forward(self, inputs):
        return inputs @ self.w.T + self.b  # (n, 1)


def loss(y_true, y_pred):
    """Mean squared error. A (1, 1) prediction broadcasts against a (1,) target."""
    return torch.mean((y_true - y_pred) ** 2)


def train_with_torch_adam(model, X, y, epochs=10, batch_size=32, lr=0.1):
    """(1c) Fit `model` with torch.optim.Adam on sequential mini-batches (no shuffle).

    Returns the loss of each epoch's last mini-batch.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    last_losses = []
    for _ in range(epochs):
        for start in range(0, len(X), batch_size):
            batch_loss = loss(y[start:start + batch_size], model(X[start:start + batch_size]))
            optimizer.zero_grad()
            batch_loss.backward()
            optimizer.step()
        last_losses.append(batch_loss.item())
    return last_losses


class LinearModel:
    """(2) The model the hand-written optimizers update: plain tensors, no autograd."""

    def __init__(self):
        self.w = torch.tensor([[5.0, 5.0]])  # (1, 2)
        self.b = torch.tensor(10.0)  # scalar

    def forward(self, X):
        return X @ self.w.T + self.b  # (n, 1)


def mse(X, y, model) -> float:
    """Training-set MSE of a plain LinearModel, as the notebook's checks compute it."""
    return loss(y, model.forward(X)).item()


def _squared_error_gradient(X, y, model):
    """Gradient of mean((X w^T + b - y)^2) over the rows of X: ((1, 2), scalar)."""
    residual = model.forward(X) - y  # (n, 1)
    grad_w = 2 * residual.T @ X / len(X)  # (1, 2)
    grad_b = 2 * residual.mean()  # scalar
    return grad_w, grad_b


def _one_sample(X, y):
    i = torch.randint(0, len(X), (1,))  # the course's draw; keeps the global stream in step
    return X[i], y[i]


class GD:
    """(2a) Full-batch gradient descent: theta <- theta - lr * grad L(theta)."""

    def __init__(self, lr=0.01):
        self.lr = lr

    def calculate_gradient(self, X, y, model):
        return _squared_error_gradient(X, y, model)

    def apply_gradient(self, grads, model):
        grad_w, grad_b = grads
        model.w = model.w - self.lr * grad_w
        model.b = model.b - self.lr * grad_b


class SGD(GD):
    """(2b) Stochastic gradient descent: the GD step on one sample drawn uniformly at random."""

    def calculate_gradient(self, X, y, model):
        return _squared_error_gradient(*_one_sample(X, y), model)


class AdaGrad:
    """(2c) AdaGrad (Duchi et al., 2011) on one sample per step.

    G <- G + g^2                          (G starts at 0.1, as torch's initial_accumulator_value)
    theta <- theta - lr * g / (sqrt(G) + eps)
    """

    def __init__(self, lr=0.001, epsilon=1e-7):
        self.lr = lr
        self.epsilon = epsilon
        self.accumulator = (torch.full((1, 2), 0.1), torch.tensor(0.1))  # (G_w, G_b)

    def calculate_gradient(self, X, y, model):
        return _squared_error_gradient(*_one_sample(X, y), model)

    def apply_gradient(self, grads, model):
        grad_w, grad_b = grads
        G_w, G_b = self.accumulator
        G_w, G_b = G_w + grad_w ** 2, G_b + grad_b ** 2
        self.accumulator = (G_w, G_b)
        model.w = model.w - self.lr * grad_w / (torch.sqrt(G_w) + self.epsilon)
        model.b = model.b - self.lr * grad_b / (torch.sqrt(G_b) + self.epsilon)


class Adam:
    """(2d) Adam (Kingma & Ba, 2015, Algorithm 1) on one sample per step.

    m <- beta1 m + (1 - beta1) g          m_hat = m / (1 - beta1^t)
    v <- beta2 v + (1 - beta2) g^2        v_hat = v / (1 - beta2^t)
    theta <- theta - lr * m_hat / (sqrt(v_hat) + eps)
    """

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7):
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.m = (torch.zeros(1, 2), torch.tensor(0.0))  # first moments (m_w, m_b)
        self.v = (torch.zeros(1, 2), torch.tensor(0.0))  # second moments (v_w, v_b)
        self.t = 0

    def calculate_gradient(self, X, y, model):
        return _squared_error_gradient(*_one_sample(X, y), model)

    def apply_gradient(self, grads, model):
        self.t += 1
        self.m = tuple(self.beta1 * m + (1 - self.beta1) * g for m, g in zip(self.m, grads))
        self.v = tuple(self.beta2 * v + (1 - self.beta2) * g ** 2 for v, g in zip(self.v, grads))
        m_hat = [m / (1 - self.beta1 ** self.t) for m in self.m]
        v_hat = [v / (1 - self.beta2 ** self.t) for v in self.v]
        model.w = model.w - self.lr * m_hat[0] / (torch.sqrt(v_hat[0]) + self.epsilon)
        model.b = model.b - self.lr * m_hat[1] / (torch.sqrt(v_hat[1]) + self.epsilon)
