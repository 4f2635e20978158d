# %% notebook shape=course
# %% [markdown] id=title
# # Homework 4, Part 1: Building your own optimizers
#
# You fit a linear regression with two features twice: first with PyTorch's built-in Adam, then with four
# optimizers you write yourself — gradient descent (GD), stochastic gradient descent (SGD), AdaGrad and Adam.
#
# **What to do.** Fill in the five cells marked `# YOUR CODE HERE`: delete the `raise NotImplementedError()`
# line and write your code. The commented `<FILL IN>` lines show what each method is expected to compute. Every
# other cell is given: run it, but do not change it. The cells with `assert` statements are the public checks;
# if they pass, you are on the right track.
#
# **How it is graded.** The autograder calls your `LinearModel`, `loss`, `GD`, `SGD`, `AdaGrad` and `Adam`
# directly, one optimizer at a time, on data of its own, and compares every step with a reference
# implementation. So keep the names, constructor arguments and method signatures as given, and do not use
# `torch.optim` (or any other library optimizer) in (2a)–(2d): only tensor arithmetic. It is allowed in (1c).
#
# **Self-check.** The optional cell after each check runs the grader's own step-by-step check of that part on the
# course data, and says which step first breaks the update rule and the likely mistake; run it when an `assert`
# fails, too (any uniform way of drawing samples is correct, even where the asserts expect `torch.randint`'s).
# It needs the file `hw4_part1_selfcheck.py` from the homework's zip beside this notebook (in Colab: the Files
# panel, Upload, into `/content`); without it the cell only says so. It takes a few seconds and changes nothing.

# %% [markdown] id=q1
# ## 1. Linear regression with PyTorch

# %% [markdown] id=q1a
# ### (1a) Setup
#
# The libraries this notebook uses. Everything runs on the CPU in a few seconds.

# %% id=imports
import torch
import torch.nn as nn
import torch.optim as optim
import numpy as np

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
print("torch", torch.__version__, "| device:", device)

# %% [markdown] id=q1b
# ### (1b) The data, a baseline model and its loss
#
# The training set has 2,000 points with two features. The targets follow $y = 4x_1 + 3x_2 + 2 + \varepsilon$
# with standard normal noise $\varepsilon$. The first lines of the cell below draw it; leave them as they are,
# because the random seed fixes every random number the rest of the notebook draws, in order.
#
# `LinearModel` predicts $h(x) = x\,w^\top + b$ from a weight row $w$ of shape (1, 2) and a scalar bias $b$.
# Complete
#
# * `forward(self, inputs)`: for inputs of shape (n, 2), the predictions, of shape (n, 1);
# * `loss(y_true, y_pred)`: the **mean** squared error $\frac{1}{n}\sum_i (y_i - \hat y_i)^2$, a scalar tensor.

# %% id=LR_MSE grade_id=LR_MSE solution
torch.manual_seed(10605)
X_train = torch.randn(2000, 2)
noise = torch.randn(2000, 1)
y_train = X_train @ torch.tensor([[4.0], [3.0]]) + 2 + noise


# BEGIN SOLUTION solution.part1:TorchLinearModel as LinearModel
class LinearModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([[5.0, 5.0]]))  # weight row, shape (1, 2)
        self.b = nn.Parameter(torch.tensor(10.0))  # bias, a scalar

    def forward(self, inputs):
        # predictions = <FILL IN>   (inputs: shape (n, 2); predictions: shape (n, 1))
        # return predictions
        # YOUR CODE HERE
        raise NotImplementedError()
# END SOLUTION


# BEGIN SOLUTION solution.part1:loss
def loss(y_true, y_pred):
    # mse = <FILL IN>   (the mean of the squared differences, a scalar tensor)
    # return mse
    # YOUR CODE HERE
    raise NotImplementedError()
# END SOLUTION

# %% id=test_LR_MSE grade_id=test_LR_MSE points=5
model = LinearModel()
x = torch.tensor([[1.0, 2.0]])
assert model(x).item() == 25.0, "Wrong implementation of LinearModel.forward"
assert loss(model(x), torch.tensor([3.0])).item() == 484.0, "Wrong implementation of loss"
print("(1b) checks passed")

# %% id=selfcheck_LR_MSE
try:  # optional: the grader's own check of (1b) on the course data (see "Self-check" at the top)
    from hw4_part1_selfcheck import check
