"""Write the HW4 Part 1 corpus of wrong, faulty and adversarial submissions.

Each entry is the solution notebook or the student template with a small, named change. The notebooks are
committed (they are also the examples TAs grade with `./dev grade-examples`); tests/test_corpus.py checks
that they match this script and holds the hand-written expected outcome of each.

    python tests/submissions/make_corpus.py           # rewrite
    python tests/submissions/make_corpus.py --check   # exit 1 when a committed notebook is stale
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "hw4_part1"
SOLUTION = nbformat.read(ROOT / "solution/notebooks/hw4_part1.ipynb", as_version=4)
TEMPLATE = nbformat.read(ROOT / "student_template/hw4_part1.ipynb", as_version=4)


def patched(base, *edits):
    """Copy of `base` with (cell id, old text, new text) replacements; each old text must be present."""
    notebook = copy.deepcopy(base)
    cells = {cell.id: cell for cell in notebook.cells}
    for cell_id, old, new in edits:
        if old not in cells[cell_id].source:
            raise ValueError(f"{old!r} is not in cell {cell_id}")
        cells[cell_id].source = cells[cell_id].source.replace(old, new)
    return notebook


def with_cell(base, source, after="adam"):
    """Copy of `base` with a new code cell after cell `after` (None: at the top)."""
    notebook = copy.deepcopy(base)
    index = 0 if after is None else [c.id for c in notebook.cells].index(after) + 1
    notebook.cells.insert(index, nbformat.v4.new_code_cell(source, id=f"added-{index}"))
    return notebook


def without_cells(base, predicate):
    notebook = copy.deepcopy(base)
    notebook.cells = [c for c in notebook.cells if not predicate(c)]
    return notebook


ADAM_STEP = "(torch.sqrt(v_hat[{0}]) + self.epsilon)"
ADAGRAD_STEP = "(torch.sqrt(G_{0}) + self.epsilon)"
AUTOGRAD_GRADIENT = '''def _squared_error_gradient(X, y, model):
    w = model.w.clone().requires_grad_(True)
    b = model.b.clone().requires_grad_(True)
    loss_value = ((X @ w.T + b - y) ** 2).mean()
    return torch.autograd.grad(loss_value, (w, b))
'''
BACKGROUND_REWRITER = '''import os, time, json
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        while True:  # a detached process that keeps planting a perfect score
            for path in ("/autograder/results/results.json", "/tmp/ag_attack_marker"):
                try:
                    with open(path, "w") as f:
                        json.dump({"score": 100, "tests": []}, f)
                except OSError:
                    pass
            time.sleep(0.2)
    os._exit(0)
'''
READ_REFERENCE = '''import os, sys, glob
root = os.path.dirname(os.path.dirname(os.path.dirname(sys.executable)))
for pattern in ("/autograder/source/solution/*.py", root + "/solution/*.py", root + "/autograder/assignments/*/*",
                "/autograder/source/autograder/assignments/*/*"):
    for path in glob.glob(pattern):
        try:
            print(path, open(path).read()[:2000])
        except OSError as error:
            print(path, error)
'''

WRONG = {  # honest mistakes, on the solution
    "adam_no_bias_correction": patched(SOLUTION, ("adam", "m / (1 - self.beta1 ** self.t)", "m"),
                                       ("adam", "v / (1 - self.beta2 ** self.t)", "v")),
    "adam_t_not_incremented": patched(SOLUTION, ("adam", "        self.t += 1\n", "")),
    "adam_eps_inside_sqrt": patched(SOLUTION, *[("adam", ADAM_STEP.format(i), f"torch.sqrt(v_hat[{i}] + self.epsilon)")
                                                for i in (0, 1)]),
    "adagrad_eps_inside_sqrt": patched(SOLUTION, *[("adagrad", ADAGRAD_STEP.format(p), f"torch.sqrt(G_{p} + self.epsilon)")
                                                   for p in "wb"]),
    "adagrad_accumulator_zero": patched(SOLUTION, ("adagrad", "torch.full((1, 2), 0.1), torch.tensor(0.1)",
                                                   "torch.zeros(1, 2), torch.tensor(0.0)")),
    "sgd_full_batch": patched(SOLUTION, ("sgd", "_squared_error_gradient(*_one_sample(X, y), model)",
                                         "_squared_error_gradient(X, y, model)")),
    "gd_missing_factor_2": patched(SOLUTION, ("gd", "        return _squared_error_gradient(X, y, model)",
                                              "        grad_w, grad_b = _squared_error_gradient(X, y, model)\n"
                                              "        return grad_w / 2, grad_b / 2")),
    "loss_sum_reduction": patched(SOLUTION, ("model-torch", "torch.mean((y_true - y_pred) ** 2)",
                                             "torch.sum((y_true - y_pred) ** 2)")),
    "b_not_updated": patched(SOLUTION, ("gd", "\n        model.b = model.b - self.lr * grad_b", "")),
    "correct_autograd_gradients": patched(SOLUTION, ("gd", SOLUTION.cells[[c.id for c in SOLUTION.cells].index("gd")]
                                                     .source.split("\n\n\nclass GD")[0] + "\n", AUTOGRAD_GRADIENT)),
}

FAULTY = {  # broken files and notebooks, and attacks on the grader
    "fault_syntax_error_adam": patched(SOLUTION, ("adam", "def apply_gradient(self, grads, model):",
                                                  "def apply_gradient(self, grads, model)")),
    "fault_missing_adagrad": without_cells(SOLUTION, lambda c: c.id == "adagrad"),
    "fault_deleted_check_cells": without_cells(SOLUTION, lambda c: c.id.startswith("check-")),
    "fault_duplicated_check_cell": None,  # built below
    "fault_cells_reversed": None,  # built below
    "attack_os_exit": with_cell(SOLUTION, "import os\nos._exit(0)"),
    "attack_sys_exit": with_cell(SOLUTION, "import sys\nsys.exit()", after="gd"),
    "attack_keyboard_interrupt": with_cell(SOLUTION, "raise KeyboardInterrupt", after="sgd"),
    "attack_systemexit_in_adam": patched(SOLUTION, ("adam", "        self.t += 1\n", "        raise SystemExit\n")),
    "attack_infinite_loop": with_cell(SOLUTION, "while True:\n    pass"),
    "attack_uninterruptible_loop": with_cell(SOLUTION, "import time\nwhile True:\n    try:\n        time.sleep(0.1)\n"
                                                       "    except BaseException:\n        pass"),
    "attack_fork_bomb": with_cell(TEMPLATE, "import os\nwhile True:\n    os.fork()", after="imports"),
    "attack_memory_hog": with_cell(TEMPLATE, "chunks = []\nwhile True:\n    chunks.append(bytearray(1 << 30))",
                                   after="imports"),
    "attack_print_50mb": with_cell(SOLUTION, "for _ in range(50):\n    print('x' * 1_000_000)"),
    "attack_read_reference": with_cell(TEMPLATE, READ_REFERENCE, after="imports"),
    "attack_write_results": with_cell(TEMPLATE, "import os, json\nfor path in ('/autograder/results/results.json', "
                                      "'results.json', '../results.json'):\n    try:\n        os.makedirs(os.path.dirname"
                                      "(path) or '.', exist_ok=True)\n        json.dump({'score': 100}, open(path, 'w'))\n"
                                      "    except OSError as error:\n        print(error)", after="imports"),
    "attack_background_rewriter": with_cell(TEMPLATE, BACKGROUND_REWRITER, after="imports"),
    "attack_monkeypatch_isclose": with_cell(TEMPLATE, "import math, numpy\ntorch.allclose = lambda *a, **k: True\n"
                                            "numpy.allclose = lambda *a, **k: True\nmath.isclose = lambda *a, **k: True\n"
                                            "torch.Tensor.item = lambda self: 0.9611", after="imports"),
    "attack_replace_torch_adam": with_cell(SOLUTION, "torch.optim.Adam = Adam", after="check-2d"),
    "attack_wrap_torch_optim": patched(SOLUTION, ("adam", "    def apply_gradient(self, grads, model):\n",
                                                  "    def apply_gradient(self, grads, model):\n"
                                                  "        return self._delegate(grads, model)\n\n"
                                                  "    def _delegate(self, grads, model):\n"
                                                  "        w = model.w.clone().requires_grad_(True)\n"
                                                  "        b = model.b.clone().requires_grad_(True)\n"
                                                  "        opt = torch.optim.Adam([w, b], lr=self.lr, eps=self.epsilon)\n"
                                                  "        w.grad, b.grad = grads[0].clone(), grads[1].clone()\n"
                                                  "        opt.step()\n"
                                                  "        model.w, model.b = w.detach(), b.detach()\n")),
    "attack_wrap_torch_optim_obfuscated": patched(SOLUTION, ("gd", "        model.w = model.w - self.lr * grad_w\n",
                                                             "        mod = getattr(__import__('tor' + 'ch'), 'op' + 'tim')\n"
                                                             "        w = model.w.clone().requires_grad_(True)\n"
                                                             "        step = mod.SGD([w], lr=self.lr)\n"
                                                             "        w.grad = grad_w.clone()\n"
                                                             "        step.step()\n"
                                                             "        model.w = w.detach()\n")),
    "attack_wrap_torch_optim_alias": with_cell(
        patched(SOLUTION, ("gd", "        model.w = model.w - self.lr * grad_w\n",
                           "        w = model.w.clone().requires_grad_(True)\n"
                           "        impl = HELPERS['S' + 'GD']([w], lr=self.lr)\n"
                           "        w.grad = grad_w.clone()\n"
                           "        impl.step()\n"
                           "        model.w = w.detach()\n")),
        "HELPERS = vars(getattr(torch, ''.join(['o', 'p', 't', 'i', 'm'])))", after="imports"),
    "attack_network": with_cell(TEMPLATE, "import socket\nsocket.create_connection(('1.1.1.1', 443), timeout=3)",
                                after="imports"),
}
duplicated = copy.deepcopy(SOLUTION)
duplicated.cells.append(copy.deepcopy(duplicated.cells[-1]))  # same id twice, as a copy-paste in Jupyter leaves it
FAULTY["fault_duplicated_check_cell"] = duplicated
reversed_solution = copy.deepcopy(SOLUTION)
reversed_solution.cells = reversed_solution.cells[::-1]
FAULTY["fault_cells_reversed"] = reversed_solution
NO_METADATA = {"cells": [{"cell_type": c.cell_type, "source": c.source} for c in SOLUTION.cells]}
NOT_JSON = "This is not a notebook.\n{'cells': oops\n"


def render() -> dict[Path, str]:
    # json, not nbformat.writes: nbformat would "correct" the duplicated cell id with a random one
    files = {OUT / f"{name}.ipynb": json.dumps(nb, indent=1, sort_keys=True) + "\n"
             for name, nb in {**WRONG, **FAULTY}.items()}
    files[OUT / "fault_no_metadata.ipynb"] = json.dumps(NO_METADATA, indent=1) + "\n"
    files[OUT / "fault_not_json.ipynb"] = NOT_JSON
    return files


def main(argv: list[str]) -> int:
    files = render()
    if "--check" in argv:
        stale = [p.name for p, text in files.items() if not p.exists() or p.read_text() != text]
        print("stale: " + ", ".join(stale) if stale else "corpus up to date")
        return 1 if stale else 0
    OUT.mkdir(exist_ok=True)
    for path, text in files.items():
        path.write_text(text)
    print(f"wrote {len(files)} notebooks to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
