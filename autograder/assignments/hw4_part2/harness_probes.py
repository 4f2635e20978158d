"""Harness measurements (autograder/staff/gpu_harness.py): the student's LoRA with the student's own configuration.

Appended to probes.py's text in the measurement process (same private namespace, so probes.py's helpers are
plain names here); the grader's tests import it as a module. Two entry points, each its own call and process:

- `probe_harness_counts`: bert-base's shape built on the meta device (no weights: nothing to allocate or
  initialise), LoRA applied per rank; parameter counts, how many modules were wrapped, and whether exactly the
  LoRA matrices and the classifier train.
- `probe_harness_numeric`: a real model (small on a CPU, bert-base on a GPU): the largest |logits with LoRA -
  logits of the base| of a fresh model, whether an SGD step leaves every pretrained weight bit-identical, whether
  merging B A into W0 keeps the outputs, and forward times (training mode: base vs LoRA; eval: base, LoRA, merged).
"""

import copy
import statistics
import time
from typing import TYPE_CHECKING, Any

import torch

try:  # in the grader; in the measurement process, probes.py's text has already defined these names
    from autograder.assignments.hw4_part2.probes import (_p2_describe, _p2_lora_functions, p2_apply, p2_batch,
                                                         p2_bert, p2_counts, p2_defaults, p2_lora_modules,
                                                         p2_make_config, p2_param_groups, p2_sgd_step)
except ImportError:
    pass

if TYPE_CHECKING:  # bound by the measurement process only (see ProbeHelpers)
    from autograder.assignment import ProbeHelpers
    _autograder: ProbeHelpers


def _p2h_sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def p2h_forward_ms(model, batch: dict, training: bool, repeats: int, warmup: int) -> float:
    """Median wall time of one forward pass; training mode builds the autograd graph, as in training."""
    device = batch["input_ids"].device
    model.train(training)
    times = []
    for _ in range(warmup + repeats):
        _p2h_sync(device)
        start = time.perf_counter()
        with torch.set_grad_enabled(training):
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        _p2h_sync(device)
        times.append(1000 * (time.perf_counter() - start))
        del out
    return round(statistics.median(times[warmup:]), 3)


def _p2h_logits(model, batch: dict):
    with torch.no_grad():
        return model.eval()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()


def _p2h_config(Config, own: dict, r: int):
    return p2_make_config(Config, r, own["lora_alpha"], own["lora_dropout"], own["target_modules"])


def measure_counts(Config, get_lora_model, args: dict, describe=_p2_describe) -> dict:
    """Per rank, on the meta device: [total, trainable], the number (and last name parts) of LoRA layers, and the trainable
    parameters that are neither LoRA matrices nor the classifier's (or the LoRA and classifier ones left frozen)."""
    from transformers import BertConfig, BertForSequenceClassification
    ranks = {}
    with torch.device("meta"):
        base = BertForSequenceClassification(BertConfig(**args["config"]))
        for r in args["ranks"]:
            try:
                model, _ = p2_apply(get_lora_model, copy.deepcopy(base), _p2h_config(Config, args["student"], r))
                groups = p2_param_groups(model)
                flags = {n: p.requires_grad for n, p in model.named_parameters()}
                ranks[str(r)] = {
                    "counts": p2_counts(model), "wrapped": len(p2_lora_modules(model)),
                    "wrapped_kinds": sorted({name.rsplit(".", 1)[-1] for name, _ in p2_lora_modules(model)}),
                    "wrong_trainable": sorted(n for n, g in groups.items() if flags[n] != (g != "base"))[:5]}
            except Exception as error:
                ranks[str(r)] = {"error": describe(error)}
    return {"ranks": ranks}


def p2h_step(lora, batch: dict, lr: float) -> dict:
    """One SGD step on the trainable parameters (B made non-zero first); which pretrained weights moved."""
    with torch.no_grad():
        for _, module in p2_lora_modules(lora):
            module.lora_B.weight.normal_(0, 0.02)
    groups = p2_param_groups(lora)
    before = {n: p.detach().clone() for n, p in lora.named_parameters()}
    p2_sgd_step(lora, batch, lr)
    after = dict(lora.named_parameters())
    changed = [n for n in groups if not torch.equal(before[n], after[n].detach())]
    base_changed = [n for n in changed if groups[n] == "base"]
    return {"frozen_base": not base_changed, "base_changed": base_changed[:5], "trained": len(changed) - len(base_changed)}


