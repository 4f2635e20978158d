"""Write the HW4 Part 2 corpus: notebooks in the shape of the course's own `hw4_part2.ipynb` as students hand it
in (nbformat 4.0, no cell ids, Colab metadata, a first `!pip install` cell, the given `MyLoraConfig`, a
`unittest` cell, the config cell that also calls `get_lora_model`, the last-layer cell on the global `model`),
filled in the way a student would, then honest-but-wrong variants of it and attacks on the grader.

`student_correct` is the filled-in notebook; `course_template` is it unanswered (the course's placeholders);
every other entry is `student_correct` with one small, named change. Cells are found by their text (the course's
notebook has no ids). The notebooks are committed; tests/test_part2_grading.py checks they match this script and
holds the hand-written expected outcome of each.

    python tests/submissions/hw4_part2/make_corpus.py           # rewrite
    python tests/submissions/hw4_part2/make_corpus.py --check   # exit 1 when a committed notebook is stale
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent

PIP = "!pip install transformers datasets peft accelerate scikit-learn"
IMPORTS = '''import math
import time

import numpy as np
import torch
import torch.nn as nn
import matplotlib.pyplot as plt
from datasets import load_dataset
from sklearn.metrics import accuracy_score, f1_score
from torch.utils.data import DataLoader
from transformers import AutoTokenizer, BertForSequenceClassification

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
print(device)'''
DATA = '''dataset = load_dataset("SetFit/sst5")
tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased")

def tokenize(batch):
    return tokenizer(batch["text"], truncation=True, padding="max_length", max_length=128)

encoded = dataset.map(tokenize, batched=True)
encoded.set_format("torch", columns=["input_ids", "attention_mask", "label"])
train_loader = DataLoader(encoded["train"], batch_size=64, shuffle=True)
val_loader = DataLoader(encoded["validation"], batch_size=64)'''
HELPERS = '''def get_model_params_info(model):
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable, trainable / total


def train_one_epoch(model, loader, optimizer):
    model.train()
    losses = []
    for batch in loader:
        optimizer.zero_grad()
        out = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                    labels=batch["label"].to(device))
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    return sum(losses) / len(losses)


@torch.no_grad()
def evaluate(model, loader):
    model.eval()
    preds, labels = [], []
    for batch in loader:
        logits = model(input_ids=batch["input_ids"].to(device),
                       attention_mask=batch["attention_mask"].to(device)).logits
        preds += logits.argmax(-1).tolist()
        labels += batch["label"].tolist()
    return accuracy_score(labels, preds), f1_score(labels, preds, average="weighted")'''
LOAD = "model = BertForSequenceClassification.from_pretrained('bert-base-uncased', num_labels=5)"
TRAIN = '''torch.manual_seed(1337)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
history = []
for epoch in range(20):
    loss = train_one_epoch(model, train_loader, optimizer)
    acc, f1 = evaluate(model, val_loader)
    history.append((loss, acc, f1))
    print(f"epoch {epoch + 1}: loss {loss:.4f}, val accuracy {acc:.4f}, val F1 {f1:.4f}")'''
LAST_LAYER = '''# TODO: make only the classifier trainable
for param in model.parameters():
    param.requires_grad = False
for param in model.classifier.parameters():
    param.requires_grad = True
model = model.to(device)
print(get_model_params_info(model))'''
LAST_LAYER_TODO = '''# TODO: make only the classifier trainable

model = model.to(device)'''
CLASSES = '''class MyLoraConfig:
    def __init__(self, r, target_modules, lora_alpha, lora_dropout):
        self.r = r
        self.target_modules = target_modules
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout


class MyLoraLayer(nn.Module):
    def __init__(self, base_layer, r, lora_alpha, lora_dropout):
        super().__init__()
        self.base_layer = base_layer
        self.r = r
        self.lora_alpha = lora_alpha
        self.lora_A = nn.Linear(base_layer.in_features, r, bias=False)
        self.lora_A.weight.data = torch.randn(r, base_layer.in_features) / math.sqrt(r)
        self.lora_B = nn.Linear(r, base_layer.out_features, bias=False)
        nn.init.zeros_(self.lora_B.weight)
        self.lora_dropout = nn.Dropout(p=lora_dropout)

    def forward(self, x):
        return self.base_layer(x) + (self.lora_alpha / self.r) * self.lora_B(self.lora_A(self.lora_dropout(x)))'''
CLASSES_TODO = '''class MyLoraConfig:
    def __init__(self, r, target_modules, lora_alpha, lora_dropout):
        self.r = r
        self.target_modules = target_modules
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout


class MyLoraLayer(nn.Module):
    def __init__(self, base_layer, r, lora_alpha, lora_dropout):
        super().__init__()
        self.base_layer = ...  # TODO
        self.r = ...  # TODO
        self.lora_alpha = ...  # TODO
        self.lora_A = nn.Linear(..., ..., bias=False)  # TODO
        self.lora_B = nn.Linear(..., ..., bias=False)  # TODO
        self.lora_dropout = nn.Dropout(p=lora_dropout)

    def forward(self, x):
        # TODO
        pass'''
UNITTEST = '''import unittest


class TestMyLoraLayer(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(1337)
        self.layer = MyLoraLayer(nn.Linear(8, 6), r=2, lora_alpha=4, lora_dropout=0.1)

    def test_hyperparameters(self):
        self.assertEqual(self.layer.r, 2)
        self.assertEqual(self.layer.lora_alpha, 4)
        self.assertEqual(self.layer.lora_dropout.p, 0.1)

    def test_shapes(self):
        self.assertEqual(tuple(self.layer.lora_A.weight.shape), (2, 8))
        self.assertEqual(tuple(self.layer.lora_B.weight.shape), (6, 2))

    def test_b_starts_at_zero(self):
        self.assertEqual(int(torch.count_nonzero(self.layer.lora_B.weight)), 0)


unittest.main(argv=[""], exit=False)'''
REPLACE = '''    for name, module in list(model.named_modules()):
        if any(name.endswith(target) for target in lora_config.target_modules):
            parent_name, child_name = name.rsplit(".", 1)
            parent = model.get_submodule(parent_name)
            setattr(parent, child_name, MyLoraLayer(module, lora_config.r, lora_config.lora_alpha,
                                                    lora_config.lora_dropout))
'''
FREEZE = '''    # TODO: freeze every parameter except the LoRA matrices and the classifier
    for name, param in model.named_parameters():
        param.requires_grad = "lora_" in name or "classifier" in name
'''
GET_MODEL = f"def get_lora_model(model, lora_config):\n{REPLACE}{FREEZE}    return model"
GET_MODEL_TODO = (f"def get_lora_model(model, lora_config):\n{REPLACE}"
                  "    # TODO: freeze every parameter except the LoRA matrices and the classifier\n\n    return model")
CONFIG = '''lora_config = MyLoraConfig(r=16, target_modules=["query", "value"], lora_alpha=32, lora_dropout=0.4)
model = get_lora_model(model, lora_config)
model = model.to(device)
print(get_model_params_info(model))'''
CONFIG_TODO = '''lora_config = MyLoraConfig(r=16, target_modules=[...], lora_alpha=32, lora_dropout=0.4)  # TODO
model = get_lora_model(model, lora_config)
model = model.to(device)
print(get_model_params_info(model))'''
PLOT = '''losses = [h[0] for h in history]
plt.plot(range(1, len(losses) + 1), losses)
plt.xlabel("epoch")
plt.ylabel("training loss")
plt.show()'''


def _md(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def _code(text: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": text}


def course_notebook(classes: str, get_model: str, config: str, last_layer: str) -> dict:
    cells = [
        _md("# HW4 Part 2: Parameter-efficient fine-tuning with LoRA"), _code(PIP), _code(IMPORTS),
        _md("## Data: SST-5"), _code(DATA), _md("## Helpers"), _code(HELPERS),
        _md("## 1. Full fine-tuning"), _code(LOAD), _code(TRAIN),
        _md("## 2. Last-layer fine-tuning"), _code(LOAD), _code(last_layer), _code(TRAIN),
        _md("## 3. LoRA\nComplete `MyLoraLayer`; `MyLoraConfig` is given."), _code(classes), _code(UNITTEST),
        _md("Complete the freezing in `get_lora_model`."), _code(get_model),
        _md("Load the model and set the configuration."), _code(LOAD), _code(config), _code(TRAIN),
        _md("### (b) Training loss"), _code(PLOT),
    ]
    for index, cell in enumerate(cells):  # Colab's own ids live in the metadata, not in the cell
        cell["metadata"]["id"] = hashlib.sha1(f"{index}:{cell['source'][:40]}".encode()).hexdigest()[:12]
    return {
        "nbformat": 4, "nbformat_minor": 0, "cells": cells,
        "metadata": {"colab": {"provenance": [], "gpuType": "T4"}, "accelerator": "GPU",
                     "kernelspec": {"name": "python3", "display_name": "Python 3"},
                     "language_info": {"name": "python"}, "widgets": {"application/vnd.jupyter.widget-state+json": {}}},
    }


def patched(base: dict, *edits: tuple[str, str]) -> dict:
    """Copy of `base` with (old text, new text) replacements, each in the one code cell that holds it."""
    notebook = copy.deepcopy(base)
    for old, new in edits:
        holders = [c for c in notebook["cells"] if c["cell_type"] == "code" and old in c["source"]]
        if len(holders) != 1:
            raise ValueError(f"{old!r} is in {len(holders)} code cells, not one")
        holders[0]["source"] = holders[0]["source"].replace(old, new)
    return notebook


def with_cell(base: dict, source: str, after: str) -> dict:
    """Copy of `base` with a code cell inserted after the code cell that holds `after`."""
    notebook = copy.deepcopy(base)
    index = next(i for i, c in enumerate(notebook["cells"]) if c["cell_type"] == "code" and after in c["source"])
    notebook["cells"].insert(index + 1, _code(source))
    return notebook


CORRECT = course_notebook(CLASSES, GET_MODEL, CONFIG, LAST_LAYER)
TEMPLATE = course_notebook(CLASSES_TODO, GET_MODEL_TODO, CONFIG_TODO, LAST_LAYER_TODO)
SCALE = "(self.lora_alpha / self.r)"
FORWARD = "self.lora_B(self.lora_A(self.lora_dropout(x)))"
SHAPES = '''        self.lora_A = nn.Linear(base_layer.in_features, r, bias=False)
        self.lora_A.weight.data = torch.randn(r, base_layer.in_features) / math.sqrt(r)
        self.lora_B = nn.Linear(r, base_layer.out_features, bias=False)
'''
SWAPPED = '''        self.lora_A = nn.Linear(r, base_layer.out_features, bias=False)
        self.lora_A.weight.data = torch.randn(base_layer.out_features, r) / math.sqrt(r)
        self.lora_B = nn.Linear(base_layer.in_features, r, bias=False)
'''
TARGETS = 'target_modules=["query", "value"]'
# The student's own download inside the graded last-layer cell: the grader runs that cell with
# `from_pretrained` stubbed (and the sandbox has no network), so no test reaches the hub.
PRETRAINED = "model = BertForSequenceClassification.from_pretrained('bert-base-uncased', num_labels=5)\n"

WRONG = {  # honest mistakes, each on the filled-in notebook
    "b_random_init": patched(CORRECT, ("        nn.init.zeros_(self.lora_B.weight)\n", "")),
    "scale_r_over_alpha": patched(CORRECT, (SCALE, "(self.r / self.lora_alpha)")),
    "scale_alpha_only": patched(CORRECT, (SCALE, "self.lora_alpha")),
    "lora_on_key": patched(CORRECT, (TARGETS, 'target_modules=["key", "value"]')),
    "lora_only_query": patched(CORRECT, (TARGETS, 'target_modules=["query"]')),
    "config_not_literal": patched(CORRECT, (TARGETS, 'target_modules=[m for m in ("query", "value")]')),
    "base_not_frozen": patched(CORRECT, ('        param.requires_grad = "lora_" in name or "classifier" in name',
                                         '        if "lora_" in name or "classifier" in name:\n'
                                         '            param.requires_grad = True')),
    "classifier_frozen": patched(CORRECT, (' or "classifier" in name', "")),
    "dropout_on_base_path": patched(CORRECT, (f"        return self.base_layer(x) + {SCALE} * {FORWARD}",
                                              f"        x = self.lora_dropout(x)\n        return self.base_layer(x) + "
                                              f"{SCALE} * self.lora_B(self.lora_A(x))")),
    "no_dropout_on_lora": patched(CORRECT, (FORWARD, "self.lora_B(self.lora_A(x))")),
    "ab_swapped_shapes": patched(CORRECT, (SHAPES, SWAPPED), (FORWARD, "self.lora_A(self.lora_B(self.lora_dropout(x)))")),
    "lora_added_twice": patched(CORRECT, (REPLACE, REPLACE + REPLACE)),  # the given loop pasted twice
    "last_layer_encoder_only": patched(CORRECT, ("for param in model.parameters():\n    param.requires_grad = False",
                                                 "for param in model.bert.encoder.parameters():\n"
                                                 "    param.requires_grad = False")),
}
# Correct, but reads globals set by cells that do not run when grading: `device` and a LORA_DROPOUT default.
USES_GLOBALS = patched(
    with_cell(CORRECT, "LORA_DROPOUT = 0.4", after="print(device)"),
    ("def __init__(self, base_layer, r, lora_alpha, lora_dropout):\n        super().__init__()\n        self.base_layer",
     "def __init__(self, base_layer, r, lora_alpha, lora_dropout=LORA_DROPOUT):\n        super().__init__()\n"
     "        self.base_layer"),
    ("nn.Linear(r, base_layer.out_features, bias=False)", "nn.Linear(r, base_layer.out_features, bias=False).to(device)"))

ATTACKS = {  # a correct notebook that would download, hang or exit if its cells ran
    "attack_download": patched(CORRECT, ("# TODO: make only the classifier trainable\n",
                                         "# TODO: make only the classifier trainable\n" + PRETRAINED)),
    "attack_while_true": with_cell(CORRECT, "while True:\n    pass", after="print(device)"),
    # A class body runs when it is defined: this definition cell ends the process that defines it.
    "attack_os_exit_in_definition": patched(CORRECT, ("class MyLoraConfig:",
                                                      "class _Setup:\n    import os\n    os._exit(3)\n\n\n"
                                                      "class MyLoraConfig:")),
}
NOTEBOOKS = {"student_correct": CORRECT, "course_template": TEMPLATE, "uses_notebook_globals": USES_GLOBALS,
             **WRONG, **ATTACKS}


def render() -> dict[Path, str]:
    return {OUT / f"{name}.ipynb": json.dumps(nb, indent=1, sort_keys=True) + "\n" for name, nb in NOTEBOOKS.items()}


def main(argv: list[str]) -> int:
    files = render()
    stale_files = sorted(set(OUT.glob("*.ipynb")) - set(files))
    if "--check" in argv:
        stale = [p.name for p, text in files.items() if not p.exists() or p.read_text() != text]
        stale += [f"{p.name} (not generated)" for p in stale_files]
        print("stale: " + ", ".join(stale) if stale else "corpus up to date")
        return 1 if stale else 0
    for path in stale_files:
        path.unlink()
    for path, text in files.items():
        path.write_text(text)
    print(f"wrote {len(files)} notebooks to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
