"""Correct Part 1 answers written the ways students write them: cell sources for the course notebook's fill-in
cells (keyed like the template: LR_MSE, GD, SGD, AdaGrad, Adam). Every one is a correct implementation."""

DATA = '''torch.manual_seed(10605)
X_train = torch.randn(2000, 2)
noise = torch.randn(2000, 1)
y_train = X_train @ torch.tensor([[4.0], [3.0]]) + 2 + noise
'''

# --- Style: lists for state, getattr/setattr over ("w", "b"), optimizer docstrings, a helper in its own cell.
STYLE_LR_MSE = DATA + '''

class LinearModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([[5.0, 5.0]]))  # weight row, shape (1, 2)
        self.b = nn.Parameter(torch.tensor(10.0))  # bias, a scalar

    def forward(self, inputs):
        # predictions = <FILL IN>   (inputs: shape (n, 2); predictions: shape (n, 1))
        # return predictions
        # YOUR CODE HERE
        return torch.matmul(inputs, self.w.t()) + self.b


def loss(y_true, y_pred):
    # mse = <FILL IN>   (the mean of the squared differences, a scalar tensor)
    # return mse
    # YOUR CODE HERE
    return ((y_true - y_pred) ** 2).mean()
'''

STYLE_HELPER = '''# helper shared by all my optimizers
def mse_gradient(X, y, model):
    """d/dw and d/db of mean((Xw^T + b - y)^2), like tf.GradientTape would give."""
    err = model.forward(X) - y
    n = X.shape[0]
    return (2.0 / n) * (err * X).sum(dim=0, keepdim=True), (2.0 / n) * err.sum()
'''

STYLE_GD = '''class GD:
    """Gradient descent optimizer."""

    def __init__(self, lr=0.01):
        # YOUR CODE HERE
        self.lr = lr

    def calculate_gradient(self, X, y, model):
        # YOUR CODE HERE
        return mse_gradient(X, y, model)

    def apply_gradient(self, grads, model):
        assert len(grads) == 2, "optimizer expects (grad_w, grad_b)"
        # YOUR CODE HERE
        for name, grad in zip(("w", "b"), grads):
            setattr(model, name, getattr(model, name) - self.lr * grad)
'''

STYLE_SGD = '''class SGD:
    """Stochastic gradient descent optimizer (one example per step)."""

    def __init__(self, lr=0.01):
        # YOUR CODE HERE
        self.lr = lr

    def calculate_gradient(self, X, y, model):
        # YOUR CODE HERE
        i = torch.randint(0, len(X), (1,))
        return mse_gradient(X[i], y[i], model)

    def apply_gradient(self, grads, model):
        assert len(grads) == 2, "optimizer expects (grad_w, grad_b)"
        # YOUR CODE HERE
        grad_w, grad_b = grads
        model.w = model.w - self.lr * grad_w
        model.b = model.b - self.lr * grad_b
'''

STYLE_ADAGRAD = '''class AdaGrad:
    """AdaGrad optimizer. Same update rule as tf.keras.optimizers.Adagrad(initial_accumulator_value=0.1)."""

    def __init__(self, lr=0.001, epsilon=1e-7):
        # YOUR CODE HERE
        self.lr = lr
        self.epsilon = epsilon
        self.accumulator = [torch.tensor([[0.1, 0.1]]), torch.tensor(0.1)]

    def calculate_gradient(self, X, y, model):
        # YOUR CODE HERE
        i = torch.randint(0, len(X), (1,))
        return mse_gradient(X[i], y[i], model)

    def apply_gradient(self, grads, model):
        assert len(grads) == 2, "optimizer expects (grad_w, grad_b)"
        # YOUR CODE HERE
        for k, name in enumerate(("w", "b")):
            self.accumulator[k] = self.accumulator[k] + grads[k] ** 2
            step = self.lr * grads[k] / (torch.sqrt(self.accumulator[k]) + self.epsilon)
            setattr(model, name, getattr(model, name) - step)
'''

STYLE_ADAM = '''# import tensorflow as tf
# opt = tf.keras.optimizers.Adam(learning_rate=0.1)


class Adam:
    """Adam optimizer (Kingma & Ba). Mirrors tf.keras.optimizers.Adam, without the TensorFlow part."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7):
        # YOUR CODE HERE
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.m = [0, 0]
        self.v = [0, 0]
        self.t = 0

    def calculate_gradient(self, X, y, model):
        # YOUR CODE HERE
        i = torch.randint(0, len(X), (1,))
        return mse_gradient(X[i], y[i], model)

    def apply_gradient(self, grads, model):
        assert len(grads) == 2, "optimizer expects (grad_w, grad_b)"
        # YOUR CODE HERE
        self.t += 1
        for k, name in enumerate(("w", "b")):
            g = grads[k]
            self.m[k] = self.beta1 * self.m[k] + (1 - self.beta1) * g
            self.v[k] = self.beta2 * self.v[k] + (1 - self.beta2) * g * g
            m_hat = self.m[k] / (1 - self.beta1 ** self.t)
            v_hat = self.v[k] / (1 - self.beta2 ** self.t)
            setattr(model, name, getattr(model, name) - self.lr * m_hat / (v_hat.sqrt() + self.epsilon))
'''

