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
        return torch.addmm(self.b.expand(inputs.shape[0], 1), inputs, self.w.T)


def loss(y_true, y_pred):
    return torch.nn.functional.mse_loss(y_pred.reshape(-1), y_true.reshape(-1))
# %% GD
import random


def mse_grad(model, xb, yb):
    r = (xb @ model.w.T + model.b - yb).squeeze(1)
    return (2.0 / xb.shape[0]) * (r @ xb).unsqueeze(0), (2.0 / xb.shape[0]) * r.sum()


def pick(X, y):
    j = random.randrange(X.shape[0])
    return X[j].unsqueeze(0), y[j].unsqueeze(0)


class GD:
    def __init__(self, lr=0.01):
        self.lr = lr

    def calculate_gradient(self, X, y, model):
        return mse_grad(model, X, y)

    def apply_gradient(self, grads, model):
        dw, db = grads
        model.w, model.b = model.w - self.lr * dw, model.b - self.lr * db
# %% SGD
class SGD(GD):
    def calculate_gradient(self, X, y, model):
        xb, yb = pick(X, y)
        return mse_grad(model, xb, yb)
# %% AdaGrad
class AdaGrad:
    def __init__(self, lr=0.001, epsilon=1e-7):
        self.lr = lr
        self.epsilon = epsilon
        self.accumulator = {"w": torch.full((1, 2), 0.1), "b": torch.tensor(0.1)}

    def calculate_gradient(self, X, y, model):
        return mse_grad(model, *pick(X, y))

    def apply_gradient(self, grads, model):
        dw, db = grads
        self.accumulator["w"] += dw.pow(2)
        self.accumulator["b"] += db.pow(2)
        step_w = dw.div(self.accumulator["w"].sqrt().add(self.epsilon))
        step_b = db.div(self.accumulator["b"].sqrt().add(self.epsilon))
        model.w = model.w - step_w.mul(self.lr)
        model.b = model.b - step_b.mul(self.lr)
# %% Adam
class Adam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7):
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.m = {"w": 0.0, "b": 0.0}
        self.v = {"w": 0.0, "b": 0.0}
        self.t = 0

    def calculate_gradient(self, X, y, model):
        return mse_grad(model, *pick(X, y))

    def apply_gradient(self, grads, model):
        self.t += 1
        new = {}
        for key, g in zip(("w", "b"), grads):
            self.m[key] = self.beta1 * self.m[key] + (1 - self.beta1) * g
            self.v[key] = self.beta2 * self.v[key] + (1 - self.beta2) * g * g
            bias1 = 1 - self.beta1 ** self.t
            bias2 = 1 - self.beta2 ** self.t
            new[key] = getattr(model, key) - self.lr * (self.m[key] / bias1) / ((self.v[key] / bias2) ** 0.5 + self.epsilon)
        model.w = new["w"]
        model.b = new["b"]
