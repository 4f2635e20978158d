"""Judgements and Markdown feedback for the Part 2 cases: what was checked, expected vs got, and a hint.

Kept apart from cases.py so each case reads as one decision. Nothing here shows the reference's code.
"""

from __future__ import annotations

import math

from autograder.assignments.hw4_part2.config_cell import LoraSettings, grouped, matched_modules
from autograder.checks import fmt

__all__ = ["likely_cause", "listed", "init_problems", "check_scaling_case", "check_dropout", "compare_names",
           "wrapping_hint", "trainable_hint", "last_layer_hint", "check_targets"]

TOLERANCE = 1e-4  # relative, on outputs of order 1-10 in float32


def likely_cause(error: str) -> str:
    """"" or a paragraph naming the cause of an error from the student's code, for placeholders left in place."""
    if "ellipsis" in error:
        return ("\n\nLikely cause: a `...` placeholder of the given cell is still in your code; replace each `...` "
                "(and the `pass` in `forward`) with your implementation.")
    if "'MyLoraLayer' object has no attribute" in error:
        return ("\n\nLikely mistake: LoRA added twice. A `MyLoraLayer` was wrapped in another one, as when the "
                "replacement loop runs again over modules it already replaced; wrap each target module once.")
    if error.rstrip().endswith(("NotImplementedError:", "NotImplementedError")):
        return "\n\nLikely cause: a `raise NotImplementedError` placeholder is still in your code."
    return ""


