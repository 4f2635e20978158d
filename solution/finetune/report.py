"""The Markdown answer key and the rank table (f), from the JSON files of a run."""

import csv
import json
from pathlib import Path

from solution.finetune.answers import answer_e, answer_g
from solution.finetune.config import FinetuneConfig, parse_method
from solution.finetune.plots import compared_methods, label, load_results, percent_text

__all__ = ["rank_rows", "write_rank_table", "write_report", "timing_section"]


def rank_rows(results: dict[str, dict]) -> list[dict]:
    """One row per finished LoRA rank: the best (not the last) validation accuracy and its epoch."""
    rows = []
    for method, res in results.items():
        kind, rank = parse_method(method)
        if kind != "lora" or not res.get("complete"):
            continue
        rows.append({"rank": rank, "trainable": res["params"]["trainable"], "total": res["params"]["total"],
                     "best_val_accuracy": res["best"]["val_accuracy"], "best_epoch": res["best"]["epoch"],
                     "epochs": len(res["epochs"])})
    return sorted(rows, key=lambda r: r["rank"])


def write_rank_table(out: Path, results: dict[str, dict]) -> str:
    rows = rank_rows(results)
    if rows:
        with open(out / "rank_table.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    lines = ["| r | trainable | total | best val accuracy | at epoch |", "|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['rank']} | {r['trainable']:,} | {r['total']:,} | {r['best_val_accuracy']:.4f} | "
              f"{r['best_epoch']} of {r['epochs']} |" for r in rows]
    table = "\n".join(lines) + "\n"
    (out / "rank_table.md").write_text(table)
    return table


def _methods_table(results: dict[str, dict]) -> str:
    lines = ["| method | trainable | total | trainable % | best val acc (epoch) | last val acc | last val F1 | "
             "test acc, last epoch | train samples/s |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for method, res in results.items():
        p, last = res["params"], res["epochs"][-1]
        best = max(res["epochs"], key=lambda e: e["val_accuracy"])
        test = res.get("test_last_epoch", {}).get("accuracy")
        speed = sum(e["train_samples_per_s"] for e in res["epochs"]) / len(res["epochs"])
        status = "" if res.get("complete") else " (unfinished)"
        lines.append(f"| {label(method)}{status} | {p['trainable']:,} | {p['total']:,} | "
                     f"{percent_text(p['trainable'], p['total'])} | {best['val_accuracy']:.4f} ({best['epoch']}) | "
                     f"{last['val_accuracy']:.4f} | {last['val_f1']:.4f} | "
                     f"{'-' if test is None else f'{test:.4f}'} | {speed:.1f} |")
    return "\n".join(lines) + "\n"


def timing_section(timing: dict, figure: str | None) -> str:
    ms = timing["median_ms"]
    rows = [("training forward, full fine-tuning", "train_forward_full"),
            ("training forward, LoRA (cannot be merged)", "train_forward_lora"),
            ("training step (fwd+bwd), full fine-tuning", "train_step_full"),
            ("training step (fwd+bwd), LoRA", "train_step_lora"),
            ("inference, base model", "inference_base"),
            ("inference, LoRA unmerged", "inference_lora_unmerged"),
            ("inference, LoRA merged into W0", "inference_lora_merged")]
    lines = ["| setting | median ms per batch |", "|---|---:|"]
    lines += [f"| {name} | {ms[key]:.2f} |" for name, key in rows]
    shape = "x".join(str(s) for s in timing["batch_shape"])
    head = (f"Batch {shape} tokens on {timing['device']} ({timing['precision']}), LoRA r={timing['rank']}, "
            f"median of {timing['rounds']} interleaved rounds.\n\n" + "\n".join(lines) + "\n\n")
    if figure:
        head += f"![(h) forward time]({figure})\n\n"
    return (head +
            f"- Training: LoRA's forward takes {ms['train_forward_lora'] / ms['train_forward_full']:.2f}x the "
            "full model's. W0 is frozen while A and B change every step, so B·A cannot be folded into W0: "
            "each adapted layer runs its extra low-rank path x -> A -> B on top of W0 x. (LoRA's whole step "
            "can still be cheaper, since no weight gradients are computed for the frozen matrices.)\n"
            f"- Inference: unmerged LoRA takes {ms['inference_lora_unmerged'] / ms['inference_base']:.2f}x the "
            f"base model's time; merged (W = W0 + (alpha/r)·B·A) takes "
            f"{ms['inference_lora_merged'] / ms['inference_base']:.2f}x, i.e. the overhead is gone: the merged "
            "model has exactly the base architecture. Merged and unmerged logits differ by at most "
            f"{timing['merged_vs_unmerged_max_abs_logit_diff']:.1e} (float rounding).\n")


def write_report(out: Path, cfg: FinetuneConfig) -> Path:
    out = Path(out)
    results = load_results(out)
    model = f"`{cfg.model}`"
    if cfg.smoke:
        model = "a tiny random BERT (smoke run: a check of the pipeline, not a result)"
    data = "synthetic sentences" if cfg.smoke and cfg.data is None else f"`{cfg.data or 'SetFit/sst5'}`"
    parts = [f"# HW4 Part 2 answer key: LoRA on BERT, SST-5\n\nModel {model}, data {data}; {cfg.epochs} epochs, "
             f"Adam lr {cfg.lr}, batch {cfg.batch_size}, LoRA alpha {cfg.lora_alpha}, dropout {cfg.lora_dropout}, "
             f"seed {cfg.seed}. "
             "Per-epoch numbers: `<method>/metrics.json` and `.csv`; config: `config.json`.\n"]
    if results:
        any_result = next(iter(results.values()))
        parts.append(f"Samples: {any_result['samples']}; device {any_result['device']}, "
                     f"{any_result['precision']}.\n")
        parts.append("## Methods\n\n" + _methods_table(results))
    figures = [("(a) trainable vs total parameters", "fig_a_parameters.png"),
               ("(b) training loss", "fig_b_train_loss.png"), ("(c) validation accuracy", "fig_c_val_accuracy.png"),
               ("(d) validation accuracy and F1", "fig_d_val_accuracy_f1.png"),
               ("(f) rank sweep", "fig_f_rank_sweep.png")]
    shown = [f"### {title}\n\n![{title}]({name})\n" for title, name in figures if (out / name).is_file()]
    if shown:
        compared = ", ".join(label(m) for m in compared_methods(cfg))
        parts.append(f"## Figures ({compared})\n\n" + "\n".join(shown))
    if results:
        parts.append("## (e) LoRA vs full and last-layer fine-tuning\n\n" + "\n\n".join(answer_e(results, cfg)) + "\n")
    parts.append("## (f) Best validation accuracy per LoRA rank\n\n" + write_rank_table(out, results))
    if results:
        parts.append("## (g) The rank, with alpha fixed\n\n" + "\n\n".join(answer_g(results, cfg)) + "\n")
    if (out / "timing.json").is_file():
        figure = "fig_h_forward_time.png"
        parts.append("## (h) Forward time\n\n" + timing_section(json.loads((out / "timing.json").read_text()),
                                                                   figure if (out / figure).is_file() else None))
    path = out / "report.md"
    path.write_text("\n".join(parts))
    return path