except ImportError:
    print("Self-check skipped: put hw4_part1_selfcheck.py (from the homework's zip) beside this notebook.")
else:
    check("1b")

# %% [markdown] id=q1c
# ### (1c) Training with a built-in optimizer
#
# Nothing to write here: run the cell. It trains a fresh `LinearModel` with PyTorch's own Adam
# (`lr=0.1`) for 10 epochs over mini-batches of 32 consecutive rows (no shuffling) and prints the loss of each
# epoch's last mini-batch. With a correct (1b) the first epoch ends near 8.9128 and the tenth near 0.9634, with
# $w \approx [4.16, 3.01]$ and $b \approx 2.00$ (the least-squares fit of this data is $w = [4.058, 2.980]$,
# $b = 2.002$). This is the only place where `torch.optim` belongs.

# %% id=torch_adam
model = LinearModel()
optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
batch_size = 32
for epoch in range(10):
    for start in range(0, len(X_train), batch_size):
        X_batch = X_train[start:start + batch_size]
        y_batch = y_train[start:start + batch_size]
        batch_loss = loss(y_batch, model(X_batch))
        optimizer.zero_grad()
        batch_loss.backward()
        optimizer.step()
    print(f"epoch {epoch + 1:2d}: loss {batch_loss.item():.4f}")
print("w:", model.w.data, "b:", model.b.data)

# %% [markdown] id=q2
# ## 2. Your own optimizers
#
# From here on the model is a plain Python object holding two tensors, `model.w` (shape (1, 2)) and `model.b`
# (a scalar); the evaluation cell after (2a) redefines `LinearModel` that way. Each optimizer is a class with
#
# * `__init__` with the hyper-parameters given (keep their names and defaults) and any state the method needs;
# * `calculate_gradient(self, X, y, model)`, which returns the tuple `(grad_w, grad_b)`: the gradient of the
#   mean squared error with respect to `w` (shape (1, 2)) and `b` (a scalar), **written out by hand** from the
#   formula, over the rows the method uses;
# * `apply_gradient(self, grads, model)`, which takes that tuple and updates `model.w` and `model.b`.
#
# For the squared error over rows $i = 1..n$ of `X`:
# $\nabla_w = \frac{2}{n}\sum_i (h(x_i) - y_i)\,x_i$ and $\nabla_b = \frac{2}{n}\sum_i (h(x_i) - y_i)$.
# Each optimizer is then run for 300 steps from a fresh `LinearModel()`; the cell after it prints the training
# loss every 20 steps, and the check after that compares the final training MSE with the expected value.

# %% [markdown] id=q2a
# ### (2a) Gradient descent (GD)
#
# Every step uses the whole training set: $\theta \leftarrow \theta - \eta\,\nabla_\theta$ for $\theta = w, b$,
# with learning rate $\eta$ = `lr`.

# %% id=GD grade_id=GD solution
# BEGIN SOLUTION solution.part1:_squared_error_gradient, GD
class GD:
    def __init__(self, lr=0.01):
        # self.lr = <FILL IN>
        # YOUR CODE HERE
        raise NotImplementedError()

    def calculate_gradient(self, X, y, model):
        # residual = <FILL IN>   (h(x_i) - y_i for every row of X, shape (n, 1))
        # grad_w = <FILL IN>     (shape (1, 2))
        # grad_b = <FILL IN>     (a scalar)
        # return grad_w, grad_b
        # YOUR CODE HERE
        raise NotImplementedError()

    def apply_gradient(self, grads, model):
        # grad_w, grad_b = grads
        # model.w = <FILL IN>
        # model.b = <FILL IN>
        # YOUR CODE HERE
        raise NotImplementedError()
# END SOLUTION

# %% id=GD_eval
class LinearModel:
    """The model the optimizers update: two plain tensors, no nn.Module."""

    def __init__(self):
        self.w = torch.tensor([[5.0, 5.0]])  # (1, 2)
        self.b = torch.tensor(10.0)  # scalar

    def forward(self, X):
        return X @ self.w.T + self.b  # (n, 1)


model = LinearModel()
optimizer = GD()
for step in range(300):
    grads = optimizer.calculate_gradient(X_train, y_train, model)
    optimizer.apply_gradient(grads, model)
    if step % 20 == 0:
        print(f"step {step:3d}: training loss {loss(y_train, model.forward(X_train)).item():.4f}")