def listed(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(f"`{n}`" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def init_problems(got: dict, want: dict, args: dict) -> list[str]:
    """Everything wrong with a fresh layer's A and B (an empty list when nothing is)."""
    problems = []
    if got["A_shape"] != want["A_shape"] or got["B_shape"] != want["B_shape"]:
        swapped = (sorted(map(tuple, (got["A_shape"], got["B_shape"])))
                   == sorted(map(tuple, (want["A_shape"], want["B_shape"]))))
        likely = ("A and B are swapped: your `lora_A` has B's shape and `lora_B` has A's. " if swapped else "")
        problems.append(f"`lora_A.weight` should have shape `{want['A_shape']}` (r x in_features) and `lora_B.weight` "
                        f"shape `{want['B_shape']}` (out_features x r); yours have `{got['A_shape']}` and "
                        f"`{got['B_shape']}`. {likely}Hint: `lora_A = nn.Linear(in_features, r)` maps the input down "
                        "to r dimensions, `lora_B = nn.Linear(r, out_features)` maps it back up.")
    if got["biases"]:
        problems.append(f"{listed(got['biases'])} should have no bias (`bias=False`): LoRA adds only B A x.")
    if got["B_nonzero"]:
        problems.append(f"B must start at exactly 0, so that a fresh LoRA model computes what the pretrained model "
                        f"computes; {got['B_nonzero']} entries of your `lora_B.weight` are non-zero (largest "
                        f"|value| {fmt(got['B_max'])}): B was left at `nn.Linear`'s random initialisation. "
                        "Hint: `nn.init.zeros_(self.lora_B.weight)`.")
    if not got["A_finite"]:
        problems.append("`lora_A.weight` contains NaN or infinity.")
    elif got["A_nonzero"] < 0.9 * got["A_numel"] or got["A_distinct"] < 2 or not got["A_changes_with_seed"]:
        problems.append("A must start random (Kaiming-uniform as `nn.Linear` does, or randn / sqrt(r)); yours is "
                        f"{'mostly zero' if got['A_nonzero'] < 0.9 * got['A_numel'] else 'constant or not random'}. "
                        "With A and B both fixed at zero, neither ever receives a gradient.")
    else:
        kaiming, course = 1 / math.sqrt(3 * args["in_features"]), 1 / math.sqrt(args["r"])
        low, high = 0.25 * min(kaiming, course), 4 * max(kaiming, course)
        if not low <= got["A_std"] <= high:
            problems.append(f"The entries of A should have a standard deviation of order 1/sqrt(in_features) "
                            f"(Kaiming) or 1/sqrt(r); we accept {fmt(low)} to {fmt(high)} here, yours is "
                            f"{fmt(got['A_std'])}.")
    return problems


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


def _close(got: list[float], want: list[float]) -> bool:
    return len(got) == len(want) and all(
        math.isfinite(g) and abs(g - w) <= TOLERANCE * (1 + abs(w)) for g, w in zip(got, want))


def check_scaling_case(mine: dict, ref: dict) -> None:
    """One (r, alpha): the output must be base + (alpha / r) * B A x; name the scale the student used."""
    r, alpha = mine["r"], mine["lora_alpha"]
    setting = f"With r = {r}, lora_alpha = {alpha}, and `lora_A.weight` and `lora_B.weight` set to known matrices"
    if "error" in mine:
        raise AssertionError(f"{setting}: we {mine['error']}.\n\nHint: `lora_A` must be `nn.Linear(in_features, r, "
                             "bias=False)` and `lora_B` `nn.Linear(r, out_features, bias=False)`."
                             + likely_cause(mine["error"]))
    if _close(mine["output"], ref["output"]):
        return
    delta = [o - b for o, b in zip(mine["output"], mine["base"])]
    lora = mine["lora"]
    scale = _dot(delta, lora) / _dot(lora, lora)
    residual = max(abs(d - scale * v) for d, v in zip(delta, lora))
    message = (f"{setting}, the layer should return `base_layer(x) + {fmt(alpha / r)} * B A x` "
               f"({fmt(alpha / r)} = lora_alpha / r).")
    if residual <= TOLERANCE * (1 + max(abs(v) for v in lora)) * 10:
        known = {r / alpha: "r / lora_alpha", alpha: "lora_alpha alone", 1.0: "no scaling", 0.0: "no LoRA term"}
        name = next((f", that is {label}" for value, label in known.items() if abs(scale - value) < 1e-3 * (1 + value)), "")
        message += f" Yours returns `base_layer(x) + {fmt(scale)} * B A x`{name}."
    else:
        message += (" Yours is not `base_layer(x)` plus a multiple of `B A x`. Hint: compute "
                    "`lora_B(lora_A(x))` (A first), scale it, and add it to `base_layer(x)`.")
    raise AssertionError(message)


def check_dropout(got: dict, p: float) -> None:
    """A = B = identity: eval residual = s x; train residual = s m x / (1 - p) with a 0/1 mask m; B = 0 gives base."""
    setting = f"A layer with `lora_dropout={p}`, A = B = identity (8 x 8)"
    first, second = got["eval"]
    if first != second:
        raise AssertionError(f"{setting}: in eval mode two calls on the same input gave different outputs. Dropout "
                             "must be off in eval mode; `nn.Dropout` does this for you.")
    base = got["base"]
    if not _close(got["train_b0"], base):
        worst = max(abs(t - b) for t, b in zip(got["train_b0"], base))
        raise AssertionError(f"{setting} and B = 0, in training mode: the output should be exactly `base_layer(x)` "
                             f"(dropout acts only on the input of the LoRA path), but it differs by up to {fmt(worst)}."
                             "\n\nLikely mistake: dropout on the base path (applied to `x` before `base_layer`, or to the base "
                             "output). Hint: `base_layer(x) + scale * lora_B(lora_A(dropout(x)))`.")
    scaled = [e - b for e, b in zip(first, base)]
    ratios = [(t - b) / s for t, b, s in zip(got["train"], base, scaled) if abs(s) > 1e-3]
    if not ratios:
        raise AssertionError(f"{setting}: the LoRA path added nothing to the output in eval mode.")
    kept = 1 / (1 - p)
    dropped = sum(abs(x) < 1e-3 for x in ratios)
    off = [x for x in ratios if abs(x) >= 1e-3 and abs(x - kept) > 1e-3 * kept]
    if dropped == 0 and all(abs(x - 1) < 1e-3 for x in ratios):
        raise AssertionError(f"{setting}, in training mode: no entry of the LoRA path's input was dropped, so "
                             "dropout is missing there. Hint: `lora_B(lora_A(dropout(x)))`.")
    if off or dropped == len(ratios):
        raise AssertionError(f"{setting}, in training mode: each entry of the LoRA term should be either dropped "
                             f"(0) or kept and scaled by 1 / (1 - p) = {fmt(kept)}, relative to eval mode; yours "
                             f"gave ratios such as {fmt(sorted(set(round(x, 3) for x in ratios))[:4])}.")


def compare_names(got: list[str], want: list[str], what: str, hint: str, context: str = "") -> None:
    extra, missing = sorted(set(got) - set(want)), sorted(set(want) - set(got))
    if not extra and not missing and len(got) == len(set(got)):
        return
    lines = [context] if context else []
    lines.append(f"Expected {len(want)} {what}; yours has {len(got)}.")
    if extra:
        lines.append(f"- not expected: {listed(extra)}")
    if missing:
        lines.append(f"- missing: {listed(missing)}")
    if hint:
        lines.append(hint)
    raise AssertionError("\n\n".join(lines))


def wrapping_hint(got: list[str], want: list[str]) -> str:
    nested = [n for n in got if any(n != m and n.startswith(m + ".") for m in got)]
    if nested:
        return ("Hint: some LoRA layers sit inside other LoRA layers, so those projections were wrapped twice "
                "(for instance, the wrapping ran again on modules that were already replaced).")
    if any(not n.endswith((".query", ".value")) for n in got):
        return "Hint: wrap the modules named in `lora_config.target_modules` (`query` and `value`), and only those."
    return "Hint: every module whose name ends with one of `lora_config.target_modules` should be replaced."


def trainable_hint(got: list[str], want: list[str]) -> str:
    extra, missing = set(got) - set(want), set(want) - set(got)
    hints = []
    if any("lora_" not in n and not n.startswith("classifier.") for n in extra):
        hints.append("freeze every pretrained parameter (`requires_grad = False`)")
    if any(n.startswith("classifier.") for n in missing):
        hints.append("keep the new classification head `classifier` trainable")
    if any("lora_" in n for n in missing):
        hints.append("leave `lora_A` and `lora_B` trainable")
    return ("Hint: " + "; ".join(hints) + ".") if hints else ""


def last_layer_hint(got: list[str], want: list[str]) -> str:
    extra = [n for n in got if n not in want]
    if extra and not set(want) - set(got):
        return ("Hint: only part of the model was frozen; freeze every parameter of `model` (`model.parameters()`), "
                "then unfreeze those of `model.classifier`.")
    if not got:
        return "Hint: the classifier was frozen too; unfreeze the parameters of `model.classifier` after freezing."
    return "Hint: freeze every parameter of `model`, then unfreeze those of `model.classifier`."


def check_targets(settings: LoraSettings, cell_label: str) -> None:
    """The modules the config's targets select in bert-base must be the attention query and value projections."""
    targets = list(settings.target_modules)
    want, got = matched_modules(("query", "value")), matched_modules(tuple(targets))
    if set(got) == set(want):
        return
    lines = [f"In your config cell ({cell_label}), `target_modules={targets}` selects "
             + (", ".join(grouped(got)) if got else "no module at all")
             + f" in bert-base. Expected the attention `query` and `value` projections: {', '.join(grouped(want))}."]
    leaves = {t.rsplit(".", 1)[-1] for t in targets}
    if "key" in leaves:
        lines.append("Likely mistake: LoRA on `key`. The course (like the LoRA paper) adapts the query and value "
                     "projections W_q and W_v, not the key projection W_k.")
    elif not got:
        lines.append("Each name is matched against the end of a module's name, such as "
                     "`bert.encoder.layer.0.attention.self.query`.")
    elif set(got) < set(want):
        lines.append("Some of the attention projections LoRA should adapt are missing: list both `query` and `value`.")
    raise AssertionError("\n\n".join(lines))
