"""Write the HW4 Part 2 corpus: a student-style correct notebook, honest-but-wrong LoRA variants of it, and
attacks on the grader.

`student_correct` is the template with its stubs filled in the way a student would (A drawn as the course
notebook does, randn / sqrt(r)); every other entry is it with one small, named change. The notebooks are
committed; tests/test_part2_grading.py checks they match this script and holds the hand-written expected
outcome of each.

    python tests/submissions/hw4_part2/make_corpus.py           # rewrite
    python tests/submissions/hw4_part2/make_corpus.py --check   # exit 1 when a committed notebook is stale
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[3]
OUT = Path(__file__).resolve().parent
TEMPLATE = nbformat.read(ROOT / "student_template/hw4_part2.ipynb", as_version=4)

CONFIG = '''class MyLoraConfig:
    def __init__(self, r, target_modules, lora_alpha, lora_dropout):
        self.r = r
        self.target_modules = target_modules
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
'''
LAYER = '''class MyLoraLayer(nn.Module):
    def __init__(self, base_layer, r, lora_alpha, lora_dropout):
        super().__init__()
        self.base_layer = base_layer
        for param in self.base_layer.parameters():
            param.requires_grad = False
        self.in_features, self.out_features = base_layer.in_features, base_layer.out_features
        self.lora_A = nn.Linear(self.in_features, r, bias=False)
        with torch.no_grad():
            self.lora_A.weight.copy_(torch.randn(r, self.in_features) / math.sqrt(r))
        self.lora_B = nn.Linear(r, self.out_features, bias=False)
        nn.init.zeros_(self.lora_B.weight)
        self.dropout = nn.Dropout(lora_dropout)
        self.scaling = lora_alpha / r

    def forward(self, x):
        return self.base_layer(x) + self.scaling * self.lora_B(self.lora_A(self.dropout(x)))
'''
WRAP = '''    targets = [name for name, _ in model.named_modules()
               if any(name.endswith(target) for target in lora_config.target_modules)]
    for name in targets:
        parent_name, _, child_name = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        lora_layer = MyLoraLayer(getattr(parent, child_name), lora_config.r, lora_config.lora_alpha,
                                 lora_config.lora_dropout)
        setattr(parent, child_name, lora_layer)
'''
GET_MODEL = f'''def get_lora_model(model, lora_config):
{WRAP}    for name, param in model.named_parameters():
        param.requires_grad = "lora_" in name or name.startswith("classifier")
    return model
'''
LAST_LAYER = '''torch.manual_seed(SEED)
model = load_model()
for param in model.parameters():
    param.requires_grad = False
for param in model.classifier.parameters():
    param.requires_grad = True
'''


def replaced(base, cells: dict[str, str]):
    """Copy of `base` whose cells with these ids get new sources."""
    notebook = copy.deepcopy(base)
    for cell in notebook.cells:
        if cell.id in cells:
            cell.source = cells[cell.id]
    return notebook


def patched(base, *edits):
    """Copy of `base` with (cell id, old text, new text) replacements; each old text must be present."""
    notebook = copy.deepcopy(base)
    cells = {cell.id: cell for cell in notebook.cells}
    for cell_id, old, new in edits:
        if old not in cells[cell_id].source:
            raise ValueError(f"{old!r} is not in cell {cell_id}")
        cells[cell_id].source = cells[cell_id].source.replace(old, new)
    return notebook


def with_cell(base, source: str, after: str):
    notebook = copy.deepcopy(base)
    index = [c.id for c in notebook.cells].index(after) + 1
    notebook.cells.insert(index, nbformat.v4.new_code_cell(source, id=f"added-{index}"))
    return notebook


CORRECT = replaced(TEMPLATE, {"lora-config": CONFIG, "lora-layer": LAYER, "get-lora-model": GET_MODEL,
                              "last-layer": LAST_LAYER})
SWAPPED_LAYER = ('''        self.lora_A = nn.Linear(self.in_features, r, bias=False)
        with torch.no_grad():
            self.lora_A.weight.copy_(torch.randn(r, self.in_features) / math.sqrt(r))
        self.lora_B = nn.Linear(r, self.out_features, bias=False)
''', '''        self.lora_A = nn.Linear(r, self.out_features, bias=False)
        with torch.no_grad():
            self.lora_A.weight.copy_(torch.randn(self.out_features, r) / math.sqrt(r))
        self.lora_B = nn.Linear(self.in_features, r, bias=False)
''')
FORWARD = "self.lora_B(self.lora_A(self.dropout(x)))"
# The student's own download, in the attack_download notebook: the grader must never run it. Only imports and
# definitions run, the last-layer probe stubs from_pretrained, and the sandbox has no network and HF_*_OFFLINE set,
# so no test reaches the hub (test_part2_grading checks the notebook is graded without it).
PRETRAINED = 'BertForSequenceClassification.from_pretrained("bert-base-uncased", num_labels=5)'

WRONG = {  # honest mistakes, each on the student-style correct notebook
    "b_random_init": patched(CORRECT, ("lora-layer", "        nn.init.zeros_(self.lora_B.weight)\n", "")),
    "scale_r_over_alpha": patched(CORRECT, ("lora-layer", "self.scaling = lora_alpha / r", "self.scaling = r / lora_alpha")),
    "scale_alpha_only": patched(CORRECT, ("lora-layer", "self.scaling = lora_alpha / r", "self.scaling = lora_alpha")),
    "lora_on_key": patched(CORRECT, ("get-lora-model", "if any(name.endswith(target) for target in lora_config.target_modules)",
                                     'if name.endswith("query") or name.endswith("key")')),
    "base_not_frozen": patched(CORRECT, ("get-lora-model",
                                         '        param.requires_grad = "lora_" in name or name.startswith("classifier")',
                                         '        if "lora_" in name or name.startswith("classifier"):\n'
                                         '            param.requires_grad = True')),
    "classifier_frozen": patched(CORRECT, ("get-lora-model", ' or name.startswith("classifier")', "")),
    "dropout_on_base_path": patched(CORRECT, ("lora-layer", f"        return self.base_layer(x) + self.scaling * {FORWARD}",
                                              "        x = self.dropout(x)\n        return self.base_layer(x) + "
                                              "self.scaling * self.lora_B(self.lora_A(x))")),
    "no_dropout_on_lora": patched(CORRECT, ("lora-layer", FORWARD, "self.lora_B(self.lora_A(x))")),
    "ab_swapped_shapes": patched(CORRECT, ("lora-layer", *SWAPPED_LAYER),
                                 ("lora-layer", FORWARD, "self.lora_A(self.lora_B(self.dropout(x)))")),
    "lora_added_twice": patched(CORRECT, ("get-lora-model", WRAP, WRAP + WRAP)),  # a loop pasted twice
    "last_layer_encoder_only": patched(CORRECT, ("last-layer", "for param in model.parameters():",
                                                 "for param in model.bert.encoder.parameters():")),
}
# Correct, but reads the setup cell's globals, which do not run when grading: defaults and `device`.
USES_GLOBALS = patched(
    CORRECT, ("lora-layer", "def __init__(self, base_layer, r, lora_alpha, lora_dropout):",
              "def __init__(self, base_layer, r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=LORA_DROPOUT):"),
    *[("lora-layer", f"self.{name} = nn.Linear({shape}, bias=False)", f"self.{name} = nn.Linear({shape}, bias=False).to(device)")
      for name, shape in (("lora_A", "self.in_features, r"), ("lora_B", "r, self.out_features"))])

ATTACKS = {  # a correct notebook that would download, hang or exit if its cells ran
    "attack_download": patched(with_cell(CORRECT, f"model = {PRETRAINED}\nprint(model)", after="imports"),
                               ("last-layer", "model = load_model()", f"model = {PRETRAINED}")),
    "attack_while_true": with_cell(CORRECT, "while True:\n    pass", after="imports"),
    # A class body runs when it is defined: this definition cell ends the kernel.
    "attack_os_exit_in_definition": patched(CORRECT, ("lora-config", "class MyLoraConfig:",
                                                      "class _Setup:\n    import os\n    os._exit(3)\n\n\n"
                                                      "class MyLoraConfig:")),
}
NOTEBOOKS = {"student_correct": CORRECT, "uses_notebook_globals": USES_GLOBALS, **WRONG, **ATTACKS}


def render() -> dict[Path, str]:
    return {OUT / f"{name}.ipynb": json.dumps(nb, indent=1, sort_keys=True) + "\n" for name, nb in NOTEBOOKS.items()}


def main(argv: list[str]) -> int:
    files = render()
    if "--check" in argv:
        stale = [p.name for p, text in files.items() if not p.exists() or p.read_text() != text]
        print("stale: " + ", ".join(stale) if stale else "corpus up to date")
        return 1 if stale else 0
    for path, text in files.items():
        path.write_text(text)
    print(f"wrote {len(files)} notebooks to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
