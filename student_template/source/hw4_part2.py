# %% [markdown] id=title
# # Homework 4, Part 2: parameter-efficient fine-tuning with LoRA
#
# In this part you fine-tune BERT (`bert-base-uncased`) on SST-5, five-way sentiment classification of movie-review
# sentences, in three ways: all parameters (full fine-tuning), only the classification head (last layer), and
# LoRA, which freezes the pretrained weights and learns a low-rank update $W_0 + \frac{\alpha}{r} B A$ of chosen
# layers. You then compare accuracy, trainable parameters and speed.
#
# **How this notebook is graded.** The autograder does not run your training. It takes your `MyLoraConfig`,
# `MyLoraLayer`, `get_lora_model` and your last-layer cell, applies them to BERT-shaped models of its own, and checks
# parameter counts, initialisation, outputs, which parameters train, and the $\alpha / r$ scaling. So:
#
# * keep the names, constructor arguments and attribute names (`base_layer`, `lora_A`, `lora_B`) exactly as given;
# * write your code where it says `YOUR CODE HERE` and delete the `raise NotImplementedError` lines;
# * do not use `peft` (or another LoRA library) in your solution;
# * the `assert` cells are the public checks: if they pass here, you are on the right track.
#
# Training takes a while: use a GPU runtime. Every epoch prints its numbers, so you can watch progress.

# %% id=imports
import math
import statistics
import time
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from datasets import load_dataset
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import AutoTokenizer, BertForSequenceClassification

# %% [markdown] id=q-setup
# ## Setup
#
# The hyper-parameters of every experiment below. Do not change them: the expected numbers depend on them.

# %% id=setup
SEED = 1337
MODEL_NAME = "bert-base-uncased"
NUM_LABELS = 5
MAX_LENGTH = 128
BATCH_SIZE = 64
LEARNING_RATE = 1e-4
EPOCHS = 20
LORA_R = 16
LORA_ALPHA = 32
LORA_DROPOUT = 0.4

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
torch.manual_seed(SEED)
print("device:", device)

# %% [markdown] id=q-data
# ## The data
#
# SST-5 has 8,544 training, 1,101 validation and 2,210 test sentences, labelled 0 (very negative) to 4 (very
# positive). Every sentence is tokenised once, truncated and padded to 128 tokens.

# %% id=data
dataset = load_dataset("SetFit/sst5")
tokenizer = AutoTokenizer.from_pretrained(MODEL_NAME)


def tokenize(batch):
    return tokenizer(batch["text"], truncation=True, padding="max_length", max_length=MAX_LENGTH)


encoded = dataset.map(tokenize, batched=True)
encoded.set_format("torch", columns=["input_ids", "attention_mask", "label"])
train_loader = DataLoader(encoded["train"], batch_size=BATCH_SIZE, shuffle=True)
val_loader = DataLoader(encoded["validation"], batch_size=BATCH_SIZE)
test_loader = DataLoader(encoded["test"], batch_size=BATCH_SIZE)
print({split: len(encoded[split]) for split in encoded})

# %% [markdown] id=q-helpers
# ## Given helpers
#
# `get_model_params_info` counts parameters; `train_epoch` runs one epoch over the loader it is given;
# `evaluate` returns the loss, accuracy and weighted F1 on the loader it is given; `fit` trains for several epochs
# with Adam and records the history that the plots below need. Read them, but do not change them.

