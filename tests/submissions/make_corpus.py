"""Write the HW4 Part 1 corpus: correct notebooks as students hand them in, one-mistake variants, broken files
and attacks, all in the course notebook's shape (nbformat 4.0, no cell ids, Colab and nbgrader metadata).

Every entry starts from the generated solution or template notebook. The expected outcome of each, reasoned
from the rubric, is in hw4_part1/EXPECTED.md; tests/test_corpus.py holds it as data.

    python tests/submissions/make_corpus.py           # rewrite
    python tests/submissions/make_corpus.py --check   # exit 1 when a committed file is stale
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.submissions import course_nb as nb  # noqa: E402
from tests.submissions import part1_attacks  # noqa: E402
from tests.submissions import part1_students as student  # noqa: E402
from tests.submissions import part1_styles as style  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "hw4_part1"
SOLUTION = nb.load(ROOT / "solution/notebooks/hw4_part1.ipynb")
TEMPLATE = nb.load(ROOT / "student_template/hw4_part1.ipynb")
STUB = {key: nb.text(nb.cell(TEMPLATE, key)) for key in ("LR_MSE", "GD", "SGD", "AdaGrad", "Adam")}
SYMLINK_TARGET = "../../../../solution/notebooks/hw4_part1.ipynb"  # from hw4_part1/attack_symlink_solution/

# Honest partial notebooks the attacks are built on (their scores are in EXPECTED.md).
PARTIAL_GD_SGD = nb.replaced(SOLUTION, AdaGrad=STUB["AdaGrad"], Adam=STUB["Adam"])  # 15
PARTIAL_ADAGRAD_STUB = nb.replaced(SOLUTION, AdaGrad=STUB["AdaGrad"])  # 30

PIP = "!pip install torch numpy"
SCRATCH = ("# scratch: checking shapes\nprint(X_train[:3], y_train[:3])\n"
           "print(GD().calculate_gradient(X_train[:4], y_train[:4], LinearModel()))")
DRIVE = ('try:\n    from google.colab import drive\n    drive.mount("/content/drive")\nexcept ImportError:\n'
         '    print("not running on Colab")')
PLOT = ("model = LinearModel()\nopt = Adam(lr=0.1)\nhistory = []\nfor step in range(100):\n"
        "    opt.apply_gradient(opt.calculate_gradient(X_train, y_train, model), model)\n"
        "    history.append(loss(y_train, model.forward(X_train)).item())\nplt.plot(history)\n"
        "plt.xlabel('step')\nplt.ylabel('training MSE')\n!echo done")


def handed_in(notebook: dict, name: str, colab_metadata: dict | None = None) -> dict:
    """As a student downloads it from Colab: a `!pip` cell, a scratch cell, outputs, Colab's notebook metadata."""
    notebook = nb.inserted(notebook, PIP, after="q1a", name=name)
    notebook = nb.inserted(notebook, SCRATCH, after="test_Adam", name=name)
    notebook = nb.record_outputs(notebook, name)
    if colab_metadata:
        notebook["metadata"]["colab"] = colab_metadata
    return notebook


def colab_leftovers() -> dict:
    notebook = nb.inserted(SOLUTION, DRIVE, after="title", name="leftovers")
    imports = nb.text(nb.cell(notebook, "imports"))
    notebook = nb.replaced(notebook, imports="%matplotlib inline\n" + imports + "\nimport matplotlib.pyplot as plt")
    notebook = nb.inserted(notebook, PLOT, after="test_Adam", name="leftovers")
    return handed_in(notebook, "leftovers", {"provenance": [{"file_id": "1aBcD3fGh1jKlMn0pQrStUvWxYz012345",
                                                              "timestamp": 1740000000000}],
                                             "toc_visible": True, "name": "hw4_part1.ipynb"})


