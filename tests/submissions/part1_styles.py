"""More correct Part 1 answers in the styles students write (issue 15), and one-mistake variants of them: cell
sources for the course notebook's fill-in cells (keyed like the template: SGD, AdaGrad, Adam), plus the cells
some of them add. Every CORRECT_* entry is a correct implementation; every MISTAKE_* entry has exactly one
mistake, named in its comment."""

NUM_EXAMPLES_CELL = "NUM_EXAMPLES = 2000  # rows of X_train\nprint(NUM_EXAMPLES, device)"


def _sgd(draw: str, helper: str = "") -> str:
    return helper + f'''class SGD(GD):
    """SGD optimizer: the GD step on one example."""

    def calculate_gradient(self, X, y, model):
        {draw}
        return _squared_error_gradient(X[i:i + 1], y[i:i + 1], model)
'''


# --- The notebook's globals: `device`, a constant NUM_EXAMPLES, a helper drawing the sample.
DEVICE_ADAGRAD = '''class AdaGrad:
    def __init__(self, lr=0.001, epsilon=1e-7):
        self.lr = lr
        self.epsilon = epsilon
        self.accumulator = (torch.full((1, 2), 0.1).to(device), torch.tensor(0.1).to(device))

    def calculate_gradient(self, X, y, model):
        return _squared_error_gradient(*_one_sample(X, y), model)

    def apply_gradient(self, grads, model):
        acc_w = self.accumulator[0] + grads[0].to(device) ** 2
        acc_b = self.accumulator[1] + grads[1].to(device) ** 2
        self.accumulator = (acc_w, acc_b)
        model.w = model.w - self.lr * grads[0] / (torch.sqrt(acc_w) + self.epsilon)
        model.b = model.b - self.lr * grads[1] / (torch.sqrt(acc_b) + self.epsilon)
'''

DEVICE_ADAM = '''class Adam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7):
        self.lr, self.beta1, self.beta2, self.epsilon = lr, beta1, beta2, epsilon
        self.m = (torch.zeros(1, 2).to(device), torch.zeros(()).to(device))
        self.v = (torch.zeros(1, 2).to(device), torch.zeros(()).to(device))
        self.t = 0

    def calculate_gradient(self, X, y, model):
        return _squared_error_gradient(*_one_sample(X, y), model)

    def apply_gradient(self, grads, model):
        self.t += 1
        self.m = tuple(self.beta1 * m + (1 - self.beta1) * g.to(device) for m, g in zip(self.m, grads))
        self.v = tuple(self.beta2 * v + (1 - self.beta2) * g.to(device) ** 2 for v, g in zip(self.v, grads))
        m_hat = [m / (1 - self.beta1 ** self.t) for m in self.m]
        v_hat = [v / (1 - self.beta2 ** self.t) for v in self.v]
        model.w = model.w - self.lr * m_hat[0] / (torch.sqrt(v_hat[0]) + self.epsilon)
        model.b = model.b - self.lr * m_hat[1] / (torch.sqrt(v_hat[1]) + self.epsilon)
'''

NUMPY_SGD = _sgd("i = np.random.randint(NUM_EXAMPLES)")
NUM_EXAMPLES_ADAGRAD = DEVICE_ADAGRAD.replace(
    "        return _squared_error_gradient(*_one_sample(X, y), model)",
    "        i = int(np.random.randint(NUM_EXAMPLES))\n"
    "        return _squared_error_gradient(X[i:i + 1], y[i:i + 1], model)")

# --- State in every container, created eagerly or at the first step.
FLOAT_TUPLE_ADAGRAD = '''class AdaGrad:
    def __init__(self, lr=0.001, epsilon=1e-7):
        self.lr = lr
        self.epsilon = epsilon
        self.accumulator = (0.1, 0.1)  # one start value for w, one for b

    def calculate_gradient(self, X, y, model):
        return _squared_error_gradient(*_one_sample(X, y), model)

    def apply_gradient(self, grads, model):
        grad_w, grad_b = grads
        acc_w, acc_b = self.accumulator
        self.accumulator = (acc_w + grad_w ** 2, acc_b + grad_b ** 2)
        model.w = model.w - self.lr * grad_w / (self.accumulator[0] ** 0.5 + self.epsilon)
        model.b = model.b - self.lr * grad_b / (self.accumulator[1] ** 0.5 + self.epsilon)
'''

