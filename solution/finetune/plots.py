"""Figures for questions (a)-(d) and the rank sweep, drawn only from the metrics JSON files of a run."""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402

from solution.finetune.config import FinetuneConfig, parse_method  # noqa: E402

__all__ = ["load_results", "label", "compared_methods", "plot_all"]


def _order(method: str) -> tuple[int, int]:
    kind, rank = parse_method(method)
    return {"full": 0, "last_layer": 1}.get(kind, 2), rank or 0


def load_results(out: Path) -> dict[str, dict]:
    """method -> its metrics.json, for every method folder under `out` with at least one finished epoch.

    Scanning the folder, not the config, keeps methods that earlier invocations (other --methods) wrote.
    """
    results = {}
    for path in Path(out).glob("*/metrics.json"):
        try:
            parse_method(path.parent.name)
        except ValueError:
            continue
        result = json.loads(path.read_text())
        if result.get("epochs"):
            results[path.parent.name] = result
    return {m: results[m] for m in sorted(results, key=_order)}


def label(method: str) -> str:
    kind, rank = parse_method(method)
    return {"full": "Full fine-tuning", "last_layer": "Last layer only"}.get(kind, f"LoRA r={rank}")


def compared_methods(cfg: FinetuneConfig) -> list[str]:
    """The three methods of questions (a)-(d), in that order."""
    return ["full", "last_layer", f"lora_r{cfg.compare_rank}"]


def _pies(results: dict[str, dict], methods: list[str], path: Path) -> None:
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 4.2), squeeze=False)
    for ax, method in zip(axes[0], methods):
        p = results[method]["params"]
        wedges = [(n, name, color) for n, name, color in ((p["trainable"], "trainable", "tab:orange"),
                                                          (p["total"] - p["trainable"], "frozen", "tab:gray")) if n]
        sizes, names, colors = zip(*wedges)  # a zero wedge would still print its label
        ax.pie(sizes, labels=names, colors=colors, autopct="%.2f%%", startangle=90, counterclock=False)
        ax.set_title(f"{label(method)}\n{p['trainable']:,} of {p['total']:,} trainable", fontsize=10)
    fig.suptitle("(a) Trainable vs total parameters")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _curves(results: dict[str, dict], methods: list[str], key: str, ylabel: str, title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for method in methods:
        epochs = results[method]["epochs"]
        ax.plot([e["epoch"] for e in epochs], [e[key] for e in epochs], marker="o", label=label(method))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _bars(results: dict[str, dict], methods: list[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    width = 0.38
    for i, (key, name) in enumerate([("val_accuracy", "accuracy"), ("val_f1", "weighted F1")]):
        values = [results[m]["epochs"][-1][key] for m in methods]
        xs = [j + (i - 0.5) * width for j in range(len(methods))]
        bars = ax.bar(xs, values, width, label=name)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks(range(len(methods)), [label(m) for m in methods])
    ax.set_ylabel("validation score after the last epoch")
    ax.set_ylim(0, 1)
    ax.set_title("(d) Validation accuracy and weighted F1")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_all(out: Path, cfg: FinetuneConfig) -> list[Path]:
    """Write every figure whose inputs exist; returns the paths written."""
    out = Path(out)
    results = load_results(out)
    written = []
    methods = [m for m in compared_methods(cfg) if m in results]
    if methods:
        specs = [
            ("fig_a_parameters.png", lambda p: _pies(results, methods, p)),
            ("fig_b_train_loss.png", lambda p: _curves(results, methods, "train_loss", "training loss",
                                                       "(b) Training loss", p)),
            ("fig_c_val_accuracy.png", lambda p: _curves(results, methods, "val_accuracy", "validation accuracy",
                                                         "(c) Validation accuracy", p)),
            ("fig_d_val_accuracy_f1.png", lambda p: _bars(results, methods, p)),
        ]
        for name, draw in specs:
            draw(out / name)
            written.append(out / name)
    ranks = sorted((m for m in results if parse_method(m)[0] == "lora"), key=lambda m: parse_method(m)[1])
    if ranks:
        _curves(results, ranks, "val_accuracy", "validation accuracy", "(f) LoRA rank sweep",
                out / "fig_f_rank_sweep.png")
        written.append(out / "fig_f_rank_sweep.png")
    return written