CORRECT = {
    "course_correct": handed_in(SOLUTION, "correct"),
    "course_sgd_numpy_rng": handed_in(nb.replaced(SOLUTION, SGD=student.RNG_SGD, AdaGrad=student.RNG_ADAGRAD,
                                                  Adam=student.RNG_ADAM), "rng"),
    "course_permutation_sampling": handed_in(nb.replaced(SOLUTION, SGD=student.PERM_SGD, AdaGrad=student.PERM_ADAGRAD,
                                                         Adam=student.PERM_ADAM), "perm"),
    "course_style_variants": handed_in(nb.inserted(nb.replaced(
        SOLUTION, LR_MSE=student.STYLE_LR_MSE, GD=student.STYLE_GD, SGD=student.STYLE_SGD,
        AdaGrad=student.STYLE_ADAGRAD, Adam=student.STYLE_ADAM), student.STYLE_HELPER, after="q2a", name="style"),
        "style"),
    "course_autograd_gradients": handed_in(nb.patched(SOLUTION, ("GD", nb.text(nb.cell(SOLUTION, "GD")).split(
        "\n\n\nclass GD")[0] + "\n", student.AUTOGRAD_GRADIENT)), "autograd"),
    "course_colab_leftovers": colab_leftovers(),
    "partial_gd_sgd": PARTIAL_GD_SGD,
    "partial_adagrad_stub": PARTIAL_ADAGRAD_STUB,
}

def _with_helper(helper: str) -> dict:
    """SGD, AdaGrad and Adam all drawing through one helper of the student's, in a cell of its own."""
    notebook = nb.replaced(SOLUTION, SGD=nb.text(nb.cell(SOLUTION, "SGD")).split("\n\n\nclass SGD")[0]
                           + "\n\n\n" + style.HELPER_SGD)
    notebook = nb.patched(notebook, ("AdaGrad", *style.HELPER_DRAW), ("Adam", *style.HELPER_DRAW))
    return nb.inserted(notebook, helper, after="q2b", name="helper")


# Correct in the styles issue 15 names: the notebook's globals, state in any container, b's shape, autograd, loops.
CORRECT.update({
    "course_device_state": nb.replaced(SOLUTION, AdaGrad=style.DEVICE_ADAGRAD, Adam=style.DEVICE_ADAM),
    "course_num_examples": nb.inserted(nb.replaced(SOLUTION, SGD=nb.text(nb.cell(SOLUTION, "SGD")).split(
        "\n\n\nclass SGD")[0] + "\n\n\n" + style.NUMPY_SGD, AdaGrad=style.NUM_EXAMPLES_ADAGRAD),
        style.NUM_EXAMPLES_CELL, after="LR_MSE", name="constants"),
    "course_state_float_tuple": nb.replaced(SOLUTION, AdaGrad=style.FLOAT_TUPLE_ADAGRAD, Adam=style.LAZY_DICT_ADAM),
    "course_state_scalar_tensors": nb.replaced(SOLUTION, AdaGrad=style.SCALAR_TENSOR_TUPLE_ADAGRAD,
                                               Adam=style.NUMPY_ADAM),
    "course_state_dict": nb.replaced(SOLUTION, AdaGrad=style.DICT_ADAGRAD),
    "course_state_one_tensor": nb.replaced(SOLUTION, AdaGrad=style.ONE_TENSOR_ADAGRAD),
    "course_state_numpy": nb.replaced(SOLUTION, AdaGrad=style.NUMPY_ADAGRAD),
    "course_b_shape_changes": nb.replaced(SOLUTION, GD=style.B_SHAPE_GD),
    "course_shared_helper": _with_helper(style.SHARED_HELPER),
    "course_autograd_everywhere": nb.patched(SOLUTION, ("AdaGrad", *style.AUTOGRAD_DRAW), ("Adam", *style.AUTOGRAD_DRAW)),
    "course_slow_loops": nb.replaced(SOLUTION, GD=nb.text(nb.cell(SOLUTION, "GD")).split("\n\n\nclass GD")[0]
                                     + "\n\n\n" + style.LOOP_GD),
})

