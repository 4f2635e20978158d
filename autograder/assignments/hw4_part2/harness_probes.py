"""GPU harness measurements (autograder/gpu_harness.py): the student's LoRA on a BERT of the course's shape.

Sent to the student's kernel right after probes.py, in the same namespace, so it uses probes.py's helpers
directly; the grader's tests import it as a module. Per submission: parameter counts for each rank, the largest
|logits with LoRA - logits of the base| of a fresh model, whether an Adam step leaves every pretrained weight
bit-identical, whether merging B A into W0 keeps the outputs, and forward times (training mode: base vs LoRA;
eval mode: base, LoRA, merged). LoRA is applied on the CPU, as on a freshly loaded model, then moved to the device.
"""

import copy
import ctypes
import statistics
import time

import torch

try:  # in the grader; in the kernel, probes.py's text has already defined these names
    from autograder.assignments.hw4_part2.probes import (_p2_describe, p2_apply, p2_batch, p2_bert, p2_counts,
                                                         p2_lora_modules, p2_make_config, p2_param_groups)
except ImportError:
    pass


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


def p2h_step(lora, batch: dict, lr: float) -> dict:
    """One Adam step on the trainable parameters (B made non-zero first); which pretrained weights moved."""
    with torch.no_grad():
        for _, module in p2_lora_modules(lora):
            module.lora_B.weight.normal_(0, 0.02)
    groups = p2_param_groups(lora)
    before = {n: p.detach().clone() for n, p in lora.named_parameters()}
    lora.train()
    optimizer = torch.optim.Adam([p for p in lora.parameters() if p.requires_grad], lr=lr)
    lora(**batch).loss.backward()
    optimizer.step()
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


def measure_harness(Config, get_lora_model, args: dict, describe=_p2_describe) -> dict:
    device = torch.device(args["device"])
    for path in args.get("preload", []):
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was requested but is not available inside the sandbox")
    timing = {"repeats": args["repeats"], "warmup": args["warmup"]}
    base = p2_bert(args["config"], args["seed"])
    result = {"ranks": {}, "config_error": None, "device_name": torch.cuda.get_device_name(device)
              if device.type == "cuda" else "cpu"}
    lora = None
    for r in args["ranks"]:
        try:
            config, result["config_error"] = p2_make_config(Config, r, args["lora_alpha"], args["lora_dropout"],
                                                            describe)
            model, _ = p2_apply(get_lora_model, copy.deepcopy(base), config)
            result["ranks"][str(r)] = {"counts": p2_counts(model)}
            if r == args["main_rank"]:
                lora = model
        except Exception as error:
            result["ranks"][str(r)] = {"error": describe(error)}
    if lora is None:
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
    merge = {"lora_effect": float((unmerged - want).abs().max())}
    try:
        merge["method"] = p2h_merge(lora, args["lora_alpha"], args["main_rank"])
        merged = _p2h_logits(lora, batch)
        merge["max_diff"] = float((merged - unmerged).abs().max())
        merge["scale"] = float(unmerged.abs().max())
        timing["eval_merged"] = p2h_forward_ms(lora, inputs, False, args["repeats"], args["warmup"])
    except Exception as error:
        merge["error"] = describe(error)
    result["merge"], result["timing_ms"] = merge, timing
    return result


def probe_harness(args):
    return measure_harness(*_p2_lora_functions(), args, describe=_autograder.describe)
