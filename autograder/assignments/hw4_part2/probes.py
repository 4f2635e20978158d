"""HW4 Part 2 probes: LoRA spot checks on small random-init BERTs, measured once for both sides.

The grader imports this module and calls `measure_*` with solution.lora. In the measurement process each call
runs in a fresh process holding the notebook's imports and definitions, with this file's text executed in a
private namespace; its `probe_*` entry points call the same functions with the student's definitions (found by
`_autograder.load`). Calls share no state, so a probe may change what it is given. torch.optim cannot run
there: the one training step below is plain SGD written out. Nothing is downloaded or trained: every model is
`BertForSequenceClassification` built from a small `BertConfig` with a seeded random init. Inputs arrive as JSON;
results leave as plain data.
"""

import ast
import copy
import types
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:  # bound by the measurement process only (see ProbeHelpers)
    from autograder.assignment import ProbeHelpers
    _autograder: ProbeHelpers

_P2_TARGETS = ["query", "value"]
_P2_STUB_NAMES = ("BertForSequenceClassification", "AutoModelForSequenceClassification")


def _p2_describe(error) -> str:
    return f"{type(error).__name__}: {error}"[:1500]


def p2_bert(config: dict, seed: int):
    """A random-init BERT classifier of the given shape (no download)."""
    from transformers import BertConfig, BertForSequenceClassification
    torch.manual_seed(seed)
    return BertForSequenceClassification(BertConfig(**config))


def p2_batch(config: dict, seed: int, rows: int, length: int) -> dict:
    """Token ids, an attention mask with padded tails, and labels."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, config["vocab_size"], (rows, length), generator=g)
    lengths = torch.randint(length // 2, length + 1, (rows,), generator=g)
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    labels = torch.randint(0, config["num_labels"], (rows,), generator=g)
    return {"input_ids": ids * mask, "attention_mask": mask, "labels": labels}


def p2_lora_modules(model: nn.Module) -> list:
    """(name, module) of every LoRA layer, recognised by its `lora_A` and `lora_B` submodules, not its class."""
    return [(name, m) for name, m in model.named_modules()
            if isinstance(getattr(m, "lora_A", None), nn.Module) and isinstance(getattr(m, "lora_B", None), nn.Module)]


def p2_param_groups(model: nn.Module) -> dict:
    """Parameter name -> "lora" (inside a lora_A / lora_B), "classifier" or "base"."""
    owner = {id(p): "lora" for _, m in p2_lora_modules(model) for p in [*m.lora_A.parameters(), *m.lora_B.parameters()]}
    classifier = getattr(model, "classifier", None)
    for p in classifier.parameters() if isinstance(classifier, nn.Module) else []:
        owner.setdefault(id(p), "classifier")
    return {name: owner.get(id(p), "base") for name, p in model.named_parameters()}


def p2_counts(model: nn.Module) -> list:
    """[total, trainable], as the notebook's get_model_params_info counts them."""
    params = list(model.parameters())
    return [sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)]


def p2_make_config(Config, r, lora_alpha, lora_dropout, targets=None) -> object:
    """The notebook's MyLoraConfig (given by the course, not graded), or a plain holder when it fails."""
    targets = list(targets or _P2_TARGETS)
    try:
        return Config(r, targets, lora_alpha, lora_dropout)
    except Exception:  # the given class was broken: the checks go on with a holder of the same fields
        return types.SimpleNamespace(r=r, target_modules=targets, lora_alpha=lora_alpha, lora_dropout=lora_dropout)


def p2_apply(get_lora_model, model: nn.Module, config) -> tuple:
    """(LoRA model, whether get_lora_model returned None): a forgotten `return` still grades the modified model."""
    result = get_lora_model(model, config)
    return (model, True) if result is None else (result, False)


def p2_defaults(namespace: dict, constants: dict, device: str) -> list:
    """Give definitions that read the notebook's top-level constants (`LORA_DROPOUT`, literals only) and `device`
    what the skipped setup cell would have; returns the names added."""
    missing = {name: value for name, value in {**constants, "device": torch.device(device)}.items()
               if name not in namespace}
    namespace.update(missing)
    return sorted(missing)


def p2_sgd_step(model: nn.Module, batch: dict, lr: float) -> None:
    """One plain SGD step on the parameters that require grad (what an optimizer over them would touch)."""
    model.train()
    model(**batch).loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad and p.grad is not None:
                p -= lr * p.grad


