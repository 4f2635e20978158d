"""Question (h): forward time of LoRA vs full fine-tuning in training, and at inference with B @ A merged.

Three models of the same weights: the plain model (full fine-tuning in train mode, the base model at inference),
LoRA left unmerged, and LoRA merged into W0. The settings are timed in turn within every round, so drift of a
shared machine (clock, other jobs) spreads over all of them instead of biasing whichever ran last.
"""

import copy
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch
from torch import nn

from solution.finetune.config import FinetuneConfig
from solution.finetune.data import Batch
from solution.lora import MyLoraConfig, get_lora_model, lora_layers, merge_lora

__all__ = ["measure_forward_times"]

WARMUP = 3  # untimed rounds: allocator, autotuning and lazy init happen here


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _forward(model: nn.Module, batch: Batch, amp_dtype: torch.dtype | None, training: bool) -> Callable[[], None]:
    def run() -> None:
        model.train(training)
        amp = nullcontext() if amp_dtype is None else torch.autocast(batch.input_ids.device.type, dtype=amp_dtype)
        grad = torch.enable_grad() if training else torch.inference_mode()
        with grad, amp:
            # Training keeps the autograd graph alive until here, as a real step would before backward.
            model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    return run


def _train_step(model: nn.Module, batch: Batch, amp_dtype: torch.dtype | None) -> Callable[[], None]:
    def run() -> None:
        model.train()
        amp = nullcontext() if amp_dtype is None else torch.autocast(batch.input_ids.device.type, dtype=amp_dtype)
        with amp:
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        logits.float().logsumexp(dim=1).mean().backward()  # any scalar will do: we time, not learn
        model.zero_grad(set_to_none=True)
    return run


def measure_forward_times(cfg: FinetuneConfig, base: nn.Module, batch: Batch, amp_dtype: torch.dtype | None,
                          rounds: int | None = None) -> dict:
    """Median milliseconds per forward pass (and per training step) for each setting, on one fixed batch.

    `base` is a freshly built model on the right device; it is copied, never modified. The LoRA copy gets a random
    B (scaled like a trained one) so that the merged-vs-unmerged check below is not vacuous.
    """
    rounds = rounds or cfg.timing_batches
    device = batch.input_ids.device
    full = copy.deepcopy(base)
    for p in full.parameters():
        p.requires_grad_(True)
    lora = get_lora_model(copy.deepcopy(base), MyLoraConfig(cfg.compare_rank, ("query", "value"), cfg.lora_alpha,
                                                           cfg.lora_dropout, init=cfg.lora_init))
    with torch.no_grad():
        for layer in lora_layers(lora):
            layer.lora_B.weight.normal_(0.0, 0.02)
    merged = copy.deepcopy(lora)
    merge_lora(merged)

    settings = {
        "train_forward_full": _forward(full, batch, amp_dtype, training=True),
        "train_forward_lora": _forward(lora, batch, amp_dtype, training=True),
        "train_step_full": _train_step(full, batch, amp_dtype),
        "train_step_lora": _train_step(lora, batch, amp_dtype),
        "inference_base": _forward(full, batch, amp_dtype, training=False),
        "inference_lora_unmerged": _forward(lora, batch, amp_dtype, training=False),
        "inference_lora_merged": _forward(merged, batch, amp_dtype, training=False),
    }
    times: dict[str, list[float]] = {name: [] for name in settings}
    for round_ in range(WARMUP + rounds):
        for name, run in settings.items():
            _sync(device)
            start = time.perf_counter()
            run()
            _sync(device)
            if round_ >= WARMUP:
                times[name].append(1000 * (time.perf_counter() - start))

    with torch.inference_mode():
        lora.eval()
        merged.eval()
        kwargs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        diff = (lora(**kwargs).logits.float() - merged(**kwargs).logits.float()).abs().max().item()
        base_diff = (full.eval()(**kwargs).logits.float() - lora(**kwargs).logits.float()).abs().max().item()
    return {
        "batch_shape": list(batch.input_ids.shape), "device": str(device), "rounds": rounds,
        "precision": "fp32" if amp_dtype is None else str(amp_dtype).removeprefix("torch."),
        "rank": cfg.compare_rank,
        "median_ms": {name: statistics.median(t) for name, t in times.items()},
        "min_ms": {name: min(t) for name, t in times.items()},
        "merged_vs_unmerged_max_abs_logit_diff": diff,
        "lora_vs_base_max_abs_logit_diff": base_diff,
    }
