"""HW4 Part 2 probes: LoRA spot checks on small random-init BERTs, measured once for both sides.

The grader imports this module and calls `measure_*` with solution.lora; the worker sends this file's text to
the student's kernel, where the `probe_*` entry points call the same functions with the student's definitions
(found by `_autograder.load`). Nothing is downloaded or trained: every model is `BertForSequenceClassification`
built from a small `BertConfig` with a seeded random init. Inputs arrive as JSON; results leave as plain data.
In the kernel these names share the student's globals, hence the `p2_`, `measure_` and `probe_` prefixes.
"""

import ast
import copy
import types

import torch
from torch import nn

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


def p2_make_config(Config, r, lora_alpha, lora_dropout, describe=_p2_describe) -> tuple:
    """(config, error): the student's MyLoraConfig, or a plain holder when theirs fails (its error reported)."""
    try:
        return Config(r, list(_P2_TARGETS), lora_alpha, lora_dropout), None
    except Exception as error:  # graded in 2.1; the other checks go on with a plain holder
        holder = types.SimpleNamespace(r=r, target_modules=list(_P2_TARGETS), lora_alpha=lora_alpha,
                                       lora_dropout=lora_dropout)
        return holder, describe(error)


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
    """For each rank: which modules became LoRA layers, which parameters train, the counts; at one rank also
    the largest |logits with LoRA - logits of the base| of a fresh model (eval mode)."""
    ranks, result = {}, {"config_error": None}
    for r in args["ranks"]:
        entry = {}
        ranks[str(r)] = entry
        model = p2_bert(args["config"], args["seed"])
        base = copy.deepcopy(model).eval() if r == args["init_rank"] else None
        config, result["config_error"] = p2_make_config(Config, r, args["lora_alpha"], args["lora_dropout"], describe)
        try:
            lora, entry["returned_none"] = p2_apply(get_lora_model, model, config)
            entry["wrapped"] = [name for name, _ in p2_lora_modules(lora)]
            entry["trainable"] = sorted(n for n, p in lora.named_parameters() if p.requires_grad)
            entry["counts"] = p2_counts(lora)
            if base is not None:
                batch = p2_batch(args["config"], args["seed"], args["rows"], args["length"])
                with torch.no_grad():
                    got = lora.eval()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                    want = base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                result["init_max_diff"] = float((got.float() - want.float()).abs().max())
                result["init_exact"] = bool(torch.equal(got, want))
        except Exception as error:
            entry["error"] = describe(error)
    result["ranks"] = ranks
    return result


def measure_step(Config, get_lora_model, args: dict) -> dict:
    """One Adam step on the trainable parameters (as the notebook's `fit` builds it), B made non-zero first."""
    model = p2_bert(args["config"], args["seed"])
    config, _ = p2_make_config(Config, args["r"], args["lora_alpha"], args["lora_dropout"])
    lora, _ = p2_apply(get_lora_model, model, config)
    g = torch.Generator().manual_seed(args["seed"])
    with torch.no_grad():
        for _, module in p2_lora_modules(lora):
            weight = module.lora_B.weight
            weight.copy_(0.02 * torch.randn(weight.shape, generator=g))
    groups = p2_param_groups(lora)
    before = {n: p.detach().clone() for n, p in lora.named_parameters()}
    batch = p2_batch(args["config"], args["seed"], args["rows"], args["length"])
    lora.train()
    optimizer = torch.optim.Adam([p for p in lora.parameters() if p.requires_grad], lr=args["lr"])
    lora(**batch).loss.backward()
    optimizer.step()
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


def p2_run_cell(source: str, model: nn.Module, describe=_p2_describe) -> tuple:
    """Run a top-level cell statement by statement on `model`, with downloads and training replaced by stubs.

    A failing statement is recorded and the next one runs, so a template's `raise NotImplementedError` is
    reported while the cell is still judged by what it did to `model`.
    """
    def fresh(*args, **kwargs):
        return model

    def skipped(*args, **kwargs):
        return {}

    stubs = {name: types.SimpleNamespace(from_pretrained=fresh) for name in _P2_STUB_NAMES}  # no download
    stubs.update(model=model, load_model=fresh, fit=skipped, train_epoch=skipped, evaluate=skipped,
                 device=torch.device("cpu"))
    namespace = {**globals(), "params_info": {}, "histories": {}, **stubs}
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


# Kernel entry points: only called inside the student's kernel, where `_autograder` exists.

def _p2_lora_functions() -> tuple:
    Config, get_lora_model = _autograder.load("MyLoraConfig"), _autograder.load("get_lora_model")
    # get_lora_model finds MyLoraLayer among its globals; a definition cell that failed must not hide it.
    if "MyLoraLayer" not in get_lora_model.__globals__:
        get_lora_model.__globals__["MyLoraLayer"] = _autograder.load("MyLoraLayer")
    return Config, get_lora_model


def probe_setup(args):
    return p2_defaults(globals(), args["constants"], args["device"])


def probe_layer_init(args):
    return measure_layer_init(_autograder.load("MyLoraLayer"), args)


def probe_scaling(args):
    return measure_scaling(_autograder.load("MyLoraLayer"), args, describe=_autograder.describe)


def probe_dropout(args):
    return measure_dropout(_autograder.load("MyLoraLayer"), args)


def probe_model(args):
    return measure_model(*_p2_lora_functions(), args, describe=_autograder.describe)


def probe_step(args):
    return measure_step(*_p2_lora_functions(), args)


def probe_last_layer(args):
    if args["source"] is None:
        raise _autograder.Missing("no last-layer cell was found: the top-level cell that sets `requires_grad` "
                                  "so that only `model.classifier` trains")
    return measure_last_layer(lambda model: p2_run_cell(args["source"], model, _autograder.describe), args)
