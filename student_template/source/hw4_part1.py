# %% [markdown] id=title
# # Homework 4, Part 1: building your own optimizers
#
# In this part you fit a two-feature linear regression, first with PyTorch's built-in Adam and then with four
# optimizers that you write by hand: gradient descent, stochastic gradient descent, AdaGrad and Adam.
#
# **How this notebook is graded.** The autograder runs your notebook from top to bottom, then calls your
# `LinearModel`, `loss`, `GD`, `SGD`, `AdaGrad` and `Adam` on fresh data with its own random seeds and compares
# every step with a reference implementation. So:
#
# * keep the names, constructor arguments and method signatures exactly as given;
# * write your code where it says `YOUR CODE HERE` and delete the `raise NotImplementedError` lines;
# * your optimizers must not use `torch.optim` (or anything built on it) — only tensor arithmetic;
# * the `assert` cells are the public checks: if they pass here, you are on the right track.

# %% id=imports
import torch
from torch import nn

# %% [markdown] id=q1a
# ## 1a. The data
#
# The training set has 2,000 points with two features. The targets follow
# $y = 4x_1 + 3x_2 + 2 + \varepsilon$ with standard normal noise $\varepsilon$. Do not change this cell: the
# random seed fixes every random number drawn in the rest of the notebook, in order.

# %% id=data
torch.manual_seed(10605)
X_train = torch.randn(2000, 2)
noise = torch.randn(2000, 1)
y_train = X_train @ torch.tensor([[4.0], [3.0]]) + 2 + noise
print(X_train.shape, y_train.shape)

# %% [markdown] id=q1b
# ## 1b. A baseline model and its loss
#
# `LinearModel` predicts $h(x) = x\,w^\top + b$ with a weight row $w$ of shape (1, 2) and a scalar bias $b$.
# Complete `forward`, which receives a batch of inputs of shape (n, 2) and returns predictions of shape (n, 1),
# and `loss`, the **mean** squared error between targets and predictions.

# %% id=model-torch
# BEGIN SOLUTION solution.part1:TorchLinearModel as LinearModel
class LinearModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([[5.0, 5.0]]))  # (1, 2)
        self.b = nn.Parameter(torch.tensor(10.0))  # scalar

    def forward(self, inputs):
        # YOUR CODE HERE: predictions of shape (n, 1)
        raise NotImplementedError
# END SOLUTION


# BEGIN SOLUTION solution.part1:loss
def loss(y_true, y_pred):
    # YOUR CODE HERE: the mean squared error, a scalar tensor
    raise NotImplementedError
# END SOLUTION

# %% id=check-1b
model = LinearModel()
x = torch.tensor([[1.0, 2.0]])
assert model(x).item() == 25.0
assert loss(model(x), torch.tensor([3.0])).item() == 484.0
print("1b checks passed")

# %% [markdown] id=q1c
# ## 1c. Training with a built-in optimizer
#
# Train a fresh `LinearModel` with `torch.optim.Adam(model.parameters(), lr=0.1)` for 10 epochs over
# mini-batches of 32 consecutive rows of the training set (no shuffling). Return the loss of the **last**
# mini-batch of every epoch. This is the only place where `torch.optim` is allowed.

# %% id=train-torch-adam
# BEGIN SOLUTION solution.part1:train_with_torch_adam
def train_with_torch_adam(model, X, y, epochs=10, batch_size=32, lr=0.1):
    # YOUR CODE HERE: return a list with the last mini-batch loss of each epoch
    raise NotImplementedError
# END SOLUTION

# %% id=check-1c
adam_model = LinearModel()
epoch_losses = train_with_torch_adam(adam_model, X_train, y_train)
for epoch, value in enumerate(epoch_losses, 1):
    print(f"epoch {epoch:2d}: last mini-batch loss {value:.4f}")
assert abs(epoch_losses[0] - 8.9128) < 1e-3
assert abs(epoch_losses[1] - 1.2505) < 1e-3
assert abs(epoch_losses[-1] - 0.9634) < 1e-3
print("1c checks passed")

# %% [markdown] id=q2
# ## 2. Your own optimizers
#
# From here on the model is a plain Python object holding two tensors; the optimizers update them directly.
# Each optimizer has two methods:
#
# * `calculate_gradient(X, y, model)` returns `(grad_w, grad_b)`, the gradient of the mean squared error with
#   respect to `w` (shape (1, 2)) and `b` (a scalar), computed **by hand** from the formulas;
# * `apply_gradient(grads, model)` updates `model.w` and `model.b`.
#
# Every optimizer is evaluated the same way: 300 steps from a fresh `LinearModel()`.

# %% id=model-plain
class LinearModel:
    def __init__(self):
        self.w = torch.tensor([[5.0, 5.0]])  # (1, 2)
        self.b = torch.tensor(10.0)  # scalar

    def forward(self, X):
        return X @ self.w.T + self.b  # (n, 1)