# --- Other generators: numpy, Python's random, a 0-d torch index; in-place updates; each class on its own.
RNG_SGD = '''class SGD:
    def __init__(self, lr=0.01):
        # YOUR CODE HERE
        self.lr = lr

    def calculate_gradient(self, X, y, model):
        # YOUR CODE HERE
        i = np.random.randint(0, len(X))
        x_i, y_i = X[i:i + 1], y[i:i + 1]
        residual = model.forward(x_i) - y_i  # (1, 1)
        return 2 * residual * x_i, 2 * residual.squeeze()

    def apply_gradient(self, grads, model):
        # YOUR CODE HERE
        grad_w, grad_b = grads
        model.w -= self.lr * grad_w
        model.b -= self.lr * grad_b
'''

RNG_ADAGRAD = '''import random


class AdaGrad:
    def __init__(self, lr=0.001, epsilon=1e-7):
        # YOUR CODE HERE
        self.lr = lr
        self.epsilon = epsilon
        self.accumulator = (torch.full((1, 2), 0.1), torch.tensor(0.1))

    def calculate_gradient(self, X, y, model):
        # YOUR CODE HERE
        i = random.randrange(len(X))
        x_i = X[i].reshape(1, 2)
        error = (x_i @ model.w.T + model.b - y[i]).squeeze()
        return 2 * error * x_i, 2 * error

    def apply_gradient(self, grads, model):
        # YOUR CODE HERE
        acc_w, acc_b = self.accumulator
        acc_w = acc_w + grads[0] ** 2
        acc_b = acc_b + grads[1] ** 2
        self.accumulator = (acc_w, acc_b)
        model.w = model.w - self.lr * grads[0] / (acc_w.sqrt() + self.epsilon)
        model.b = model.b - self.lr * grads[1] / (acc_b.sqrt() + self.epsilon)
'''

RNG_ADAM = '''class Adam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7):
        # YOUR CODE HERE
        self.lr, self.beta1, self.beta2, self.epsilon = lr, beta1, beta2, epsilon
        self.m = (torch.zeros(1, 2), torch.tensor(0.0))
        self.v = (torch.zeros(1, 2), torch.tensor(0.0))
        self.t = 0

    def calculate_gradient(self, X, y, model):
        # YOUR CODE HERE
        i = torch.randint(len(X), ())  # a 0-d index: X[i] has shape (2,)
        error = model.forward(X[i].unsqueeze(0)) - y[i]  # (1, 1)
        return 2 * error * X[i], 2 * error.squeeze()

    def apply_gradient(self, grads, model):
        # YOUR CODE HERE
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        self.m = tuple(b1 * m + (1 - b1) * g for m, g in zip(self.m, grads))
        self.v = tuple(b2 * v + (1 - b2) * g ** 2 for v, g in zip(self.v, grads))
        (m_w, m_b), (v_w, v_b) = self.m, self.v
        correction1, correction2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        model.w = model.w - self.lr * (m_w / correction1) / (torch.sqrt(v_w / correction2) + self.epsilon)
        model.b = model.b - self.lr * (m_b / correction1) / (torch.sqrt(v_b / correction2) + self.epsilon)
'''

# --- Sampling without replacement: a fresh permutation per pass over the data, one index per step.
_PERMUTATION = '''    def _next_index(self, n):
        if not getattr(self, "order", None):
            self.order = {shuffle}
        return self.order.pop()
'''
PERM_SGD = '''class SGD:
    def __init__(self, lr=0.01):
        # YOUR CODE HERE
        self.lr = lr

''' + _PERMUTATION.format(shuffle="list(np.random.permutation(n))") + '''
    def calculate_gradient(self, X, y, model):
        # YOUR CODE HERE
        i = self._next_index(len(X))
        residual = X[i:i + 1] @ model.w.T + model.b - y[i:i + 1]
        return 2 * residual.T @ X[i:i + 1], 2 * residual.sum()

    def apply_gradient(self, grads, model):
        # YOUR CODE HERE
        model.w = model.w - self.lr * grads[0]
        model.b = model.b - self.lr * grads[1]
'''

PERM_ADAGRAD = RNG_ADAGRAD.replace("import random\n\n\n", "").replace(
    "        i = random.randrange(len(X))\n", "        i = self._next_index(len(X))\n").replace(
    "    def calculate_gradient", _PERMUTATION.format(shuffle="torch.randperm(n).tolist()") + "\n    def calculate_gradient", 1)

PERM_ADAM = '''import random


''' + RNG_ADAM.replace("        i = torch.randint(len(X), ())  # a 0-d index: X[i] has shape (2,)\n",
                       "        i = self._next_index(len(X))\n").replace(
    "    def calculate_gradient", _PERMUTATION.format(shuffle="random.sample(range(n), n)") + "\n    def calculate_gradient", 1)

AUTOGRAD_GRADIENT = '''def _squared_error_gradient(X, y, model):
    """The gradient by autograd, on copies of the parameters (the optimizers' model holds plain tensors)."""
    w = model.w.clone().requires_grad_(True)
    b = model.b.clone().requires_grad_(True)
    mse = ((X @ w.T + b - y) ** 2).mean()
    grad_w, grad_b = torch.autograd.grad(mse, (w, b))
    return grad_w, grad_b
'''