def measure_layer_init(Layer, args: dict) -> dict:
    """A fresh MyLoraLayer: shapes, biases, B and A, and whether A changes with the seed."""
    size = (args["in_features"], args["out_features"])
    torch.manual_seed(args["seed"])
    layer = Layer(nn.Linear(*size), args["r"], args["lora_alpha"], args["lora_dropout"])
    torch.manual_seed(args["seed"] + 1)
    other = Layer(nn.Linear(*size), args["r"], args["lora_alpha"], args["lora_dropout"])
    A, B = layer.lora_A.weight.detach().float(), layer.lora_B.weight.detach().float()
    A2 = other.lora_A.weight.detach().float()
    return {
        "A_shape": list(A.shape), "B_shape": list(B.shape),
        "biases": [n for n in ("lora_A", "lora_B") if getattr(getattr(layer, n), "bias", None) is not None],
        "B_nonzero": int((B != 0).sum()), "B_max": float(B.abs().max()) if B.numel() else 0.0,
        "A_numel": A.numel(), "A_nonzero": int((A != 0).sum()), "A_finite": bool(torch.isfinite(A).all()),
        "A_std": float(A.std()) if A.numel() > 1 else 0.0, "A_distinct": int(torch.unique(A).numel()),
        "A_changes_with_seed": A.shape != A2.shape or not torch.equal(A, A2),
    }


def measure_scaling(Layer, args: dict, describe=_p2_describe) -> dict:
    """Output of a layer whose base, A and B are set to known matrices (eval mode, no dropout), per (r, alpha)."""
    g = torch.Generator().manual_seed(args["seed"])
    n_in, n_out, rows = args["in_features"], args["out_features"], args["rows"]
    cases = []
    for r, alpha in args["pairs"]:
        W, b = torch.randn(n_out, n_in, generator=g), torch.randn(n_out, generator=g)
        A, B = torch.randn(r, n_in, generator=g), torch.randn(n_out, r, generator=g)
        x = torch.randn(rows, n_in, generator=g)
        case = {"r": r, "lora_alpha": alpha, "base": torch.nn.functional.linear(x, W, b).flatten().tolist(),
                "lora": (x @ A.T @ B.T).flatten().tolist()}
        step = "build the layer"
        try:
            base = nn.Linear(n_in, n_out)
            with torch.no_grad():
                base.weight.copy_(W)
                base.bias.copy_(b)
            layer = Layer(base, r, alpha, 0.0)
            step = "set lora_A.weight to an (r, in_features) matrix"
            with torch.no_grad():
                layer.lora_A.weight.copy_(A)
                step = "set lora_B.weight to an (out_features, r) matrix"
                layer.lora_B.weight.copy_(B)
                step = "run forward in eval mode"
                layer.eval()
                case["output"] = layer(x).float().flatten().tolist()
        except Exception as error:
            case["error"] = f"could not {step}: {describe(error)}"
        cases.append(case)
    return {"cases": cases}


def measure_dropout(Layer, args: dict) -> dict:
    """A = B = identity: eval twice, train with B = I, train with B = 0, against the undropped base output."""
    g = torch.Generator().manual_seed(args["seed"])
    size, rows, p = args["size"], args["rows"], args["p"]
    W, b = torch.randn(size, size, generator=g), torch.randn(size, generator=g)
    signs = torch.randint(0, 2, (rows, size), generator=g) * 2 - 1
    x = signs * (0.5 + torch.rand(rows, size, generator=g))  # |x| >= 0.5: ratios below stay well defined
    base = nn.Linear(size, size)
    with torch.no_grad():
        base.weight.copy_(W)
        base.bias.copy_(b)
    layer = Layer(base, size, args["lora_alpha"], p)
    result = {"base": torch.nn.functional.linear(x, W, b).flatten().tolist()}
    with torch.no_grad():
        layer.lora_A.weight.copy_(torch.eye(size))
        layer.lora_B.weight.copy_(torch.eye(size))
        layer.eval()
        result["eval"] = [layer(x).float().flatten().tolist() for _ in range(2)]
        layer.train()
        torch.manual_seed(args["seed"])
        result["train"] = layer(x).float().flatten().tolist()
        layer.lora_B.weight.zero_()
        result["train_b0"] = layer(x).float().flatten().tolist()
    return result


def measure_model(Config, get_lora_model, args: dict, describe=_p2_describe) -> dict:
    """With the course's targets, for each rank: which modules became LoRA layers, which parameters train, the
    counts. With the student's own configuration: the largest |logits with LoRA - logits of the base| of a fresh
    model (eval mode)."""
    ranks: dict[str, dict[str, Any]] = {}
    for r in args["ranks"]:
        entry: dict[str, Any] = {}
        ranks[str(r)] = entry
        try:
            config = p2_make_config(Config, r, args["lora_alpha"], args["lora_dropout"], args["targets"])
            lora, entry["returned_none"] = p2_apply(get_lora_model, p2_bert(args["config"], args["seed"]), config)
            entry["wrapped"] = [name for name, _ in p2_lora_modules(lora)]
            entry["trainable"] = sorted(n for n, p in lora.named_parameters() if p.requires_grad)
            entry["counts"] = p2_counts(lora)
        except Exception as error:
            entry["error"] = describe(error)
    result: dict[str, Any] = {"ranks": ranks}
    own = args["student"]
    try:
        model = p2_bert(args["config"], args["seed"])
        base = copy.deepcopy(model).eval()
        config = p2_make_config(Config, own["r"], own["lora_alpha"], own["lora_dropout"], own["target_modules"])
        lora, _ = p2_apply(get_lora_model, model, config)
        batch = p2_batch(args["config"], args["seed"], args["rows"], args["length"])
        with torch.no_grad():
            got = lora.eval()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            want = base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        result["init_max_diff"] = float((got.float() - want.float()).abs().max())
        result["init_exact"] = bool(torch.equal(got, want))
    except Exception as error:
        result["init_error"] = describe(error)
    return result


