"""Part 2's free-response answers (e) and (g), every figure read from a run's metrics (report.py adds (h)).

`facts_*` return plain numbers (tested against hand-made metrics); `answer_*` put them into sentences. Accuracies
are printed as percentages with one decimal, so a sentence's figure can be parsed back and compared.
"""

from solution.finetune.config import FinetuneConfig, parse_method
from solution.finetune.plots import label

__all__ = ["CONVERGED_WITHIN", "convergence_epoch", "facts_e", "facts_g", "answer_e", "answer_g", "pct"]

CONVERGED_WITHIN = 0.01  # an epoch has converged once its validation accuracy is within 1 point of the best


def pct(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"


def convergence_epoch(epochs: list[dict], within: float = CONVERGED_WITHIN) -> int:
    """The first epoch whose validation accuracy is within `within` of the run's best."""
    best = max(e["val_accuracy"] for e in epochs)
    return next(e["epoch"] for e in epochs if e["val_accuracy"] >= best - within)


def _facts(res: dict) -> dict:
    epochs = res["epochs"]
    best = max(epochs, key=lambda e: e["val_accuracy"])  # first epoch wins a tie, as in the runner
    last = epochs[-1]
    return {
        "label": label(res["method"]), "trainable": res["params"]["trainable"], "total": res["params"]["total"],
        "epochs": len(epochs), "final_acc": last["val_accuracy"], "final_f1": last["val_f1"],
        "best_acc": best["val_accuracy"], "best_epoch": best["epoch"], "best_f1": best["val_f1"],
        "converged_epoch": convergence_epoch(epochs),
        # Overfitting shows as training loss still falling after the best validation epoch.
        "train_loss_at_best": best["train_loss"], "train_loss_final": last["train_loss"],
        "val_loss_final": last["val_loss"], "acc_change_after_best": last["val_accuracy"] - best["val_accuracy"],
    }


def facts_e(results: dict[str, dict], cfg: FinetuneConfig) -> dict[str, dict]:
    """method -> facts, for full, last layer and the compared LoRA rank that are in `results`."""
    methods = ["full", "last_layer", f"lora_r{cfg.compare_rank}"]
    return {m: _facts(results[m]) for m in methods if m in results}


def facts_g(results: dict[str, dict], cfg: FinetuneConfig) -> list[dict]:
    """One row per LoRA rank, by rank: best accuracy, trainable count and the update scale alpha / r."""
    rows = []
    for method, res in results.items():
        kind, rank = parse_method(method)
        if kind == "lora":
            rows.append({"rank": rank, "scale": cfg.lora_alpha / rank, **_facts(res)})
    return sorted(rows, key=lambda r: r["rank"])


def _smoke_note(cfg: FinetuneConfig) -> str:
    if not cfg.smoke:
        return ""
    return ("**Smoke run:** a tiny random BERT on synthetic data for a few epochs; the sentences below show how the "
            "answer reads, their figures are not results. Build the key with `--run` on a real run. ")


def answer_e(results: dict[str, dict], cfg: FinetuneConfig) -> list[str]:
    facts = facts_e(results, cfg)
    if not facts:
        return [_smoke_note(cfg) + "No finished run of full, last-layer or LoRA fine-tuning in this folder."]
    ranked = sorted(facts.values(), key=lambda f: -f["best_acc"])
    out = [_smoke_note(cfg) + "Ranked by best validation accuracy: " + ", ".join(
        f"{f['label']} {pct(f['best_acc'])} (epoch {f['best_epoch']} of {f['epochs']})" for f in ranked) + "."]
    for f in facts.values():
        after = f["acc_change_after_best"]
        trend = ("it ended at its best" if f["best_epoch"] == f["epochs"] else
                 f"after its best epoch the training loss went from {f['train_loss_at_best']:.3f} to "
                 f"{f['train_loss_final']:.3f} while validation accuracy changed by {100 * after:+.1f} points")
        out.append(f"{f['label']}: {f['trainable']:,} of {f['total']:,} parameters trained; final validation "
                   f"accuracy {pct(f['final_acc'])} and weighted F1 {f['final_f1']:.3f} (best "
                   f"{pct(f['best_acc'])}, F1 {f['best_f1']:.3f} at epoch {f['best_epoch']}); within "
                   f"{100 * CONVERGED_WITHIN:.0f} point of its best from epoch {f['converged_epoch']}; {trend}; "
                   f"final training loss {f['train_loss_final']:.3f} against validation loss "
                   f"{f['val_loss_final']:.3f}.")
    if {"full", "last_layer", f"lora_r{cfg.compare_rank}"} <= set(facts):
        full, last, lora = facts["full"], facts["last_layer"], facts[f"lora_r{cfg.compare_rank}"]
        gap = full["best_acc"] - last["best_acc"]
        share = (lora["best_acc"] - last["best_acc"]) / gap if gap > 0 else float("nan")
        closed = (f"LoRA closes {100 * share:.0f}% of the gap between last-layer and full fine-tuning"
                  if gap > 0 else "full fine-tuning did not beat the last layer here, so there is no gap to close")
        out.append(f"Trade-off: {closed} while training {lora['trainable'] / full['trainable'] * 100:.2f}% of "
                   "full fine-tuning's parameters; the base weights stay frozen and shared, so one model serves "
                   "many tasks with a small adapter each. Last-layer training is cheapest but cannot adapt the "
                   "features" + (", and plateaus lowest." if last["best_acc"] < min(full["best_acc"], lora["best_acc"])
                                 else "."))
    return out


def answer_g(results: dict[str, dict], cfg: FinetuneConfig) -> list[str]:
    rows = facts_g(results, cfg)
    if not rows:
        return [_smoke_note(cfg) + "No finished LoRA run in this folder."]
    listed = "; ".join(f"r={r['rank']}: {pct(r['best_acc'])} at epoch {r['best_epoch']}, {r['trainable']:,} "
                       f"trainable, scale alpha/r = {r['scale']:g}" for r in rows)
    out = [_smoke_note(cfg) + f"With alpha = {cfg.lora_alpha:g} fixed, best validation accuracy per rank: "
           f"{listed}."]
    if len(rows) > 1:
        lo, hi = rows[0], rows[-1]
        best = max(rows, key=lambda r: r["best_acc"])
        spread = max(r["best_acc"] for r in rows) - min(r["best_acc"] for r in rows)
        out.append(f"r={hi['rank']} trains {hi['trainable'] / lo['trainable']:.1f}x the parameters of "
                   f"r={lo['rank']}; the spread of best accuracy across ranks is {100 * spread:.1f} points, best "
                   f"at r={best['rank']}. The update B·A is scaled by alpha/r, which falls from "
                   f"{lo['scale']:g} to {hi['scale']:g}: with alpha fixed a larger rank does not mean a larger "
                   "update, so capacity and step size change together" + (
                       ", and rank alone barely moves accuracy here (alpha would have to be retuned with r)."
                       if spread < 0.02 else f"; here accuracy peaks at r={best['rank']}.") +
                   f" Trade-off: r={lo['rank']} needs {lo['trainable'] / hi['trainable'] * 100:.1f}% of the "
                   f"trainable parameters (and optimizer memory, adapter size) of r={hi['rank']} for "
                   f"{100 * (lo['best_acc'] - hi['best_acc']):+.1f} points of accuracy.")
    return out
