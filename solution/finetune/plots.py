"""Figures for questions (a)-(d), the rank sweep (f) and forward time (h), drawn only from the JSON files of a run.

Each `*_figure` function returns a matplotlib Figure (so tests can read its axes); `plot_all` saves them.
"""

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from solution.finetune.config import FinetuneConfig, parse_method  # noqa: E402

__all__ = ["load_results", "label", "compared_methods", "percent_text", "parameters_figure", "curves_figure",
           "scores_figure", "timing_figure", "plot_all"]

DPI = 120


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


def percent_text(part: int, whole: int, significant: int = 2) -> str:
    """`part` as a percentage of `whole`, e.g. 3,845 of 109,486,085 -> "0.0035 %" and the rest -> "99.9965 %".

    The digits are counted on the distance to 0 % or 100 %, whichever is nearer, so a share that is neither
    exactly 0 nor exactly 100 % never prints as one (a fixed "%.2f" turns the last-layer setup into "0.00 %").
    """
    if whole <= 0 or not 0 <= part <= whole:
        raise ValueError(f"need 0 <= part <= whole and whole > 0, got {part} of {whole}")
    pct = 100 * part / whole
    gap = min(pct, 100 - pct)
    decimals = 0 if gap == 0 else max(0, significant - 1 - math.floor(math.log10(gap)))
    return f"{pct:.{decimals}f} %"


def _epoch_axis(ax) -> None:
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))  # whole epochs: no 2.5, no 3, 6, 9


SMALL_WEDGE = 0.08  # share below which a wedge's text goes outside, on a leader line


def _pie(ax, trainable: int, total: int) -> None:
    """Trainable vs frozen, each wedge marked with its name, count and share; the trainable wedge sits at 30°."""
    parts = [(n, name, color) for n, name, color in ((trainable, "trainable", "tab:orange"),
                                                     (total - trainable, "frozen", "tab:gray")) if n]
    sizes, _, colors = zip(*parts)  # a zero wedge would still get its text
    wedges, _ = ax.pie(sizes, colors=colors, startangle=30 + 180 * trainable / total, counterclock=False)
    for wedge, (n, name, _) in zip(wedges, parts):
        text = f"{name}\n{n:,}\n{percent_text(n, total)}"
        mid = math.radians((wedge.theta1 + wedge.theta2) / 2)
        x, y = math.cos(mid), math.sin(mid)
        if n == total:
            ax.text(0, 0, text, ha="center", va="center", fontsize=10, color="white")
        elif n / total >= SMALL_WEDGE:
            ax.text(0.55 * x, 0.55 * y, text, ha="center", va="center", fontsize=10, color="white")
        else:  # too thin to hold its text, maybe too thin to see: point at it
            ax.annotate(text, (x, y), xytext=(1.2 * x + 0.15, 1.2 * y + 0.25), ha="left", va="bottom",
                        fontsize=10, arrowprops={"arrowstyle": "-", "color": "black", "lw": 0.8})
    ax.set_xlim(-1.1, 2.0)  # room on the right for a thin wedge's text
    ax.set_ylim(-1.1, 1.6)


def parameters_figure(results: dict[str, dict], methods: list[str]) -> Figure:
    """(a) One pie per method: trainable vs frozen parameters, each wedge labelled with its count and share."""
    fig, axes = plt.subplots(1, len(methods), figsize=(5.2 * len(methods), 4.4), squeeze=False)
    for ax, method in zip(axes[0], methods):
        p = results[method]["params"]
        _pie(ax, p["trainable"], p["total"])
        ax.set_title(f"{label(method)}\n{p['total']:,} parameters", fontsize=11)
    fig.suptitle("(a) Trainable vs total parameters")
    fig.tight_layout()
    return fig


def curves_figure(results: dict[str, dict], methods: list[str], key: str, ylabel: str, title: str) -> Figure:
    """(b), (c), (f): one line per method of `key` against the epoch."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for method in methods:
        epochs = results[method]["epochs"]
        ax.plot([e["epoch"] for e in epochs], [e[key] for e in epochs], marker="o", markersize=4,
                label=label(method))
    _epoch_axis(ax)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def scores_figure(results: dict[str, dict], methods: list[str]) -> Figure:
    """(d) Validation accuracy and weighted F1 after the last epoch, side by side per method."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    width = 0.38
    for i, (key, name) in enumerate([("val_accuracy", "accuracy"), ("val_f1", "weighted F1")]):
        values = [results[m]["epochs"][-1][key] for m in methods]
        xs = [j + (i - 0.5) * width for j in range(len(methods))]
        bars = ax.bar(xs, values, width, label=name)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks(range(len(methods)), [label(m) for m in methods])
    ax.set_xlabel("method")
    ax.set_ylabel("validation score after the last epoch (0 to 1)")
    ax.set_ylim(0, 1)
    ax.set_title("(d) Validation accuracy and weighted F1")
    ax.legend()
    fig.tight_layout()
    return fig


