"""Plain training functions: one epoch, evaluation, and the epoch loop of the course recipe.

The maths is the course's: Adam (lr 1e-4, no scheduler, no weight decay) on the mean cross-entropy of each batch,
BERT's own dropout on, a fresh shuffle every epoch. Speed comes from around the maths, not from changing it:
tensors already on the device, one host sync per epoch instead of per step, fused Adam on CUDA, bf16 autocast on
CUDA (weights and optimizer state stay fp32), and optionally torch.compile over a few static shapes.
"""

import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from solution.finetune.config import FinetuneConfig
from solution.finetune.data import IGNORE_INDEX, Batch, EncodedSplit, iter_batches

__all__ = ["make_optimizer", "train_one_epoch", "evaluate", "weighted_f1", "train"]


def make_optimizer(model: nn.Module, lr: float) -> torch.optim.Adam:
    """Adam over the trainable parameters only; the fused kernel on CUDA (same update, one launch)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    fused = all(p.is_cuda for p in params)
    return torch.optim.Adam(params, lr=lr, fused=True if fused else None)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _logits(model: nn.Module, batch: Batch, amp_dtype: torch.dtype | None) -> torch.Tensor:
    device = batch.input_ids.device
    amp = nullcontext() if amp_dtype is None else torch.autocast(device.type, dtype=amp_dtype)
    with amp:
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    return out.logits.float()  # (B, num_labels); the loss is taken in fp32


def train_one_epoch(model: nn.Module, batches: Iterable[Batch], optimizer: torch.optim.Optimizer,
                    amp_dtype: torch.dtype | None = None, progress: tqdm | None = None) -> float:
    """One pass over `batches`; returns the mean training loss per sample."""
    model.train()
    loss_sum = torch.zeros((), device=_device(model))  # summed on the device: no host sync per step
    seen = 0
    for step, batch in enumerate(batches):
        loss = F.cross_entropy(_logits(model, batch, amp_dtype), batch.labels, ignore_index=IGNORE_INDEX)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * batch.n_real
        seen += batch.n_real
        if progress is not None:
            progress.update(batch.n_real)
            if step % 20 == 0:
                progress.set_postfix(loss=f"{loss.item():.4f}")
    if seen == 0:
        raise ValueError("train_one_epoch got no batches")
    return (loss_sum / seen).item()


def weighted_f1(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """F1 per class, averaged with weights = class support (scikit-learn's average="weighted")."""
    preds, labels = preds.long().cpu(), labels.long().cpu()
    f1_sum = 0.0
    for c in range(num_classes):
        tp = ((preds == c) & (labels == c)).sum().item()
        predicted, support = (preds == c).sum().item(), (labels == c).sum().item()
        if tp:  # tp = 0 gives F1 = 0, also for an absent class (sklearn's zero_division=0)
            f1_sum += support * 2 * tp / (predicted + support)
    return f1_sum / len(labels) if len(labels) else 0.0


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[Batch], amp_dtype: torch.dtype | None = None,
             num_classes: int = 5) -> dict[str, float]:
    """Mean loss, accuracy and weighted F1 over `batches`, in eval mode; the model's mode is restored."""
    was_training = model.training
    model.eval()
    loss_sum, preds, labels = 0.0, [], []
    for batch in batches:
        logits = _logits(model, batch, amp_dtype)[:batch.n_real]
        y = batch.labels[:batch.n_real]
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        preds.append(logits.argmax(dim=1))
        labels.append(y)
    model.train(was_training)
    if not labels:
        raise ValueError("evaluate got no batches")
    preds_t, labels_t = torch.cat(preds), torch.cat(labels)
    n = len(labels_t)
    return {"loss": float(loss_sum) / n, "accuracy": (preds_t == labels_t).float().mean().item(),
            "f1": weighted_f1(preds_t, labels_t, num_classes)}


def train(cfg: FinetuneConfig, model: nn.Module, data: dict[str, EncodedSplit], amp_dtype: torch.dtype | None,
          on_epoch: Callable[[dict], None] | None = None, desc: str = "") -> list[dict]:
    """The course loop: `cfg.epochs` epochs, validation after each; returns one record per epoch."""
    optimizer = make_optimizer(model, cfg.lr)
    forward = torch.compile(model, dynamic=False) if cfg.compile else model
    shuffle = torch.Generator().manual_seed(cfg.seed)  # CPU generator: the same order on every device
    cuda = _device(model).type == "cuda"
    history = []
    for epoch in range(1, cfg.epochs + 1):
        batches = iter_batches(data["train"], cfg.batch_size, cfg.buckets, shuffle=True, generator=shuffle,
                               full_batches=cfg.compile)
        with tqdm(total=len(data["train"]), desc=f"{desc} epoch {epoch}/{cfg.epochs}", unit="sample",
                  disable=not cfg.progress, leave=False) as bar:
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            train_loss = train_one_epoch(forward, batches, optimizer, amp_dtype, bar)  # .item() syncs
            seconds = time.perf_counter() - start
        val = evaluate(forward, iter_batches(data["validation"], cfg.batch_size, cfg.buckets, shuffle=False,
                                             full_batches=cfg.compile), amp_dtype, cfg.num_labels)
        record = {"epoch": epoch, "train_loss": train_loss, "val_loss": val["loss"],
                  "val_accuracy": val["accuracy"], "val_f1": val["f1"], "train_seconds": seconds,
                  "train_samples_per_s": len(data["train"]) / seconds}
        history.append(record)
        if cfg.progress:
            tqdm.write(f"{desc} epoch {epoch}: train loss {train_loss:.4f}, val loss {val['loss']:.4f}, "
                       f"val acc {val['accuracy']:.4f}, val F1 {val['f1']:.4f}, "
                       f"{record['train_samples_per_s']:.1f} samples/s")
        if on_epoch is not None:
            on_epoch(record)
    return history