SCALAR_TENSOR_TUPLE_ADAGRAD = FLOAT_TUPLE_ADAGRAD.replace(
    "self.accumulator = (0.1, 0.1)  # one start value for w, one for b",
    "self.accumulator = (torch.tensor(0.1), torch.tensor(0.1))")

DICT_ADAGRAD = '''class AdaGrad:
    def __init__(self, lr=0.001, epsilon=1e-7):
        self.lr = lr
        self.epsilon = epsilon
        self.accumulator = {"w": torch.full((1, 2), 0.1), "b": torch.tensor(0.1)}

    def calculate_gradient(self, X, y, model):
        return _squared_error_gradient(*_one_sample(X, y), model)

    def apply_gradient(self, grads, model):
        for name, grad in zip(("w", "b"), grads):
            self.accumulator[name] = self.accumulator[name] + grad * grad
            step = self.lr * grad / (self.accumulator[name].sqrt() + self.epsilon)
            setattr(model, name, getattr(model, name) - step)
'''

ONE_TENSOR_ADAGRAD = '''class AdaGrad:
    def __init__(self, lr=0.001, epsilon=1e-7):
        self.lr = lr
        self.epsilon = epsilon
        self.accumulator = torch.full((3,), 0.1)  # [w1, w2, b]

    def calculate_gradient(self, X, y, model):
        return _squared_error_gradient(*_one_sample(X, y), model)

    def apply_gradient(self, grads, model):
        g = torch.cat([grads[0].reshape(-1), grads[1].reshape(-1)])
        self.accumulator = self.accumulator + g ** 2
        step = self.lr * g / (torch.sqrt(self.accumulator) + self.epsilon)
        model.w = model.w - step[:2].reshape(1, 2)
        model.b = model.b - step[2]
'''

NUMPY_ADAGRAD = '''class AdaGrad:
    def __init__(self, lr=0.001, epsilon=1e-7):
        self.lr = lr
        self.epsilon = epsilon
        self.accumulator = np.full(3, 0.1)

    def calculate_gradient(self, X, y, model):
        return _squared_error_gradient(*_one_sample(X, y), model)

    def apply_gradient(self, grads, model):
        g = np.concatenate([grads[0].numpy().ravel(), grads[1].numpy().ravel()])
        self.accumulator += g ** 2
        step = torch.from_numpy(self.lr * g / (np.sqrt(self.accumulator) + self.epsilon)).float()
        model.w = model.w - step[:2].reshape(1, 2)
        model.b = model.b - step[2]
'''

LAZY_DICT_ADAM = '''class Adam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7):
        self.lr, self.beta1, self.beta2, self.epsilon = lr, beta1, beta2, epsilon
        self.m, self.v = None, None  # created at the first step, shaped like the gradients
        self.t = 0

    def calculate_gradient(self, X, y, model):
        return _squared_error_gradient(*_one_sample(X, y), model)

    def apply_gradient(self, grads, model):
        if self.m is None:
            self.m = {"w": torch.zeros_like(grads[0]), "b": torch.zeros_like(grads[1])}
            self.v = {"w": torch.zeros_like(grads[0]), "b": torch.zeros_like(grads[1])}
        self.t += 1
        for name, g in zip(("w", "b"), grads):
            self.m[name] = self.beta1 * self.m[name] + (1 - self.beta1) * g
            self.v[name] = self.beta2 * self.v[name] + (1 - self.beta2) * g ** 2
            m_hat = self.m[name] / (1 - self.beta1 ** self.t)
            v_hat = self.v[name] / (1 - self.beta2 ** self.t)
            setattr(model, name, getattr(model, name) - self.lr * m_hat / (v_hat.sqrt() + self.epsilon))
'''

NUMPY_ADAM = '''class Adam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7):
        self.lr, self.beta1, self.beta2, self.epsilon = lr, beta1, beta2, epsilon
        self.m = np.zeros(3)
        self.v = np.zeros(3)
        self.t = 0

    def calculate_gradient(self, X, y, model):
        return _squared_error_gradient(*_one_sample(X, y), model)

    def apply_gradient(self, grads, model):
        g = np.concatenate([grads[0].numpy().ravel(), grads[1].numpy().ravel()])
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * g
        self.v = self.beta2 * self.v + (1 - self.beta2) * g ** 2
        m_hat = self.m / (1 - self.beta1 ** self.t)
        v_hat = self.v / (1 - self.beta2 ** self.t)
        step = torch.tensor(self.lr * m_hat / (np.sqrt(v_hat) + self.epsilon), dtype=torch.float32)
        model.w = model.w - step[:2].reshape(1, 2)
        model.b = model.b - step[2]
'''