# %% id=helpers
def get_model_params_info(model):
    """(total parameters, trainable parameters, trainable share in percent)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable, 100.0 * trainable / total if total else 0.0


def load_model():
    return BertForSequenceClassification.from_pretrained(MODEL_NAME, num_labels=NUM_LABELS).to(device)


def train_epoch(model, data_loader, optimizer):
    """One pass over data_loader; returns the mean training loss per batch."""
    model.train()
    model_device = next(model.parameters()).device
    total_loss = 0.0
    for batch in tqdm(data_loader, leave=False):
        optimizer.zero_grad()
        outputs = model(input_ids=batch["input_ids"].to(model_device),
                        attention_mask=batch["attention_mask"].to(model_device),
                        labels=batch["label"].to(model_device))
        outputs.loss.backward()
        optimizer.step()
        total_loss += outputs.loss.item()
    return total_loss / len(data_loader)


def weighted_f1(preds, labels, num_classes=NUM_LABELS):
    """F1 of each class, averaged with the class sizes as weights."""
    score = 0.0
    for c in range(num_classes):
        tp = ((preds == c) & (labels == c)).sum().item()
        predicted, support = (preds == c).sum().item(), (labels == c).sum().item()
        if tp:  # no true positive: F1 = 0
            score += support * 2 * tp / (predicted + support)
    return score / len(labels)


@torch.no_grad()
def evaluate(model, data_loader):
    """Mean loss, accuracy and weighted F1 of model on data_loader."""
    model.eval()
    model_device = next(model.parameters()).device
    total_loss, preds, labels = 0.0, [], []
    for batch in data_loader:
        y = batch["label"].to(model_device)
        logits = model(input_ids=batch["input_ids"].to(model_device),
                       attention_mask=batch["attention_mask"].to(model_device)).logits
        total_loss += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        preds.append(logits.argmax(dim=1).cpu())
        labels.append(y.cpu())
    model.train()
    preds, labels = torch.cat(preds), torch.cat(labels)
    return {"loss": total_loss / len(labels), "accuracy": (preds == labels).float().mean().item(),
            "f1": weighted_f1(preds, labels)}


def fit(model, train_loader, val_loader, epochs=EPOCHS, lr=LEARNING_RATE):
    """Adam on the trainable parameters; returns the per-epoch history."""
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    history = {"train_loss": [], "val_loss": [], "val_accuracy": [], "val_f1": []}
    for epoch in range(1, epochs + 1):
        train_loss = train_epoch(model, train_loader, optimizer)
        val = evaluate(model, val_loader)
        history["train_loss"].append(train_loss)
        history["val_loss"].append(val["loss"])
        history["val_accuracy"].append(val["accuracy"])
        history["val_f1"].append(val["f1"])
        print(f"epoch {epoch:2d}: train loss {train_loss:.4f}, val loss {val['loss']:.4f}, "
              f"val accuracy {val['accuracy']:.4f}, val F1 {val['f1']:.4f}")
    return history


histories, params_info = {}, {}

# %% [markdown] id=q-full
# ## 1. Full fine-tuning
#
# Every parameter of BERT and of its new classification head is trained.

# %% id=full
torch.manual_seed(SEED)
model = load_model()
params_info["Full fine-tuning"] = get_model_params_info(model)
print("total %d, trainable %d (%.2f%%)" % params_info["Full fine-tuning"])
assert params_info["Full fine-tuning"][:2] == (109_486_085, 109_486_085)
histories["Full fine-tuning"] = fit(model, train_loader, val_loader)
del model

# %% [markdown] id=q-last-layer
# ## 2. Last-layer fine-tuning
#
# Now only the classification head `model.classifier` (a `Linear(768, 5)`) learns; the rest of BERT stays as it
# was pretrained. Complete the cell so that, on the global `model`, **only** the parameters of `model.classifier`
# have `requires_grad == True`.

# %% id=last-layer
torch.manual_seed(SEED)
model = load_model()
# BEGIN SOLUTION
# YOUR CODE HERE: freeze every parameter of `model` except those of `model.classifier`
raise NotImplementedError
# SOLUTION
for param in model.parameters():
    param.requires_grad = False
for param in model.classifier.parameters():
    param.requires_grad = True
# END SOLUTION

# %% id=check-last-layer
params_info["Last layer only"] = get_model_params_info(model)
print("total %d, trainable %d (%.4f%%)" % params_info["Last layer only"])
assert params_info["Last layer only"][:2] == (109_486_085, 3_845)
assert {name for name, p in model.named_parameters() if p.requires_grad} == {"classifier.weight", "classifier.bias"}
print("last-layer checks passed")

# %% id=last-layer-train
histories["Last layer only"] = fit(model, train_loader, val_loader)
del model

# %% [markdown] id=q-lora
# ## 3. LoRA
#
# LoRA keeps a pretrained linear layer $W_0$ frozen and adds a trainable low-rank path:
# $$h = W_0 x + \frac{\alpha}{r}\, B\, A\, \mathrm{dropout}(x), \qquad A \in \mathbb{R}^{r \times d_{in}},\;
# B \in \mathbb{R}^{d_{out} \times r}.$$
#
# * `MyLoraConfig(r, target_modules, lora_alpha, lora_dropout)` only holds the four hyper-parameters.
# * `MyLoraLayer(base_layer, r, lora_alpha, lora_dropout)` wraps an `nn.Linear` (kept as `self.base_layer` and
#   frozen). It owns `self.lora_A = nn.Linear(in_features, r, bias=False)` and
#   `self.lora_B = nn.Linear(r, out_features, bias=False)` and an `nn.Dropout(lora_dropout)` that acts on the input
#   of the LoRA path only. **B starts at exactly zero**, so that a fresh LoRA model computes exactly what the
#   pretrained model computes; A starts random (Kaiming-uniform, as `nn.Linear` does by default). The output is
#   `base_layer(x) + (lora_alpha / r) * lora_B(lora_A(dropout(x)))`.
# * `get_lora_model(model, lora_config)` replaces every module whose name ends with one of `target_modules`
#   (here BERT's attention `query` and `value` projections) by a `MyLoraLayer` wrapped around it (hint:
#   `model.named_modules()`, `model.get_submodule(...)` and `setattr` on the parent), then freezes every parameter
#   except the LoRA matrices and the classification head `classifier`, and returns the model.

# %% id=lora-config
# BEGIN SOLUTION solution.lora:_check_hparams, MyLoraConfig
class MyLoraConfig:
    def __init__(self, r, target_modules, lora_alpha, lora_dropout):
        # YOUR CODE HERE: keep the four values as attributes of the same names
        raise NotImplementedError
# END SOLUTION

# %% id=lora-layer
# BEGIN SOLUTION solution.lora:MyLoraLayer
class MyLoraLayer(nn.Module):
    def __init__(self, base_layer, r, lora_alpha, lora_dropout):
        super().__init__()
        self.base_layer = base_layer
        # YOUR CODE HERE: freeze base_layer; build self.lora_A and self.lora_B (B = 0), the dropout and the scaling
        raise NotImplementedError

    def forward(self, x):
        # YOUR CODE HERE: base_layer(x) + (lora_alpha / r) * lora_B(lora_A(dropout(x)))
        raise NotImplementedError
# END SOLUTION

# %% id=check-lora-layer
torch.manual_seed(0)
base = nn.Linear(8, 6)
layer = MyLoraLayer(base, 2, 4, 0.1)
assert layer.lora_A.weight.shape == (2, 8) and layer.lora_B.weight.shape == (6, 2)
assert layer.lora_A.bias is None and layer.lora_B.bias is None
assert torch.count_nonzero(layer.lora_B.weight) == 0, "B must start at exactly zero"
assert torch.isfinite(layer.lora_A.weight).all() and layer.lora_A.weight.abs().sum() > 0, "A must start random"
assert not any(p.requires_grad for p in layer.base_layer.parameters()), "the base layer must be frozen"
x = torch.randn(3, 8)
assert torch.equal(layer(x), base(x)), "a fresh LoRA layer must compute exactly what its base layer computes"
with torch.no_grad():
    layer.lora_B.weight.fill_(0.5)
layer.eval()
assert torch.allclose(layer(x), base(x) + (4 / 2) * x @ layer.lora_A.weight.T @ layer.lora_B.weight.T, atol=1e-6)
print("MyLoraLayer checks passed")

# %% id=get-lora-model
# BEGIN SOLUTION solution.lora:_matches, inject_lora, lora_layers, _unfreeze_named, get_lora_model
def get_lora_model(model, lora_config):
    # YOUR CODE HERE: wrap every target module in a MyLoraLayer, then freeze all but LoRA and the classifier
    raise NotImplementedError
# END SOLUTION

# %% id=lora-r16
torch.manual_seed(SEED)
model = load_model()
# BEGIN SOLUTION
# YOUR CODE HERE: the modules LoRA adapts, BERT's attention query and value projections (by their names)
lora_config = MyLoraConfig(r=LORA_R, target_modules=[...], lora_alpha=LORA_ALPHA, lora_dropout=LORA_DROPOUT)
# SOLUTION
lora_config = MyLoraConfig(r=LORA_R, target_modules=["query", "value"], lora_alpha=LORA_ALPHA, lora_dropout=LORA_DROPOUT)
# END SOLUTION
model = get_lora_model(model, lora_config)
params_info[f"LoRA r={LORA_R}"] = get_model_params_info(model)
print("total %d, trainable %d (%.4f%%)" % params_info[f"LoRA r={LORA_R}"])

# %% id=check-lora-model
assert params_info[f"LoRA r={LORA_R}"][:2] == (110_075_909, 593_669)
assert sum(isinstance(m, MyLoraLayer) for m in model.modules()) == 24
trainable = {name.rsplit(".", 2)[-2] for name, p in model.named_parameters() if p.requires_grad}
assert trainable == {"lora_A", "lora_B", "classifier"}, trainable
print("get_lora_model checks passed")

# %% id=lora-r16-train
histories[f"LoRA r={LORA_R}"] = fit(model, train_loader, val_loader)
del model

# %% [markdown] id=q-a
# ### (a) Trainable parameters
#
# One pie chart per method: trainable vs frozen parameters.

# %% id=plot-a
def percent_text(part, whole):
    """Two significant digits of the distance to 0 % or 100 %: 3,845 of 109,486,085 is 0.0035 %, not 0.00 %."""
    pct = 100 * part / whole
    gap = min(pct, 100 - pct)
    decimals = 0 if gap == 0 else max(0, 1 - math.floor(math.log10(gap)))
    return f"{pct:.{decimals}f} %"


fig, axes = plt.subplots(1, len(params_info), figsize=(5.2 * len(params_info), 4.6))
for ax, (name, (total, trainable, _)) in zip(axes, params_info.items()):
    wedges = [(n, kind, color) for n, kind, color in [(trainable, "trainable", "tab:orange"),
                                                      (total - trainable, "frozen", "tab:gray")] if n]
    # startangle puts the middle of the trainable wedge at 30 degrees, so its label stays clear of the title.
    ax.pie([n for n, _, _ in wedges], colors=[color for _, _, color in wedges],
           labels=[f"{kind}\n{n:,}\n{percent_text(n, total)}" for n, kind, _ in wedges],
           startangle=30 + 180 * trainable / total, counterclock=False)
    ax.set_title(f"{name}\n{total:,} parameters")
fig.suptitle("(a) Trainable vs total parameters")
plt.tight_layout()
plt.show()

# %% [markdown] id=q-bc
# ### (b) Training loss and (c) validation accuracy per epoch

# %% id=plot-bc
for key, title, ylabel in [("train_loss", "(b) training loss", "training loss (mean cross-entropy, nats)"),
                           ("val_accuracy", "(c) validation accuracy", "validation accuracy (fraction correct)")]:
    plt.figure(figsize=(6.5, 4.2))
    for name, history in histories.items():
        plt.plot(range(1, len(history[key]) + 1), history[key], marker="o", label=name)
    plt.gca().xaxis.set_major_locator(plt.MaxNLocator(integer=True, steps=[1, 2, 5, 10]))  # whole epochs only
    plt.xlabel("epoch")
    plt.ylabel(ylabel)
    plt.title(title)
    plt.grid(alpha=0.3)
    plt.legend()
    plt.tight_layout()
    plt.show()

# %% [markdown] id=q-d
# ### (d) Validation accuracy and weighted F1 after the last epoch

# %% id=plot-d
names = list(histories)
plt.figure(figsize=(6.5, 4.2))
for i, (key, label) in enumerate([("val_accuracy", "accuracy"), ("val_f1", "weighted F1")]):
    bars = plt.bar([j + (i - 0.5) * 0.38 for j in range(len(names))], [histories[n][key][-1] for n in names],
                   0.38, label=label)
    plt.bar_label(bars, fmt="%.3f")
plt.xticks(range(len(names)), names)
plt.xlabel("method")
plt.ylabel("validation score after the last epoch (0 to 1)")
plt.ylim(0, 1)
plt.legend()
plt.title("(d) validation scores after the last epoch")
plt.tight_layout()
plt.show()

# %% [markdown] id=q-f
# ### (f) The rank of the update
#
# Train LoRA with $r \in \{1, 16, 256\}$ (the same $\alpha$ and dropout) and report the **best** validation
# accuracy over the epochs of each run. The r = 16 run above is reused.

# %% id=rank-sweep
rank_histories = {LORA_R: histories[f"LoRA r={LORA_R}"]}
for r in [1, 256]:
    torch.manual_seed(SEED)
    model = get_lora_model(load_model(), MyLoraConfig(r, lora_config.target_modules, LORA_ALPHA, LORA_DROPOUT))
    print(f"r={r}: total %d, trainable %d (%.4f%%)" % get_model_params_info(model))
    rank_histories[r] = fit(model, train_loader, val_loader)
    del model
for r in sorted(rank_histories):
    accuracy = rank_histories[r]["val_accuracy"]
    best = max(range(len(accuracy)), key=accuracy.__getitem__)
    print(f"r = {r:3d}: best validation accuracy {accuracy[best]:.4f} (epoch {best + 1})")

# %% [markdown] id=q-h
# ### (h) Forward time: training and inference
#
# Time one forward pass on a batch of 64 validation sentences: full fine-tuning vs LoRA in training mode, then at
# inference the base model, LoRA as trained, and LoRA with $\frac{\alpha}{r} BA$ merged into $W_0$
# (`merge_and_unload` below folds the update into the base weight and puts the plain `nn.Linear` back).

# %% id=timing
def merge_and_unload(model, lora_alpha=LORA_ALPHA, r=LORA_R):
    for name, module in list(model.named_modules()):
        if isinstance(module, MyLoraLayer):
            with torch.no_grad():
                module.base_layer.weight += (lora_alpha / r) * module.lora_B.weight @ module.lora_A.weight
            parent_name, _, child_name = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child_name, module.base_layer)
    return model


def forward_ms(model, batch, training, repeats=20):
    model.train(training)
    times = []
    for i in range(repeats + 3):  # 3 untimed warm-up passes
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.enable_grad() if training else torch.no_grad():
            model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device))
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times[3:])


batch = next(iter(val_loader))
torch.manual_seed(SEED)
full_model = load_model()
lora_model = get_lora_model(load_model(), lora_config)
timings = {
    "training forward, full fine-tuning": forward_ms(full_model, batch, training=True),
    "training forward, LoRA": forward_ms(lora_model, batch, training=True),
    "inference, base model": forward_ms(full_model, batch, training=False),
    "inference, LoRA unmerged": forward_ms(lora_model, batch, training=False),
}
timings["inference, LoRA merged"] = forward_ms(merge_and_unload(lora_model), batch, training=False)
for name, ms in timings.items():
    print(f"{name:36s} {ms:8.2f} ms")
del full_model, lora_model

# %% id=plot-h
# One panel per setting ("training forward", "inference"): the part of each timing's name before the comma.
settings = {}
for name, ms in timings.items():
    setting, _, model_name = name.partition(", ")
    settings.setdefault(setting, {})[model_name] = ms
fig, axes = plt.subplots(1, len(settings), figsize=(5.5 * len(settings), 4.4))
for ax, (setting, times) in zip(axes, settings.items()):
    bars = ax.bar(range(len(times)), list(times.values()), 0.6,
                  color=["tab:blue", "tab:green", "tab:olive"][:len(times)])
    ax.bar_label(bars, [f"{ms:.1f} ms" for ms in times.values()])
    ax.set_xticks(range(len(times)), list(times))
    ax.set_ylim(0, 1.15 * max(times.values()))  # room for the labels
    ax.set_xlabel("model")
    ax.set_ylabel(f"median ms per forward pass, batch of {len(batch['input_ids'])}")
    ax.set_title(f"(h) {setting}")
plt.tight_layout()
plt.show()

# %% id=answer-h
# BEGIN SOLUTION
answer_h = """YOUR ANSWER HERE"""
# SOLUTION
answer_h = """In training, LoRA's forward pass is a little slower than full fine-tuning's: W0 stays frozen while A and
B change at every step, so the update cannot be folded into W0, and each adapted layer runs the extra low-rank
path x -> A -> B (and its dropout) next to W0 x. (The whole training step is still cheaper with LoRA, because no
weight gradients or Adam states are computed for the frozen matrices.) At inference the adapter is fixed, so
W = W0 + (alpha / r) B A can be computed once: the merged model has exactly the base architecture and runs as
fast as the base model, while unmerged LoRA keeps the extra cost."""
# END SOLUTION
print(answer_h)
