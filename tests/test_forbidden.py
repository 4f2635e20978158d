"""The static half of the no-torch.optim rule, on small notebooks (nothing here is executed)."""

import nbformat
import pytest

from autograder.assignments.hw4_part1.forbidden import findings
from autograder.notebook import load_notebook


def notebook_with(tmp_path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    return load_notebook(path)


CLEAN = "class Adam:\n    def apply_gradient(self, grads, model):\n        model.w = model.w - self.lr * grads[0]\n"


@pytest.mark.parametrize("setup, body", [
    ("", "torch.optim.Adam([model.w])"),
    ("from torch import optim", "optim.SGD([model.w], lr=1)"),
    ("import torch.optim as o", "o.Adam([model.w])"),
    ("from torch.optim import Adam as TorchAdam", "TorchAdam([model.w])"),
    ("O = torch.optim", "O.SGD([model.w], lr=1)"),
    ("", "getattr(torch, 'op' + 'tim')"),
    ("", "__import__('torch.optim')"),
    ("", "eval('torch.' + name)"),
])
def test_reaching_torch_optim_is_found(tmp_path, setup, body):
    source = f"class Adam:\n    def apply_gradient(self, grads, model):\n        {body}\n"
    assert findings(notebook_with(tmp_path, "import torch\n" + setup, source), "Adam")


def test_ordinary_code_and_a_torch_optim_training_loop_elsewhere_are_not_flagged(tmp_path):
    loop = "optimizer = torch.optim.Adam(model.parameters())\ngrads = optimizer.calculate_gradient(X, y, m)"
    notebook = notebook_with(tmp_path, "import torch", loop, CLEAN + "        self.optimizer_state = grads\n")
    assert findings(notebook, "Adam") == []
    assert findings(notebook, "NotThere") == []