# --- model.b that becomes shape (1,) after the first update (the gradient of b kept as a 1-element tensor).
B_SHAPE_GD = '''def _squared_error_gradient(X, y, model):
    residual = model.forward(X) - y  # (n, 1)
    return 2 * residual.T @ X / len(X), 2 * residual.sum(0) / len(X)  # (1, 2) and (1,)


class GD:
    def __init__(self, lr=0.01):
        self.lr = lr

    def calculate_gradient(self, X, y, model):
        return _squared_error_gradient(X, y, model)

    def apply_gradient(self, grads, model):
        grad_w, grad_b = grads
        model.w = model.w - self.lr * grad_w
        model.b = model.b - self.lr * grad_b  # b: () then (1,)
'''

# --- A sampling helper of one's own, shared by SGD, AdaGrad and Adam (its own cell).
SHARED_HELPER = '''def random_example_gradient(X, y, model, count=1):
    """The optimizer's stochastic gradient: `count` examples drawn uniformly at random."""
    index = torch.randint(0, X.shape[0], (count,))
    return _squared_error_gradient(X[index], y[index], model)
'''
TWO_SAMPLE_HELPER = SHARED_HELPER.replace("count=1", "count=2")  # MISTAKE: two examples per step
HELPER_SGD = '''class SGD(GD):
    def calculate_gradient(self, X, y, model):
        return random_example_gradient(X, y, model)
'''
HELPER_DRAW = ("        return _squared_error_gradient(*_one_sample(X, y), model)",
               "        return random_example_gradient(X, y, model)")

# --- Gradients by autograd, and slow Python loops over samples and coordinates.
AUTOGRAD_DRAW = ("        return _squared_error_gradient(*_one_sample(X, y), model)",
                 "        i = torch.randint(0, len(X), (1,))\n"
                 "        w = model.w.detach().clone().requires_grad_(True)\n"
                 "        b = model.b.detach().clone().requires_grad_(True)\n"
                 "        mse = ((X[i] @ w.T + b - y[i]) ** 2).mean()\n"
                 "        mse.backward()\n"
                 "        return w.grad, b.grad")

LOOP_GD = '''class GD:
    """Gradient descent, written out with Python loops (slow, but correct)."""

    def __init__(self, lr=0.01):
        self.lr = lr

    def calculate_gradient(self, X, y, model):
        rows, targets = X.tolist(), y.reshape(-1).tolist()
        w1, w2 = model.w.reshape(-1).tolist()
        b = float(model.b)
        g1 = g2 = gb = 0.0
        for (x1, x2), target in zip(rows, targets):
            error = x1 * w1 + x2 * w2 + b - target
            g1 += 2 * error * x1
            g2 += 2 * error * x2
            gb += 2 * error
        n = len(rows)
        return torch.tensor([[g1 / n, g2 / n]]), torch.tensor(gb / n)

    def apply_gradient(self, grads, model):
        new_w = model.w.clone()
        for j in range(2):
            new_w[0, j] = model.w[0, j] - self.lr * grads[0][0, j]
        model.w = new_w
        model.b = model.b - self.lr * grads[1]
'''

# --- One mistake each, in one optimizer.
ADAGRAD_READS_X_TRAIN = ("        return _squared_error_gradient(*_one_sample(X, y), model)",
                         "        return _squared_error_gradient(*_one_sample(X_train, y_train), model)")
ADAGRAD_ABS_NOT_SQUARE = ("G_w, G_b = G_w + grad_w ** 2, G_b + grad_b ** 2",
                          "G_w, G_b = G_w + grad_w.abs(), G_b + grad_b.abs()")
ADAM_STATE_RESET = ("        self.t += 1\n",
                    "        self.t += 1\n        self.m = (torch.zeros(1, 2), torch.tensor(0.0))  # reset every step\n"
                    "        self.v = (torch.zeros(1, 2), torch.tensor(0.0))\n")
ADAGRAD_INIT_ERROR = ("        self.accumulator = (torch.full((1, 2), 0.1), torch.tensor(0.1))  # (G_w, G_b)",
                      "        self.accumulator = (torch.full((1, 2), 0.1), torch.tensor(0.1))  # (G_w, G_b)\n"
                      "        self.history = HISTORY_LENGTH  # a name the notebook never defines")