ADAM_STEP = "(torch.sqrt(v_hat[{0}]) + self.epsilon)"
ADAGRAD_STEP = "(torch.sqrt(G_{0}) + self.epsilon)"
SGD_DRAW = "_squared_error_gradient(*_one_sample(X, y), model)"
WRONG = {  # one honest mistake each, on the solution
    "adam_no_bias_correction": nb.patched(SOLUTION, ("Adam", "m / (1 - self.beta1 ** self.t)", "m"),
                                          ("Adam", "v / (1 - self.beta2 ** self.t)", "v")),
    "adam_eps_inside_sqrt": nb.patched(SOLUTION, *[("Adam", ADAM_STEP.format(i), f"torch.sqrt(v_hat[{i}] + self.epsilon)")
                                                   for i in (0, 1)]),
    "adam_t_not_incremented": nb.patched(SOLUTION, ("Adam", "        self.t += 1\n", "")),  # t stays 0: 0/0
    "adam_t_fixed_at_one": nb.patched(SOLUTION, ("Adam", "        self.t = 0\n", "        self.t = 1\n"),
                                      ("Adam", "        self.t += 1\n", "")),
    "adagrad_accumulator_zero": nb.patched(SOLUTION, ("AdaGrad", "torch.full((1, 2), 0.1), torch.tensor(0.1)",
                                                      "torch.zeros(1, 2), torch.tensor(0.0)")),
    "adagrad_eps_inside_sqrt": nb.patched(SOLUTION, *[("AdaGrad", ADAGRAD_STEP.format(p), f"torch.sqrt(G_{p} + self.epsilon)")
                                                      for p in "wb"]),
    "adagrad_no_sqrt": nb.patched(SOLUTION, *[("AdaGrad", ADAGRAD_STEP.format(p), f"(G_{p} + self.epsilon)")
                                              for p in "wb"]),
    "adagrad_b_not_updated": nb.patched(SOLUTION, ("AdaGrad", "\n        model.b = model.b - self.lr * grad_b / "
                                                   "(torch.sqrt(G_b) + self.epsilon)", "")),
    "gd_missing_factor_2": nb.patched(SOLUTION, ("GD", "        return _squared_error_gradient(X, y, model)",
                                                 "        grad_w, grad_b = _squared_error_gradient(X, y, model)\n"
                                                 "        return grad_w / 2, grad_b / 2")),
    "loss_sum_reduction": nb.patched(SOLUTION, ("LR_MSE", "torch.mean((y_true - y_pred) ** 2)",
                                                "torch.sum((y_true - y_pred) ** 2)")),
    "sgd_full_batch": nb.patched(SOLUTION, ("SGD", SGD_DRAW, "_squared_error_gradient(X, y, model)")),
    "sgd_two_samples": nb.patched(SOLUTION, ("SGD", "        return " + SGD_DRAW,
                                             "        i = torch.randint(0, len(X), (2,))  # two points per step\n"
                                             "        return _squared_error_gradient(X[i], y[i], model)")),
    # Issue 15: a slip in one place costs that place only.
    "shared_helper_two_samples": _with_helper(style.TWO_SAMPLE_HELPER),
    "adagrad_reads_X_train": nb.patched(SOLUTION, ("AdaGrad", *style.ADAGRAD_READS_X_TRAIN)),
    "adagrad_abs_not_square": nb.patched(SOLUTION, ("AdaGrad", *style.ADAGRAD_ABS_NOT_SQUARE)),
    "adam_state_reset_each_step": nb.patched(SOLUTION, ("Adam", *style.ADAM_STATE_RESET)),
    "adagrad_init_error": nb.patched(SOLUTION, ("AdaGrad", *style.ADAGRAD_INIT_ERROR)),
}


def _reversed(base: dict) -> dict:
    notebook = copy.deepcopy(base)
    notebook["cells"] = notebook["cells"][::-1]
    return notebook


def _duplicated_check(base: dict) -> dict:
    notebook = copy.deepcopy(base)  # a copy-pasted cell keeps its Colab id: two cells share one metadata.id
    position = nb.index(notebook, "test_Adam")
    notebook["cells"].insert(position + 1, copy.deepcopy(notebook["cells"][position]))
    return notebook


PART2_LOOKALIKE = nb.replaced(nb.without(SOLUTION, lambda c: nb.key(c) not in ("title", "imports", "LR_MSE")),
                              title="# Homework 4, Part 2: LoRA on BERT",
                              imports="import torch\nimport torch.nn as nn\n!pip install transformers datasets peft",
                              LR_MSE='''class MyLoraConfig:
    def __init__(self, r, target_modules, lora_alpha, lora_dropout):
        self.r, self.target_modules = r, target_modules
        self.lora_alpha, self.lora_dropout = lora_alpha, lora_dropout


class MyLoraLayer(nn.Module):
    def __init__(self, base_layer, r, lora_alpha, lora_dropout):
        super().__init__()
        self.base_layer = base_layer
        self.lora_A = nn.Linear(base_layer.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base_layer.out_features, bias=False)
        nn.init.zeros_(self.lora_B.weight)
        self.dropout = nn.Dropout(lora_dropout)
        self.scaling = lora_alpha / r

    def forward(self, x):
        return self.base_layer(x) + self.scaling * self.lora_B(self.lora_A(self.dropout(x)))


def get_lora_model(model, lora_config):
    return model
''')

