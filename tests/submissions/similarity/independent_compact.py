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
        return (inputs * self.w).sum(dim=1, keepdim=True) + self.b


def loss(y_true, y_pred):
    return torch.sum(torch.square(y_true - y_pred)) / y_true.numel()
# %% GD
class GD:
    def __init__(self, lr=0.01):
        self.lr = lr

    def calculate_gradient(self, X, y, model):
        pred = X @ model.w.T + model.b
        d = 2 * (pred - y) / len(y)
        return (d * X).sum(0, keepdim=True), d.sum()

    def apply_gradient(self, grads, model):
        model.w -= self.lr * grads[0]
        model.b -= self.lr * grads[1]
# %% SGD
class SGD:
    def __init__(self, lr=0.01):
        self.lr = lr

    def calculate_gradient(self, X, y, model):
        i = torch.randperm(len(X))[0]
        d = 2 * (X[i] @ model.w[0] + model.b - y[i, 0])
        return d * X[i][None, :], d

    def apply_gradient(self, grads, model):
        model.w -= self.lr * grads[0]
        model.b -= self.lr * grads[1]
# %% AdaGrad
class AdaGrad(SGD):
    def __init__(self, lr=0.001, epsilon=1e-7):
        super().__init__(lr)
        self.epsilon = epsilon
        self.accumulator = (0.1 * torch.ones(1, 2), 0.1 * torch.ones(()))

    def apply_gradient(self, grads, model):
        self.accumulator = tuple(a + g ** 2 for a, g in zip(self.accumulator, grads))
        scale = [self.lr / (torch.sqrt(a) + self.epsilon) for a in self.accumulator]
        model.w -= scale[0] * grads[0]
        model.b -= scale[1] * grads[1]
# %% Adam
import math


class Adam(SGD):
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7):
        super().__init__(lr)
        self.beta1, self.beta2, self.epsilon, self.t = beta1, beta2, epsilon, 0
        self.m = (torch.zeros(1, 2), torch.zeros(()))
        self.v = (torch.zeros(1, 2), torch.zeros(()))

    def apply_gradient(self, grads, model):
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        self.m = tuple(b1 * m + (1 - b1) * g for m, g in zip(self.m, grads))
        self.v = tuple(b2 * v + (1 - b2) * g * g for v, g in zip(self.v, grads))
        lr_t = self.lr * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        eps_t = self.epsilon * math.sqrt(1 - b2 ** self.t)
        model.w -= lr_t * self.m[0] / (self.v[0].sqrt() + eps_t)
        model.b -= lr_t * self.m[1] / (self.v[1].sqrt() + eps_t)
