"""HW4 Part 2 reference: LoRA for BERT, written with the course notebook's names.

`MyLoraLayer` wraps an existing `nn.Linear` as `base_layer` and adds a low-rank path:

    y = base_layer(x) + (lora_alpha / r) * lora_B(lora_A(dropout(x)))

with `lora_A = nn.Linear(in, r)` and `lora_B = nn.Linear(r, out)`, both without bias. B starts at exactly zero,
so a fresh model computes exactly what the base model computes. Dropout acts on the LoRA input only.

Two initialisations of A are offered, both with B = 0:
- `init="kaiming"` (default; the handout, loralib and peft): `kaiming_uniform_(A, a=sqrt(5))`, drawn in peft's
  order (A built, B built, then A drawn), so one seed gives peft's A bit for bit.
- `init="course"`: the course notebook's `A = randn(r, in) / sqrt(r)`, drawn right after `lora_A` is built and
  before `lora_B` is built. Its public test seeds 1337 and checks exact values of A, so the draw order matters.

Merging folds `(lora_alpha / r) * B @ A` into the base weight for inference and `unmerge` takes it back out.
Merging is always explicit: `.eval()` never rewrites weights.
"""

import math
from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "MyLoraConfig", "MyLoraLayer", "get_lora_model", "inject_lora", "lora_layers", "merge_lora", "unmerge_lora",
    "get_model_params_info", "freeze_all_but_classifier",
]