def _ms_text(ms: float, baseline: float | None = None) -> str:
    """Three significant digits, trailing zeros kept (18.0 ms, not 18 ms); then the ratio to `baseline`."""
    decimals = max(0, 2 - math.floor(math.log10(ms))) if ms > 0 else 0
    return f"{ms:.{decimals}f} ms" + ("" if baseline is None else f"\n{ms / baseline:.2f}×")


def _timed_bars(ax, names: list[str], ms: list[float], colors: list[str]) -> None:
    bars = ax.bar(range(len(names)), ms, 0.6, color=colors)
    ax.bar_label(bars, [_ms_text(t, None if i == 0 else ms[0]) for i, t in enumerate(ms)], fontsize=8, padding=2)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, 1.25 * max(ms))  # room for the labels above the tallest bar
    ax.grid(axis="y", alpha=0.3)


def timing_figure(timing: dict) -> Figure:
    """(h) Median time per batch: training (LoRA cannot be merged) and inference (B·A merged into W0)."""
    ms = timing["median_ms"]
    shape = "x".join(str(s) for s in timing["batch_shape"])
    fig, (train_ax, infer_ax) = plt.subplots(1, 2, figsize=(10.5, 4.4), gridspec_kw={"width_ratios": [4, 3]})
    width = 0.38
    for i, (kind, name, color) in enumerate([("full", "full fine-tuning", "tab:blue"),
                                             ("lora", f"LoRA r={timing['rank']}", "tab:green")]):
        values = [ms[f"train_forward_{kind}"], ms[f"train_step_{kind}"]]
        bars = train_ax.bar([j + (i - 0.5) * width for j in range(2)], values, width, label=name, color=color)
        full = [ms["train_forward_full"], ms["train_step_full"]]
        train_ax.bar_label(bars, [_ms_text(v, None if kind == "full" else f) for v, f in zip(values, full)],
                           fontsize=8, padding=2)
    train_ax.set_xticks(range(2), ["forward", "forward + backward"])
    train_ax.set_ylim(0, 1.25 * max(ms[f"train_{pass_}_{kind}"] for pass_ in ("forward", "step")
                                    for kind in ("full", "lora")))
    train_ax.grid(axis="y", alpha=0.3)
    train_ax.legend(loc="upper left", fontsize=9)
    train_ax.set_title("Training: A and B change every step,\nso B·A cannot be merged", fontsize=10)
    train_ax.set_xlabel("pass (model in train mode)")
    _timed_bars(infer_ax, ["base model", "LoRA\nunmerged", "LoRA, B·A\nmerged into W0"],
                [ms["inference_base"], ms["inference_lora_unmerged"], ms["inference_lora_merged"]],
                ["tab:blue", "tab:green", "tab:olive"])
    infer_ax.set_title("Inference: merged LoRA is the base architecture", fontsize=10)
    infer_ax.set_xlabel("model (eval mode, no gradients)")
    for ax in (train_ax, infer_ax):
        ax.set_ylabel(f"median ms per batch of {shape} tokens")
    fig.suptitle(f"(h) Forward time on {timing['device']} ({timing['precision']}), median of {timing['rounds']} "
                 "rounds; × is the ratio to full fine-tuning (left) and to the base model (right)", fontsize=11)
    fig.tight_layout()
    return fig


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def plot_all(out: Path, cfg: FinetuneConfig) -> list[Path]:
    """Write every figure whose inputs exist; returns the paths written."""
    out = Path(out)
    results = load_results(out)
    written = []
    methods = [m for m in compared_methods(cfg) if m in results]
    if methods:
        written += [
            _save(parameters_figure(results, methods), out / "fig_a_parameters.png"),
            _save(curves_figure(results, methods, "train_loss", "training loss (cross-entropy, nats per sentence)",
                                "(b) Training loss"), out / "fig_b_train_loss.png"),
            _save(curves_figure(results, methods, "val_accuracy", "validation accuracy (fraction correct)",
                                "(c) Validation accuracy"), out / "fig_c_val_accuracy.png"),
            _save(scores_figure(results, methods), out / "fig_d_val_accuracy_f1.png"),
        ]
    ranks = sorted((m for m in results if parse_method(m)[0] == "lora"), key=lambda m: parse_method(m)[1])
    if ranks:
        written.append(_save(curves_figure(results, ranks, "val_accuracy", "validation accuracy (fraction correct)",
                                           "(f) LoRA rank sweep"), out / "fig_f_rank_sweep.png"))
    if (out / "timing.json").is_file():
        written.append(_save(timing_figure(json.loads((out / "timing.json").read_text())),
                             out / "fig_h_forward_time.png"))
    return written