FAULTY = {
    "fault_syntax_error_adam": nb.patched(SOLUTION, ("Adam", "    def apply_gradient(self, grads, model):",
                                                     "    def apply_gradient(self, grads, model)")),
    "fault_missing_adagrad": nb.without(SOLUTION, lambda c: nb.key(c) == "AdaGrad"),
    "fault_deleted_check_cells": nb.without(SOLUTION, lambda c: nb.key(c).startswith("test_")),
    "fault_duplicated_check_cell": _duplicated_check(SOLUTION),
    "fault_cells_reversed": _reversed(SOLUTION),
    "fault_part2_notebook": PART2_LOOKALIKE,
}


def saved_by_jupyter(base: dict) -> dict:
    """As Jupyter saves a notebook it opened: nbformat 4.5, a cell id on every cell (from Colab's, if valid)."""
    notebook = copy.deepcopy(base)
    notebook["nbformat_minor"] = 5
    for number, current in enumerate(notebook["cells"]):
        current["id"] = nb.key(current) if len(nb.key(current)) <= 64 else f"cell-{number}"
    return notebook


CORRECT["course_saved_by_jupyter"] = saved_by_jupyter(SOLUTION)
ATTACKS = part1_attacks.attacks(SOLUTION, PARTIAL_GD_SGD, PARTIAL_ADAGRAD_STUB, WRONG["adam_no_bias_correction"])
COLAB_STYLE = {name for name in CORRECT if name.startswith("course_") and name != "course_saved_by_jupyter"}
NO_METADATA = {"cells": [{"cell_type": c["cell_type"], "source": c["source"]} for c in SOLUTION["cells"]]}
NOT_JSON = "This is not a notebook.\n{'cells': oops\n"
# Folder submissions: Colab's name for a second download, and a link to the answer key beside a partial notebook.
DOWNLOAD_FOLDER = OUT / "course_correct_download"
SYMLINK_FOLDER = OUT / "attack_symlink_solution"


def render() -> dict[Path, str]:
    notebooks = {**CORRECT, **WRONG, **FAULTY, **ATTACKS}
    files = {OUT / f"{name}.ipynb": nb.dumps(notebook, "colab" if name in COLAB_STYLE else "jupyter")
             for name, notebook in notebooks.items()}
    files[OUT / "fault_no_metadata.ipynb"] = json.dumps(NO_METADATA, indent=1) + "\n"
    files[OUT / "fault_not_json.ipynb"] = NOT_JSON
    files[DOWNLOAD_FOLDER / "hw4_part1 (1).ipynb"] = files[OUT / "course_correct.ipynb"]
    files[SYMLINK_FOLDER / "hw4_part1.ipynb"] = files[OUT / "partial_gd_sgd.ipynb"]
    return files


def _symlink_is_current() -> bool:
    link = SYMLINK_FOLDER / "solution.ipynb"
    return link.is_symlink() and os.readlink(link) == SYMLINK_TARGET


def main(argv: list[str]) -> int:
    files = render()
    if "--check" in argv:
        stale = [str(p.relative_to(OUT)) for p, text in files.items() if not p.is_file() or p.read_text() != text]
        stale += [] if _symlink_is_current() else ["attack_symlink_solution/solution.ipynb"]
        expected = set(files) | {SYMLINK_FOLDER / "solution.ipynb"}
        stale += [str(p.relative_to(OUT)) + " (not generated)" for p in OUT.rglob("*.ipynb") if p not in expected]
        print("stale: " + ", ".join(sorted(stale)) if stale else "corpus up to date")
        return 1 if stale else 0
    for old in OUT.rglob("*.ipynb"):  # entries this script no longer makes
        if old not in files and old != SYMLINK_FOLDER / "solution.ipynb":
            old.unlink()
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    link = SYMLINK_FOLDER / "solution.ipynb"
    if not _symlink_is_current():
        link.unlink(missing_ok=True)
        link.symlink_to(SYMLINK_TARGET)
    print(f"wrote {len(files)} notebooks and 1 link to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