def measure_step(Config, get_lora_model, args: dict) -> dict:
    """One SGD step on the trainable parameters (as the notebook's training loop would take), B made non-zero
    first so that every LoRA matrix receives a gradient."""
    model = p2_bert(args["config"], args["seed"])
    config = p2_make_config(Config, args["r"], args["lora_alpha"], args["lora_dropout"], args["targets"])
    lora, _ = p2_apply(get_lora_model, model, config)
    g = torch.Generator().manual_seed(args["seed"])
    with torch.no_grad():
        for _, module in p2_lora_modules(lora):
            weight = module.lora_B.weight
            weight.copy_(0.02 * torch.randn(weight.shape, generator=g))
    groups = p2_param_groups(lora)
    before = {n: p.detach().clone() for n, p in lora.named_parameters()}
    p2_sgd_step(lora, p2_batch(args["config"], args["seed"], args["rows"], args["length"]), args["lr"])
    after = dict(lora.named_parameters())
    changed = [n for n in groups if not torch.equal(before[n], after[n].detach())]
    return {"base_changed": [n for n in changed if groups[n] == "base"],
            "base_total": sum(g == "base" for g in groups.values()),
            "trained": [n for n in changed if groups[n] != "base"]}


def measure_last_layer(apply, args: dict) -> dict:
    """`apply(model) -> (model, errors)` on a fresh model: which parameters are left trainable."""
    model, errors = apply(p2_bert(args["config"], args["seed"]))
    return {"trainable": sorted(n for n, p in model.named_parameters() if p.requires_grad),
            "counts": p2_counts(model), "errors": errors}


def p2_run_cell(source: str, model: nn.Module, student: dict, describe=_p2_describe) -> tuple:
    """Run a top-level cell statement by statement on `model`, in a copy of the student's globals, with
    downloads and training replaced by stubs.

    A failing statement is recorded and the next one runs, so a template's `raise NotImplementedError` is
    reported while the cell is still judged by what it did to `model`.
    """
    def fresh(*args, **kwargs):
        return model

    def skipped(*args, **kwargs):
        return {}

    # from_pretrained gives back `model`: nothing is downloaded
    stubs: dict[str, Any] = {name: types.SimpleNamespace(from_pretrained=fresh) for name in _P2_STUB_NAMES}
    stubs.update(model=model, load_model=fresh, fit=skipped, train_epoch=skipped, evaluate=skipped,
                 device=torch.device("cpu"))
    namespace = {**student, "params_info": {}, "histories": {}, **stubs}
    errors = []
    for node in ast.parse(source).body:
        try:
            exec(compile(ast.Module([node], []), "<last-layer cell>", "exec"), namespace)
        except Exception as error:
            errors.append(f"line {node.lineno}: {describe(error)}"[:300])
        if isinstance(node, (ast.Import, ast.ImportFrom)):  # an import must not bring the real download back
            namespace.update({k: v for k, v in stubs.items() if k in _P2_STUB_NAMES})
    result = namespace.get("model")
    return (result if isinstance(result, nn.Module) else model), errors


# Entry points: called only in the measurement process, where `_autograder` exists.

def _p2_prepare(args: dict) -> None:
    p2_defaults(_autograder.namespace, args.get("constants", {}), "cpu")


def _p2_lora_functions(args: dict) -> tuple[Any, Any]:
    _p2_prepare(args)
    Config, get_lora_model = _autograder.load("MyLoraConfig"), _autograder.load("get_lora_model")
    # get_lora_model finds MyLoraLayer among its globals; a definition cell that failed must not hide it.
    if "MyLoraLayer" not in get_lora_model.__globals__:
        get_lora_model.__globals__["MyLoraLayer"] = _autograder.load("MyLoraLayer")
    return Config, get_lora_model


def _p2_layer(args):
    _p2_prepare(args)
    return _autograder.load("MyLoraLayer")


def probe_layer_init(args: dict) -> dict:
    return measure_layer_init(_p2_layer(args), args)


def probe_scaling(args: dict) -> dict:
    return measure_scaling(_p2_layer(args), args, describe=_autograder.describe)


def probe_dropout(args: dict) -> dict:
    return measure_dropout(_p2_layer(args), args)


def probe_model(args: dict) -> dict:
    return measure_model(*_p2_lora_functions(args), args, describe=_autograder.describe)


def probe_step(args: dict) -> dict:
    return measure_step(*_p2_lora_functions(args), args)


def probe_last_layer(args: dict) -> dict:
    if args["source"] is None:
        raise _autograder.Missing("no last-layer cell was found: the top-level cell that sets `requires_grad` "
                                  "so that only `model.classifier` trains")
    _p2_prepare(args)
    student = _autograder.namespace
    return measure_last_layer(lambda model: p2_run_cell(args["source"], model, student, _autograder.describe), args)