# %% id=test_GD grade_id=test_GD points=5
gd_mse = loss(y_train, model.forward(X_train)).item()
print("GD: final training MSE", gd_mse)
assert abs(gd_mse - 0.9611) < 1e-3, "Wrong implementation of GD"

# %% id=selfcheck_GD
try:  # optional: the grader's own check of (2a) on the course data (see "Self-check" at the top)
    from hw4_part1_selfcheck import check
except ImportError:
    print("Self-check skipped: put hw4_part1_selfcheck.py (from the homework's zip) beside this notebook.")
else:
    check("2a")

# %% [markdown] id=q2b
# ### (2b) Stochastic gradient descent (SGD)
#
# The same update, but each step uses **one** training point chosen uniformly at random: draw one index per call
# of `calculate_gradient` and return the gradient at that point alone. The expected value in the check assumes
# the index `i = torch.randint(0, len(X), (1,))`, drawn once per call from PyTorch's global generator; any other
# uniform draw is a correct SGD too, but will land elsewhere in that check's tolerance.

# %% id=SGD grade_id=SGD solution
# BEGIN SOLUTION solution.part1:_one_sample, SGD
class SGD:
    def __init__(self, lr=0.01):
        # self.lr = <FILL IN>
        # YOUR CODE HERE
        raise NotImplementedError()

    def calculate_gradient(self, X, y, model):
        # i = <FILL IN>          (one random row index)
        # x_i, y_i = <FILL IN>   (that row of X and of y)
        # grad_w = <FILL IN>
        # grad_b = <FILL IN>
        # return grad_w, grad_b
        # YOUR CODE HERE
        raise NotImplementedError()

    def apply_gradient(self, grads, model):
        # model.w = <FILL IN>
        # model.b = <FILL IN>
        # YOUR CODE HERE
        raise NotImplementedError()
# END SOLUTION

# %% id=SGD_eval
model = LinearModel()
optimizer = SGD()
for step in range(300):
    grads = optimizer.calculate_gradient(X_train, y_train, model)
    optimizer.apply_gradient(grads, model)
    if step % 20 == 0:
        print(f"step {step:3d}: training loss {loss(y_train, model.forward(X_train)).item():.4f}")

# %% id=test_SGD grade_id=test_SGD points=5
sgd_mse = loss(y_train, model.forward(X_train)).item()
print("SGD: final training MSE", sgd_mse)
assert abs(sgd_mse - 0.9707) < 0.05, "Wrong implementation of SGD"

# %% id=selfcheck_SGD
try:  # optional: the grader's own check of (2b) on the course data (see "Self-check" at the top)
    from hw4_part1_selfcheck import check
except ImportError:
    print("Self-check skipped: put hw4_part1_selfcheck.py (from the homework's zip) beside this notebook.")
else:
    check("2b")

# %% [markdown] id=q2c
# ### (2c) AdaGrad
#
# AdaGrad scales each coordinate's step by the history of its gradients. It keeps
# `self.accumulator = (acc_w, acc_b)`, running sums of squared gradients with every entry **starting at 0.1**.
# Each step takes the gradient $g$ at one random training point (as in SGD), then, element-wise,
#
# $r \leftarrow r + g^2, \qquad \theta \leftarrow \theta - \eta\,\dfrac{g}{\sqrt{r} + \epsilon}.$

# %% id=AdaGrad grade_id=AdaGrad solution
# BEGIN SOLUTION solution.part1:AdaGrad
class AdaGrad:
    def __init__(self, lr=0.001, epsilon=1e-7):
        # self.lr = <FILL IN>
        # self.epsilon = <FILL IN>
        # self.accumulator = (<FILL IN>, <FILL IN>)   (for w and b, initial value 0.1)
        # YOUR CODE HERE
        raise NotImplementedError()

    def calculate_gradient(self, X, y, model):
        # one random training point, as in SGD
        # YOUR CODE HERE
        raise NotImplementedError()

    def apply_gradient(self, grads, model):
        # self.accumulator = (<FILL IN>, <FILL IN>)
        # model.w = <FILL IN>
        # model.b = <FILL IN>
        # YOUR CODE HERE
        raise NotImplementedError()
# END SOLUTION

# %% id=AdaGrad_eval
model = LinearModel()
optimizer = AdaGrad(lr=0.1)
for step in range(300):
    grads = optimizer.calculate_gradient(X_train, y_train, model)
    optimizer.apply_gradient(grads, model)
    if step % 20 == 0:
        print(f"step {step:3d}: training loss {loss(y_train, model.forward(X_train)).item():.4f}")

