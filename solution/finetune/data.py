"""SST-5 loading, one-time tokenisation onto the device, and length-bucketed batches.

Every split is tokenised once (truncated to max_length, padded to max_length) and kept on the device, so an epoch
is index arithmetic with no host work per step. Each batch is then cut to the smallest bucket that holds its longest
row: attention masks out the padding, so this changes nothing but float rounding, while it bounds the number of
distinct shapes (what torch.compile and CUDA graphs need).
"""

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

__all__ = [
    "SPLITS", "TextSplit", "EncodedSplit", "Batch", "load_sst5", "read_jsonl", "synthetic_sst5", "subsample",
    "encode", "bucket_length", "iter_batches",
]

SPLITS = ("train", "validation", "test")
HUB_ID = "SetFit/sst5"
# The offline copy calls the validation split dev.jsonl, as the original SST release does.
_LOCAL_NAMES = {"train": ("train.jsonl",), "validation": ("dev.jsonl", "validation.jsonl"), "test": ("test.jsonl",)}
IGNORE_INDEX = -100  # label of the filler rows that complete a last, short batch; cross-entropy skips them


@dataclass(frozen=True)
class TextSplit:
    texts: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class EncodedSplit:
    input_ids: torch.Tensor  # (N, max_length) int64, on the device
    attention_mask: torch.Tensor  # (N, max_length) int64, on the device
    labels: torch.Tensor  # (N,) int64, on the device
    lengths: torch.Tensor  # (N,) int64, on the CPU: real tokens per row, read without a device sync

    def __len__(self) -> int:
        return len(self.lengths)


class Batch(NamedTuple):
    input_ids: torch.Tensor  # (B, L)
    attention_mask: torch.Tensor  # (B, L)
    labels: torch.Tensor  # (B,), IGNORE_INDEX on filler rows
    n_real: int  # rows that are real samples


def read_jsonl(path: Path, num_labels: int = 5) -> TextSplit:
    """One `{"text": str, "label": int}` object a line; each fault names its file and line."""
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not JSON ({err.msg})") from None
            text, label = row.get("text"), row.get("label")
            if not isinstance(text, str):
                raise ValueError(f"{path}:{lineno}: 'text' must be a string, got {text!r}")
            if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < num_labels:
                raise ValueError(f"{path}:{lineno}: 'label' must be an int in [0, {num_labels}), got {label!r}")
            texts.append(text)
            labels.append(label)
    return TextSplit(texts, labels)


def load_sst5(data: str | None = None, num_labels: int = 5) -> dict[str, TextSplit]:
    """Splits train / validation / test from the hub (`data=None`) or from a local folder of jsonl files."""
    if data is None:
        import datasets  # imported here: loading it costs seconds and the local path does not need it

        hub = datasets.load_dataset(HUB_ID)
        return {s: TextSplit(list(hub[s]["text"]), [int(x) for x in hub[s]["label"]]) for s in SPLITS}
    folder = Path(data)
    if not folder.is_dir():
        raise ValueError(f"data folder {str(folder)!r} does not exist")
    splits = {}
    for split, names in _LOCAL_NAMES.items():
        paths = [folder / n for n in names if (folder / n).is_file()]
        if not paths:
            raise ValueError(f"{folder} has none of {names} for the {split} split")
        splits[split] = read_jsonl(paths[0], num_labels)
    return splits


def synthetic_sst5(seed: int = 0, sizes: tuple[int, int, int] = (320, 64, 64)) -> dict[str, TextSplit]:
    """Tiny sentences whose label is carried by one word, for the smoke run; learnable by a tiny model."""
    words = [["awful", "dreadful"], ["dull", "weak"], ["okay", "average"], ["good", "nice"], ["superb", "brilliant"]]
    subjects = ["the film", "this movie", "the plot", "the acting", "the story", "the ending"]
    fillers = ["", "really ", "quite ", "honestly "]
    rng = random.Random(seed)
    splits = {}
    for split, n in zip(SPLITS, sizes):
        labels = [rng.randrange(5) for _ in range(n)]
        texts = [f"{rng.choice(subjects)} was {rng.choice(fillers)}{rng.choice(words[y])} ." for y in labels]
        splits[split] = TextSplit(texts, labels)
    return splits


def subsample(split: TextSplit, n: int | None, seed: int) -> TextSplit:
    """A seeded random subset of n rows (all rows when n is None or >= the split size)."""
    if n is None or n >= len(split):
        return split
    keep = sorted(random.Random(seed).sample(range(len(split)), n))
    return TextSplit([split.texts[i] for i in keep], [split.labels[i] for i in keep])


def encode(split: TextSplit, tokenizer, max_length: int, device: torch.device | str = "cpu") -> EncodedSplit:
    """Tokenise once: truncate and pad every row to max_length; batches cut the padding back later."""
    enc = tokenizer(split.texts, truncation=True, max_length=max_length, padding="max_length",
                    return_tensors="pt")
    mask = enc["attention_mask"]
    return EncodedSplit(enc["input_ids"].to(device), mask.to(device),
                        torch.tensor(split.labels, dtype=torch.long).to(device), mask.sum(dim=1))


def bucket_length(longest: int, buckets: tuple[int, ...]) -> int:
    for b in buckets:
        if b >= longest:
            return b
    raise ValueError(f"a row of {longest} tokens is longer than the largest bucket {buckets[-1]}")


def iter_batches(data: EncodedSplit, batch_size: int, buckets: tuple[int, ...], *, shuffle: bool,
                 generator: torch.Generator | None = None, full_batches: bool = False) -> Iterator[Batch]:
    """Shuffled batches for training; for evaluation, rows sorted by length (same metrics, less padding).

    `full_batches` completes a short last batch with filler rows labelled IGNORE_INDEX, so that every batch has
    the same row count (one compiled graph per bucket); the loss over the real rows is unchanged.
    """
    n = len(data)
    order = torch.randperm(n, generator=generator) if shuffle else torch.argsort(data.lengths, stable=True)
    device = data.input_ids.device
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        n_real = len(idx)
        width = bucket_length(int(data.lengths[idx].max()), buckets)
        if full_batches and n_real < batch_size:
            idx = torch.cat([idx, idx[:1].expand(batch_size - n_real)])
        idx_dev = idx.to(device, non_blocking=True)
        labels = data.labels[idx_dev]
        if len(idx) > n_real:
            labels[n_real:] = IGNORE_INDEX  # labels is a fresh tensor (advanced indexing copies)
        yield Batch(data.input_ids[idx_dev, :width], data.attention_mask[idx_dev, :width], labels, n_real)