@dataclass(frozen=True)
class MyLoraConfig:
    """A plain holder, positional as in the course: `MyLoraConfig(r, target_modules, lora_alpha, lora_dropout)`."""

    r: int = 16  # rank of B @ A
    target_modules: tuple[str, ...] = ("query", "value")  # module-name suffixes to wrap
    lora_alpha: float = 32  # the update is scaled by lora_alpha / r
    lora_dropout: float = 0.0  # dropout on the LoRA input only
    modules_to_save: tuple[str, ...] = ("classifier",)  # module-name suffixes left trainable
    init: str = "kaiming"  # how A is drawn: "kaiming" (handout, peft) or "course" (randn / sqrt(r))

    def __post_init__(self):
        # Accept a bare string or a list, as peft does, but store tuples so the config stays hashable.
        for name in ("target_modules", "modules_to_save"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        _check_hparams(self.r, self.lora_alpha, self.lora_dropout, self.init)
        if not self.target_modules:
            raise ValueError("target_modules must name at least one module, got an empty sequence")


def _check_hparams(r: int, lora_alpha: float, lora_dropout: float, init: str) -> None:
    if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
        raise ValueError(f"r must be a positive integer, got {r!r}")
    if not lora_alpha > 0:
        raise ValueError(f"lora_alpha must be positive, got {lora_alpha!r}")
    if not 0.0 <= lora_dropout <= 1.0:
        raise ValueError(f"lora_dropout must lie in [0, 1], got {lora_dropout!r}")
    if init not in ("kaiming", "course"):
        raise ValueError(f"init must be 'kaiming' or 'course', got {init!r}")


class MyLoraLayer(nn.Module):
    """`base_layer(x) + (lora_alpha / r) * lora_B(lora_A(dropout(x)))` around a frozen `nn.Linear`."""

    def __init__(self, base_layer: nn.Linear, r: int, lora_alpha: float, lora_dropout: float = 0.0,
                 init: str = "kaiming"):
        super().__init__()
        if not isinstance(base_layer, nn.Linear):
            raise ValueError(f"base_layer must be an nn.Linear, got {type(base_layer).__name__}")
        _check_hparams(r, lora_alpha, lora_dropout, init)
        self.base_layer = base_layer
        self.in_features, self.out_features = base_layer.in_features, base_layer.out_features
        self.r, self.lora_alpha, self.scaling = r, lora_alpha, lora_alpha / r
        self.lora_dropout = nn.Dropout(lora_dropout)
        self.merged = False
        # Built on the CPU, then moved, so that A depends on the CPU seed only, wherever the base lives.
        # Half-precision bases get float32 adapters: bf16 weights would round small Adam updates away.
        weight = base_layer.weight
        dtype = torch.float32 if weight.dtype in (torch.float16, torch.bfloat16) else weight.dtype
        self.lora_A = nn.Linear(self.in_features, r, bias=False, dtype=dtype, device="cpu")  # weight (r, in)
        if init == "course":
            with torch.no_grad():
                self.lora_A.weight.copy_(torch.randn(r, self.in_features, device="cpu") / math.sqrt(r))
        self.lora_B = nn.Linear(r, self.out_features, bias=False, dtype=dtype, device="cpu")  # weight (out, r)
        if init == "kaiming":
            nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.lora_A.to(weight.device)
        self.lora_B.to(weight.device)
        for p in base_layer.parameters():
            p.requires_grad_(False)

    def delta_weight(self) -> torch.Tensor:
        """(lora_alpha / r) * B @ A, shape (out, in): what merging adds to the base weight."""
        return (self.lora_B.weight @ self.lora_A.weight) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.base_layer(x)  # (..., out)
        if self.merged:
            return result
        lora_x = self.lora_dropout(x.to(self.lora_A.weight.dtype))
        return result + (self.lora_B(self.lora_A(lora_x)) * self.scaling).to(result.dtype)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the LoRA update into the base weight; forward then costs what the base layer costs."""
        if self.merged:
            raise RuntimeError("this MyLoraLayer is already merged; unmerge() it first")
        delta = self.delta_weight()
        if not torch.isfinite(delta).all():
            raise ValueError("refusing to merge: the LoRA update B @ A contains NaN or inf")
        self.base_layer.weight += delta.to(self.base_layer.weight.dtype)
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the LoRA update back out of the base weight (exact up to float rounding)."""
        if not self.merged:
            raise RuntimeError("this MyLoraLayer is not merged; nothing to unmerge")
        self.base_layer.weight -= self.delta_weight().to(self.base_layer.weight.dtype)
        self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, lora_alpha={self.lora_alpha}, merged={self.merged}"


def _matches(name: str, suffixes: tuple[str, ...]) -> bool:
    # Whole name components only: "value" matches "...self.value" but not "...self.my_value".
    return any(name == s or name.endswith("." + s) for s in suffixes)


def inject_lora(model: nn.Module, lora_config: MyLoraConfig) -> list[str]:
    """Replace every module whose name ends with a target by a `MyLoraLayer` around it; return the names."""
    names = [name for name, _ in model.named_modules() if name and _matches(name, lora_config.target_modules)]
    if not names:
        raise ValueError(f"no module name ends with any of target_modules={lora_config.target_modules}")
    for name in names:  # collected first: replacing while iterating named_modules() would revisit wrappers
        parent_name, _, child_name = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        child = getattr(parent, child_name)
        if not isinstance(child, nn.Linear):
            raise ValueError(f"target {name!r} is a {type(child).__name__}, not an nn.Linear")
        setattr(parent, child_name, MyLoraLayer(child, lora_config.r, lora_config.lora_alpha,
                                                lora_config.lora_dropout, init=lora_config.init))
    return names


def get_lora_model(model: nn.Module, lora_config: MyLoraConfig) -> nn.Module:
    """Wrap the target modules with LoRA and freeze everything but the LoRA matrices and `classifier`."""
    inject_lora(model, lora_config)
    for p in model.parameters():
        p.requires_grad_(False)
    # LoRA matrices are found by type, not by name, so a user module called "lora_A" stays frozen.
    for module in lora_layers(model):
        module.lora_A.weight.requires_grad_(True)
        module.lora_B.weight.requires_grad_(True)
    for suffix in lora_config.modules_to_save:
        _unfreeze_named(model, suffix)
    return model


def _unfreeze_named(model: nn.Module, suffix: str) -> None:
    modules = [m for name, m in model.named_modules() if name and _matches(name, (suffix,))]
    if not modules:
        raise ValueError(f"no module name ends with {suffix!r}; nothing to leave trainable")
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(True)


def freeze_all_but_classifier(model: nn.Module, classifier: str = "classifier") -> nn.Module:
    """Last-layer fine-tuning: only the parameters of the module named `classifier` stay trainable."""
    for p in model.parameters():
        p.requires_grad_(False)
    _unfreeze_named(model, classifier)
    return model


def lora_layers(model: nn.Module) -> list[MyLoraLayer]:
    return [m for m in model.modules() if isinstance(m, MyLoraLayer)]


def merge_lora(model: nn.Module) -> int:
    """Merge every LoRA layer of `model` (for inference); return how many were merged."""
    layers = lora_layers(model)
    for layer in layers:
        layer.merge()
    return len(layers)


def unmerge_lora(model: nn.Module) -> int:
    """Undo `merge_lora`; return how many layers were unmerged."""
    layers = lora_layers(model)
    for layer in layers:
        layer.unmerge()
    return len(layers)


def get_model_params_info(model: nn.Module) -> tuple[int, int, float]:
    """(total parameters, trainable parameters, trainable share in percent)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable, 100.0 * trainable / total if total else 0.0
