# %% LinearModel
torch.manual_seed(10605)
X_train = torch.randn(2000, 2)
noise = torch.randn(2000, 1)
y_train = X_train @ torch.tensor([[4.0], [3.0]]) + 2 + noise


class LinearModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([[5.0, 5.0]]))
        self.b = nn.Parameter(torch.tensor(10.0))

    def forward(self, inputs):
        out = torch.matmul(inputs, self.w.t())
        out = out + self.b
        return out


def loss(y_true, y_pred):
    diff = y_pred - y_true
    return (diff * diff).mean()
# %% GD
class GD:
    def __init__(self, lr=0.01):
        self.lr = lr

    def calculate_gradient(self, X, y, model):
        n = X.shape[0]
        err = model.forward(X) - y
        gw = torch.zeros(1, 2)
        gb = torch.tensor(0.0)
        for k in range(n):
            gw += 2 * err[k, 0] * X[k]
            gb += 2 * err[k, 0]
        return gw / n, gb / n

    def apply_gradient(self, grads, model):
        model.w = model.w - self.lr * grads[0]
        model.b = model.b - self.lr * grads[1]
# %% SGD
class SGD:
    def __init__(self, lr=0.01):
        self.lr = lr

    def calculate_gradient(self, X, y, model):
        idx = np.random.randint(len(X))
        xs, ys = X[idx:idx + 1], y[idx:idx + 1]
        e = (model.forward(xs) - ys)[0, 0]
        return 2 * e * xs, 2 * e

    def apply_gradient(self, grads, model):
        for name, g in zip(["w", "b"], grads):
            setattr(model, name, getattr(model, name) - self.lr * g)
# %% AdaGrad
class AdaGrad:
    def __init__(self, lr=0.001, epsilon=1e-7):
        self.lr = lr
        self.epsilon = epsilon
        self.accumulator = [torch.ones(1, 2) * 0.1, torch.tensor(0.1)]

    def calculate_gradient(self, X, y, model):
        idx = np.random.randint(len(X))
        xs, ys = X[idx:idx + 1], y[idx:idx + 1]
        e = (model.forward(xs) - ys)[0, 0]
        return 2 * e * xs, 2 * e

    def apply_gradient(self, grads, model):
        params = [model.w, model.b]
        for j in range(2):
            self.accumulator[j] = self.accumulator[j] + grads[j] * grads[j]
            params[j] = params[j] - self.lr * grads[j] / (self.accumulator[j].sqrt() + self.epsilon)
        model.w, model.b = params
# %% Adam
class Adam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7):
        self.lr, self.beta1, self.beta2, self.epsilon = lr, beta1, beta2, epsilon
        self.m = [torch.zeros(1, 2), torch.zeros(())]
        self.v = [torch.zeros(1, 2), torch.zeros(())]
        self.t = 0

    def calculate_gradient(self, X, y, model):
        idx = np.random.randint(len(X))
        xs, ys = X[idx:idx + 1], y[idx:idx + 1]
        e = (model.forward(xs) - ys)[0, 0]
        return 2 * e * xs, 2 * e

    def apply_gradient(self, grads, model):
        self.t = self.t + 1
        params = [model.w, model.b]
        for j in range(2):
            self.m[j] = self.beta1 * self.m[j] + (1 - self.beta1) * grads[j]
            self.v[j] = self.beta2 * self.v[j] + (1 - self.beta2) * grads[j] ** 2
            corrected_m = self.m[j] / (1 - self.beta1 ** self.t)
            corrected_v = self.v[j] / (1 - self.beta2 ** self.t)
            params[j] = params[j] - self.lr * corrected_m / (torch.sqrt(corrected_v) + self.epsilon)
        model.w, model.b = params