def run_optimizer(optimizer, steps=300):
    model = LinearModel()
    for _ in range(steps):
        grads = optimizer.calculate_gradient(X_train, y_train, model)
        optimizer.apply_gradient(grads, model)
    return model


def training_mse(model):
    return loss(y_train, model.forward(X_train)).item()

# %% [markdown] id=q2a
# ### 2a. Gradient descent
#
# Use the whole training set for every step:
# $\nabla_w = \frac{2}{n}\sum_i (h(x_i) - y_i)\,x_i$, $\nabla_b = \frac{2}{n}\sum_i (h(x_i) - y_i)$, and
# $\theta \leftarrow \theta - \eta\,\nabla_\theta$.

# %% id=gd
# BEGIN SOLUTION solution.part1:_squared_error_gradient, GD
class GD:
    def __init__(self, lr=0.01):
        self.lr = lr

    def calculate_gradient(self, X, y, model):
        # YOUR CODE HERE: return (grad_w, grad_b) over all rows of X
        raise NotImplementedError

    def apply_gradient(self, grads, model):
        # YOUR CODE HERE: update model.w and model.b
        raise NotImplementedError
# END SOLUTION

# %% id=check-2a
gd_model = run_optimizer(GD())
print("GD training MSE:", training_mse(gd_model))
assert abs(training_mse(gd_model) - 0.9611) < 1e-3

# %% [markdown] id=q2b
# ### 2b. Stochastic gradient descent
#
# Each step uses **one** training point, chosen with `i = torch.randint(0, N, (1,))` where `N` is the number of
# rows of `X`. Draw exactly once per call of `calculate_gradient`, with exactly this call: the checks below and
# the autograder depend on the random stream.

# %% id=sgd
# BEGIN SOLUTION solution.part1:_one_sample, SGD
class SGD:
    def __init__(self, lr=0.01):
        self.lr = lr

    def calculate_gradient(self, X, y, model):
        # YOUR CODE HERE: draw one index with torch.randint(0, N, (1,)); return (grad_w, grad_b) at that point
        raise NotImplementedError

    def apply_gradient(self, grads, model):
        # YOUR CODE HERE
        raise NotImplementedError
# END SOLUTION

# %% id=check-2b
sgd_model = run_optimizer(SGD())
print("SGD training MSE:", training_mse(sgd_model))
assert abs(training_mse(sgd_model) - 0.9707) < 0.05

# %% [markdown] id=q2c
# ### 2c. AdaGrad
#
# AdaGrad keeps a running sum of squared gradients, `self.accumulator = (acc_w, acc_b)`, with every entry
# **starting at 0.1**. Each step (one random point, drawn as in SGD) does $r \leftarrow r + g^2$ and
# $\theta \leftarrow \theta - \eta\, g / (\sqrt{r} + \epsilon)$, element-wise.

# %% id=adagrad
# BEGIN SOLUTION solution.part1:AdaGrad
class AdaGrad:
    def __init__(self, lr=0.001, epsilon=1e-7):
        self.lr = lr
        self.epsilon = epsilon
        # YOUR CODE HERE: self.accumulator = (acc_w, acc_b), every entry 0.1
        raise NotImplementedError

    def calculate_gradient(self, X, y, model):
        # YOUR CODE HERE: one random point, as in SGD
        raise NotImplementedError

    def apply_gradient(self, grads, model):
        # YOUR CODE HERE
        raise NotImplementedError
# END SOLUTION

# %% id=check-2c
adagrad_model = run_optimizer(AdaGrad(lr=0.1))
print("AdaGrad training MSE:", training_mse(adagrad_model))
assert abs(training_mse(adagrad_model) - 29.5416) < 0.05

# %% [markdown] id=q2d
# ### 2d. Adam
#
# Adam keeps first and second moment estimates `self.m` and `self.v` (starting at 0) and a step counter
# `self.t` (starting at 0). Each step (one random point, drawn as in SGD):
# $t \leftarrow t + 1$, $m \leftarrow \beta_1 m + (1-\beta_1) g$, $v \leftarrow \beta_2 v + (1-\beta_2) g^2$,
# $\hat m = m / (1-\beta_1^t)$, $\hat v = v / (1-\beta_2^t)$ and
# $\theta \leftarrow \theta - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)$.

# %% id=adam
# BEGIN SOLUTION solution.part1:Adam
class Adam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7):
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        # YOUR CODE HERE: self.m, self.v and self.t
        raise NotImplementedError

    def calculate_gradient(self, X, y, model):
        # YOUR CODE HERE: one random point, as in SGD
        raise NotImplementedError

    def apply_gradient(self, grads, model):
        # YOUR CODE HERE
        raise NotImplementedError
# END SOLUTION

# %% id=check-2d
adam_model = run_optimizer(Adam(lr=0.1))
print("Adam training MSE:", training_mse(adam_model), "w:", adam_model.w)
assert abs(training_mse(adam_model) - 1.0076) < 0.05
assert torch.allclose(adam_model.w, torch.tensor([[4.1860504, 3.1284819]]), atol=0.05)
print("All public checks passed")