def p2h_merge(lora, lora_alpha: float, r: int) -> str:
    """Merge B A into W0 with the submission's own `merge()` where every LoRA layer has one, otherwise with the
    course's formula W0 += (lora_alpha / r) B A and the plain base layer put back. Returns which was used."""
    modules = p2_lora_modules(lora)
    if modules and all(callable(getattr(m, "merge", None)) for _, m in modules):
        for _, module in modules:
            module.merge()
        return "own merge()"
    with torch.no_grad():
        for name, module in modules:
            base = module.base_layer
            base.weight += (lora_alpha / r) * (module.lora_B.weight @ module.lora_A.weight).to(base.weight.dtype)
            parent_name, _, child_name = name.rpartition(".")
            setattr(lora.get_submodule(parent_name), child_name, base)
    return "course formula"


def measure_numeric(Config, get_lora_model, args: dict, describe=_p2_describe) -> dict:
    """The student's configuration on a real model: initial delta, frozen base after a step, merge, timing."""
    device = torch.device(args["device"])
    # CUDA's driver, if any, was loaded by the measurement process before its policy (the assignment's
    # MeasurementPolicy.libraries): ctypes is refused here.
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was requested but is not available inside the sandbox")
    own, timing = args["student"], {"repeats": args["repeats"], "warmup": args["warmup"]}
    result = {"device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    base = p2_bert(args["config"], args["seed"])
    try:
        lora, _ = p2_apply(get_lora_model, copy.deepcopy(base), _p2h_config(Config, own, own["r"]))
    except Exception as error:
        result["error"] = describe(error)
        return result
    batch = {k: v.to(device) for k, v in p2_batch(args["config"], args["seed"], args["rows"], args["length"]).items()}
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    base, lora = base.to(device), lora.to(device)
    want = _p2h_logits(base, batch)
    result["init_max_diff"] = float((_p2h_logits(lora, batch) - want).abs().max())
    result.update(p2h_step(copy.deepcopy(lora), batch, lr=1e-3))
    for label, model in (("train_base", base), ("train_lora", lora)):
        timing[label] = p2h_forward_ms(model, inputs, True, args["repeats"], args["warmup"])
    with torch.no_grad():
        g = torch.Generator().manual_seed(args["seed"])
        for _, module in p2_lora_modules(lora):
            weight = module.lora_B.weight
            weight.copy_(0.05 * torch.randn(weight.shape, generator=g).to(weight.device, weight.dtype))
    unmerged = _p2h_logits(lora, batch)
    timing["eval_base"] = p2h_forward_ms(base, inputs, False, args["repeats"], args["warmup"])
    timing["eval_lora"] = p2h_forward_ms(lora, inputs, False, args["repeats"], args["warmup"])
    merge: dict[str, Any] = {"lora_effect": float((unmerged - want).abs().max())}
    try:
        merge["method"] = p2h_merge(lora, own["lora_alpha"], own["r"])
        merged = _p2h_logits(lora, batch)
        merge["max_diff"] = float((merged - unmerged).abs().max())
        merge["scale"] = float(unmerged.abs().max())
        timing["eval_merged"] = p2h_forward_ms(lora, inputs, False, args["repeats"], args["warmup"])
    except Exception as error:
        merge["error"] = describe(error)
    result["merge"], result["timing_ms"] = merge, timing
    return result


def _p2h_functions(args: dict, device: str) -> tuple[Any, Any]:
    p2_defaults(_autograder.namespace, args.get("constants", {}), device)
    return _p2_lora_functions({})


def probe_harness_counts(args: dict) -> dict:
    # Student code that moves tensors `.to(device)` must stay on the meta device here.
    return measure_counts(*_p2h_functions(args, "meta"), args, describe=_autograder.describe)


def probe_harness_numeric(args: dict) -> dict:
    return measure_numeric(*_p2h_functions(args, args["device"]), args, describe=_autograder.describe)
