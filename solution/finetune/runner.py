"""The answer-key run: every method in turn, each writing its own folder, then timing, figures and report.

Layout under `cfg.out`:
    config.json                       the config of the latest run
    <method>/metrics.json, .csv       per-epoch metrics, rewritten after every epoch; "complete" once done
    timing.json                       question (h)
    fig_*.png, rank_table.{csv,md}, report.md
A method whose metrics.json is complete and was made with the same recipe is skipped unless `force`, so a crash
loses only the method that was running.
"""

import csv
import dataclasses
import json
from pathlib import Path

import torch

from solution.finetune.config import FinetuneConfig
from solution.finetune.data import EncodedSplit, encode, iter_batches, load_sst5, subsample, synthetic_sst5
from solution.finetune.models import (apply_method, autocast_dtype, build_model, load_tokenizer, resolve_device,
                                      set_seed)
from solution.finetune.train import evaluate, train
from solution.lora import get_model_params_info

__all__ = ["run", "run_method", "load_data", "recipe", "write_json"]

# Fields that change where or how fast results appear, not what they are.
_NOT_RECIPE = {"methods", "compare_rank", "out", "progress", "timing_batches", "compile", "eval_test", "threads"}


def recipe(cfg: FinetuneConfig) -> dict:
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _NOT_RECIPE}


def write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)  # atomic: a crash never leaves half a file that a later run would trust


def _done(path: Path, cfg: FinetuneConfig) -> bool:
    if not path.is_file():
        return False
    try:
        saved = json.loads(path.read_text())
    except json.JSONDecodeError:
        return False
    # JSON turns tuples into lists; compare through a round trip.
    return saved.get("complete") is True and saved.get("recipe") == json.loads(json.dumps(recipe(cfg)))


def load_data(cfg: FinetuneConfig, device: torch.device):
    """(tokenizer, {split: EncodedSplit}) with the config's subsampling applied."""
    if cfg.smoke and cfg.data is None:
        texts = synthetic_sst5(cfg.seed)
    else:
        texts = load_sst5(cfg.data, cfg.num_labels)
    texts["train"] = subsample(texts["train"], cfg.limit_train, cfg.seed)
    for split in ("validation", "test"):
        texts[split] = subsample(texts[split], cfg.limit_eval, cfg.seed)
    tokenizer = load_tokenizer(cfg, texts["train"].texts)
    encoded = {split: encode(t, tokenizer, cfg.max_length, device) for split, t in texts.items()}
    return tokenizer, encoded


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def run_method(cfg: FinetuneConfig, method: str, vocab_size: int, data: dict[str, EncodedSplit],
               device: torch.device, out_dir: Path) -> dict:
    """Train one method from a fresh seeded model; metrics.json is rewritten after every epoch."""
    out_dir.mkdir(parents=True, exist_ok=True)
    set_seed(cfg.seed)  # same classifier init for every method; LoRA's A is drawn after it
    model = apply_method(build_model(cfg, vocab_size), method, cfg).to(device)
    total, trainable, percent = get_model_params_info(model)
    amp_dtype = autocast_dtype(cfg.precision, device)
    result = {"method": method, "complete": False, "recipe": recipe(cfg), "device": str(device),
              "precision": "fp32" if amp_dtype is None else "bf16-autocast",
              "params": {"total": total, "trainable": trainable, "trainable_percent": percent},
              "samples": {split: len(d) for split, d in data.items()}, "epochs": []}

    def on_epoch(record: dict) -> None:
        result["epochs"].append(record)
        write_json(out_dir / "metrics.json", result)

    history = train(cfg, model, data, amp_dtype, on_epoch, desc=method)
    best = max(history, key=lambda r: r["val_accuracy"])  # first epoch wins a tie
    result["best"] = {"epoch": best["epoch"], "val_accuracy": best["val_accuracy"], "val_f1": best["val_f1"]}
    if cfg.eval_test:
        # The model after the last epoch (the recipe keeps no checkpoints).
        result["test_last_epoch"] = evaluate(model, iter_batches(data["test"], cfg.batch_size, cfg.buckets,
                                                                 shuffle=False), amp_dtype, cfg.num_labels)
    result["complete"] = True
    write_json(out_dir / "metrics.json", result)
    _write_csv(out_dir / "metrics.csv", history)
    return result


def run(cfg: FinetuneConfig, force: bool = False) -> Path:
    """Run every method of `cfg` (skipping finished ones unless `force`), time (h), plot and report."""
    threads = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    try:
        return _run(cfg, force)
    finally:
        torch.set_num_threads(threads)  # a caller's thread setting survives the run


def _run(cfg: FinetuneConfig, force: bool) -> Path:
    from solution.finetune.plots import plot_all
    from solution.finetune.report import write_report
    from solution.finetune.timing import measure_forward_times

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "config.json")
    device = resolve_device(cfg.device)
    todo = [m for m in cfg.methods if force or not _done(out / m / "metrics.json", cfg)]
    need_timing = force or not _done(out / "timing.json", cfg)
    for method in cfg.methods:
        if method not in todo:
            print(f"{method}: finished in {out / method}, skipped (--force reruns it)")
    if todo or need_timing:
        tokenizer, data = load_data(cfg, device)
        for method in todo:
            run_method(cfg, method, len(tokenizer), data, device, out / method)
        if need_timing:
            set_seed(cfg.seed)
            base = build_model(cfg, len(tokenizer)).to(device)
            batch = next(iter_batches(data["train"], cfg.batch_size, cfg.buckets, shuffle=True,
                                      generator=torch.Generator().manual_seed(cfg.seed)))
            timing = measure_forward_times(cfg, base, batch, autocast_dtype(cfg.precision, device))
            write_json(out / "timing.json", {"complete": True, "recipe": recipe(cfg), **timing})
            del base
    plot_all(out, cfg)
    report = write_report(out, cfg)
    print(f"report: {report}")
    return out