# %% id=test_AdaGrad grade_id=test_AdaGrad points=10
adagrad_mse = loss(y_train, model.forward(X_train)).item()
print("AdaGrad: final training MSE", adagrad_mse)
assert abs(adagrad_mse - 29.5416) < 0.05, "Wrong implementation of AdaGrad"

# %% id=selfcheck_AdaGrad
try:  # optional: the grader's own check of (2c) on the course data (see "Self-check" at the top)
    from hw4_part1_selfcheck import check
except ImportError:
    print("Self-check skipped: put hw4_part1_selfcheck.py (from the homework's zip) beside this notebook.")
else:
    check("2c")

# %% [markdown] id=q2d
# ### (2d) Adam
#
# Adam keeps running averages of the gradient, `self.m = (m_w, m_b)`, and of its square,
# `self.v = (v_w, v_b)`, both starting at 0, and a step counter `self.t` starting at 0. Each step takes the
# gradient $g$ at one random training point (as in SGD), then
#
# $t \leftarrow t + 1, \quad m \leftarrow \beta_1 m + (1 - \beta_1)\,g, \quad v \leftarrow \beta_2 v + (1 - \beta_2)\,g^2,$
#
# $\hat m = \dfrac{m}{1 - \beta_1^t}, \quad \hat v = \dfrac{v}{1 - \beta_2^t}, \quad
# \theta \leftarrow \theta - \eta\,\dfrac{\hat m}{\sqrt{\hat v} + \epsilon}.$
#
# The corrections $\hat m$, $\hat v$ undo the pull towards 0 of averages that start at 0.

# %% id=Adam grade_id=Adam solution
# BEGIN SOLUTION solution.part1:Adam
class Adam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-7):
        # self.lr = <FILL IN>
        # self.beta1 = <FILL IN>
        # self.beta2 = <FILL IN>
        # self.epsilon = <FILL IN>
        # self.m = (<FILL IN>, <FILL IN>)   (for w and b, initial value [0])
        # self.v = (<FILL IN>, <FILL IN>)   (for w and b, initial value [0])
        # self.t = <FILL IN>
        # YOUR CODE HERE
        raise NotImplementedError()

    def calculate_gradient(self, X, y, model):
        # one random training point, as in SGD
        # YOUR CODE HERE
        raise NotImplementedError()

    def apply_gradient(self, grads, model):
        # self.t = <FILL IN>
        # self.m = (<FILL IN>, <FILL IN>)
        # self.v = (<FILL IN>, <FILL IN>)
        # m_hat, v_hat = <FILL IN>
        # model.w = <FILL IN>
        # model.b = <FILL IN>
        # YOUR CODE HERE
        raise NotImplementedError()
# END SOLUTION

# %% id=Adam_eval
model = LinearModel()
optimizer = Adam(lr=0.1)
for step in range(300):
    grads = optimizer.calculate_gradient(X_train, y_train, model)
    optimizer.apply_gradient(grads, model)
    if step % 20 == 0:
        print(f"step {step:3d}: training loss {loss(y_train, model.forward(X_train)).item():.4f}")

# %% id=test_Adam grade_id=test_Adam points=15
adam_mse = loss(y_train, model.forward(X_train)).item()
print("Adam: final training MSE", adam_mse, "| w:", model.w)
assert abs(adam_mse - 1.0076) < 0.05, "Wrong implementation of Adam"
assert torch.allclose(model.w, torch.tensor([[4.1860504, 3.1284819]]), atol=0.05), "Wrong implementation of Adam"

# %% id=selfcheck_Adam
try:  # optional: the grader's own check of (2d) on the course data (see "Self-check" at the top)
    from hw4_part1_selfcheck import check
except ImportError:
    print("Self-check skipped: put hw4_part1_selfcheck.py (from the homework's zip) beside this notebook.")
else:
    check("2d")

# %% [markdown] id=submit
# ## Submitting
#
# Run the whole notebook once from the top (Runtime > Run all in Colab, Kernel > Restart & Run All in Jupyter)
# and check that every cell ran. Then download it (File > Download > Download .ipynb) and upload the `.ipynb`
# file to Gradescope. The autograder reports each part separately, with the likely mistake when a check fails.
