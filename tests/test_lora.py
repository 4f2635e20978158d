"""solution/lora.py against its oracles: peft's LoRA, the formula, and the parameter counts of the handout."""

import copy
import math

import pytest
import torch
from torch import nn

from solution.lora import (MyLoraConfig, MyLoraLayer, freeze_all_but_classifier, get_lora_model,
                           get_model_params_info, inject_lora, lora_layers, merge_lora, unmerge_lora)

transformers = pytest.importorskip("transformers", reason="transformers is a runtime requirement")
peft = pytest.importorskip("peft", reason="peft is the LoRA oracle (requirements-dev.txt)")
from transformers import BertConfig, BertForSequenceClassification  # noqa: E402

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, num_labels=5)
TARGETS = ("query", "value")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny models gain nothing from threads, and OpenMP threads on a busy 2-core box wait on each other.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_bert(seed: int = 0, dtype=torch.float32) -> nn.Module:
    torch.manual_seed(seed)
    return BertForSequenceClassification(BertConfig(**TINY)).to(dtype)


def tiny_inputs(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, TINY["vocab_size"], (4, 11), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0  # one padded row, so the attention mask matters
    return {"input_ids": ids, "attention_mask": mask}


def randomise_B(model: nn.Module, seed: int = 2, std: float = 0.5) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora_layers(model):
            w = layer.lora_B.weight
            w.copy_(torch.randn(w.shape, generator=g, dtype=w.dtype) * std)


def logits(model: nn.Module, inputs) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(**inputs).logits


# --- config ---------------------------------------------------------------------------------------------------------

def test_config_is_positional_like_the_course():
    cfg = MyLoraConfig(8, ["query", "value"], 16, 0.1)
    assert (cfg.r, cfg.target_modules, cfg.lora_alpha, cfg.lora_dropout) == (8, ("query", "value"), 16, 0.1)
    assert MyLoraConfig(4, "query", 8, 0.0).target_modules == ("query",)


@pytest.mark.parametrize("kwargs", [dict(r=0), dict(r=-1), dict(r=1.5), dict(r=True), dict(lora_alpha=0),
                                    dict(lora_dropout=1.5), dict(lora_dropout=-0.1), dict(init="xavier"),
                                    dict(target_modules=())])
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        MyLoraConfig(**kwargs)


# --- the layer ------------------------------------------------------------------------------------------------------

def test_layer_shapes_and_kaiming_init():
    torch.manual_seed(0)
    layer = MyLoraLayer(nn.Linear(300, 200), r=64, lora_alpha=32, lora_dropout=0.0)
    A, B = layer.lora_A.weight, layer.lora_B.weight
    assert A.shape == (64, 300) and B.shape == (200, 64)
    assert layer.lora_A.bias is None and layer.lora_B.bias is None
    assert torch.count_nonzero(B) == 0
    bound = 1 / math.sqrt(300)  # kaiming_uniform_(a=sqrt(5)) on fan_in 300
    assert A.abs().max() <= bound and A.abs().max() > 0.9 * bound
    assert A.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert layer.scaling == 0.5
    assert not any(p.requires_grad for p in layer.base_layer.parameters())


def test_course_init_draws_A_right_after_lora_A():
    base = nn.Linear(48, 40)
    torch.manual_seed(1337)
    layer = MyLoraLayer(base, r=4, lora_alpha=8, lora_dropout=0.0, init="course")
    # The course recipe replayed: lora_A is built (its default init draws), then A = randn(r, in) / sqrt(r).
    torch.manual_seed(1337)
    nn.Linear(48, 4, bias=False)
    expected = torch.randn(4, 48) / math.sqrt(4)
    assert torch.equal(layer.lora_A.weight, expected)
    assert torch.count_nonzero(layer.lora_B.weight) == 0


def test_kaiming_init_matches_peft_draw_for_draw():
    mine, theirs = tiny_bert(), tiny_bert()
    torch.manual_seed(7)
    get_lora_model(mine, MyLoraConfig(4, TARGETS, 8, 0.1))
    torch.manual_seed(7)
    theirs = peft.get_peft_model(theirs, peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1,
                                                          target_modules=list(TARGETS)))
    ours = [layer.lora_A.weight for layer in lora_layers(mine)]
    peft_A = [m.lora_A["default"].weight for m in theirs.modules() if isinstance(m, peft.tuners.lora.Linear)]
    assert len(ours) == len(peft_A) == 4
    for a, b in zip(ours, peft_A):
        assert torch.equal(a, b)


def test_forward_is_the_formula():
    torch.manual_seed(0)
    base = nn.Linear(6, 5).double()
    layer = MyLoraLayer(base, r=3, lora_alpha=12, lora_dropout=0.3)
    with torch.no_grad():
        layer.lora_B.weight.copy_(torch.arange(15, dtype=torch.float64).reshape(5, 3) / 10)
    x = torch.randn(7, 6, dtype=torch.float64)
    A, B = layer.lora_A.weight, layer.lora_B.weight
    expected = base(x) + (12 / 3) * (x @ A.T @ B.T)
    layer.eval()
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-12)


def test_zero_initial_delta_is_exact_even_with_dropout():
    torch.manual_seed(0)
    base = nn.Linear(16, 8)
    layer = MyLoraLayer(base, r=4, lora_alpha=32, lora_dropout=0.5).train()
    x = torch.randn(10, 16)
    assert torch.equal(layer(x), base(x))


def test_dropout_acts_on_the_lora_path_only():
    torch.manual_seed(0)
    base = nn.Linear(16, 8)
    x = torch.randn(10, 16)
    dropped_all = MyLoraLayer(base, r=4, lora_alpha=8, lora_dropout=1.0)
    with torch.no_grad():
        dropped_all.lora_B.weight.fill_(1.0)
    assert torch.equal(dropped_all.train()(x), base(x))  # p = 1 zeroes the LoRA input, never the base path
    assert not torch.allclose(dropped_all.eval()(x), base(x))  # ... and is off in eval mode

    half = MyLoraLayer(base, r=4, lora_alpha=8, lora_dropout=0.5).train()
    with torch.no_grad():
        half.lora_B.weight.fill_(1.0)
    assert not torch.equal(half(x), half(x))  # active in training mode


def test_half_precision_base_gets_float32_adapters():
    base = nn.Linear(8, 4).to(torch.bfloat16)
    layer = MyLoraLayer(base, r=2, lora_alpha=4, lora_dropout=0.0)
    assert layer.lora_A.weight.dtype == layer.lora_B.weight.dtype == torch.float32
    x = torch.randn(3, 8, dtype=torch.bfloat16)
    assert layer(x).dtype == torch.bfloat16 and torch.equal(layer(x), base(x))


def test_layer_rejects_non_linear_base():
    with pytest.raises(ValueError, match="nn.Linear"):
        MyLoraLayer(nn.Conv1d(3, 3, 1), r=2, lora_alpha=4, lora_dropout=0.0)


# --- the model: peft as the oracle ----------------------------------------------------------------------------------

def _mine_and_peft(dropout: float):
    """Identical float64 tiny BERTs with LoRA from us and from peft, A and B copied from ours to peft's."""
    base = tiny_bert(dtype=torch.float64)
    mine = get_lora_model(copy.deepcopy(base), MyLoraConfig(4, TARGETS, 8, dropout))
    randomise_B(mine)
    theirs = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(
        r=4, lora_alpha=8, lora_dropout=dropout, target_modules=list(TARGETS)))
    names = [n for n, m in theirs.named_modules() if isinstance(m, peft.tuners.lora.Linear)]
    with torch.no_grad():
        for name in names:
            ours = mine.get_submodule(name.removeprefix("base_model.model."))
            peft_layer = theirs.get_submodule(name)
            peft_layer.lora_A["default"].weight.copy_(ours.lora_A.weight)
            peft_layer.lora_B["default"].weight.copy_(ours.lora_B.weight)
    return base, mine, theirs


def test_outputs_equal_peft_in_float64():
    base, mine, theirs = _mine_and_peft(dropout=0.0)
    inputs = tiny_inputs()
    ours, peft_logits = logits(mine, inputs), logits(theirs, inputs)
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, peft_logits, rtol=0, atol=1e-6)
    assert (ours - logits(base, inputs)).abs().max() > 1e-3  # B != 0: the comparison is not vacuous


def test_training_mode_equals_peft_with_the_same_dropout_draws():
    # Dropout draws in the same order as peft's (base path first, then dropout on the LoRA input), so with one seed
    # the training-mode outputs agree too; dropout on the base path would break this.
    _, mine, theirs = _mine_and_peft(dropout=0.4)
    inputs = tiny_inputs()
    mine.train()
    theirs.train()
    torch.manual_seed(11)
    ours = mine(**inputs).logits
    torch.manual_seed(11)
    peft_logits = theirs(**inputs).logits
    torch.testing.assert_close(ours, peft_logits, rtol=0, atol=1e-6)


def test_merge_equals_unmerged_and_peft_merge():
    base, mine, theirs = _mine_and_peft(dropout=0.4)
    inputs = tiny_inputs()
    unmerged = logits(mine, inputs)
    assert merge_lora(mine) == 4
    merged = logits(mine, inputs)
    torch.testing.assert_close(merged, unmerged, rtol=0, atol=1e-5)
    assert (merged - logits(base, inputs)).abs().max() > 1e-3
    torch.testing.assert_close(merged, logits(theirs.merge_and_unload(), inputs), rtol=0, atol=1e-6)
    unmerge_lora(mine)
    for layer, (name, _) in zip(lora_layers(mine), ((n, m) for n, m in mine.named_modules()
                                                     if isinstance(m, MyLoraLayer))):
        torch.testing.assert_close(layer.base_layer.weight, base.get_submodule(name).weight, rtol=0, atol=1e-12)
    torch.testing.assert_close(logits(mine, inputs), unmerged, rtol=0, atol=1e-10)


def test_merge_is_explicit_and_guarded():
    torch.manual_seed(0)
    layer = MyLoraLayer(nn.Linear(8, 8), r=2, lora_alpha=4, lora_dropout=0.0)
    before = layer.base_layer.weight.clone()
    layer.eval().train()
    assert torch.equal(layer.base_layer.weight, before)  # eval() never merges
    with pytest.raises(RuntimeError, match="not merged"):
        layer.unmerge()
    layer.merge()
    with pytest.raises(RuntimeError, match="already merged"):
        layer.merge()
    with torch.no_grad():
        layer.lora_B.weight.fill_(float("nan"))
    layer.unmerge()  # subtracting NaN poisons the weight; only merge() guards, like peft's safe_merge
    fresh = MyLoraLayer(nn.Linear(8, 8), r=2, lora_alpha=4, lora_dropout=0.0)
    with torch.no_grad():
        fresh.lora_B.weight.fill_(float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        fresh.merge()


# --- injection and freezing -----------------------------------------------------------------------------------------

def test_injection_replaces_exactly_query_and_value():
    model = tiny_bert()
    names = inject_lora(model, MyLoraConfig(2, TARGETS, 4, 0.0))
    expected = [f"bert.encoder.layer.{i}.attention.self.{t}" for i in range(2) for t in TARGETS]
    assert names == expected
    assert [n for n, m in model.named_modules() if isinstance(m, MyLoraLayer)] == expected
    assert isinstance(model.bert.encoder.layer[0].attention.self.key, nn.Linear)


def test_get_lora_model_trains_only_lora_and_classifier():
    model = get_lora_model(tiny_bert(), MyLoraConfig(2, TARGETS, 4, 0.0))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    expected = {f"bert.encoder.layer.{i}.attention.self.{t}.lora_{ab}.weight"
                for i in range(2) for t in TARGETS for ab in "AB"} | {"classifier.weight", "classifier.bias"}
    assert trainable == expected


def test_frozen_weights_stay_bit_identical_after_a_step():
    model = get_lora_model(tiny_bert(), MyLoraConfig(2, TARGETS, 4, 0.0))
    randomise_B(model)  # with B = 0, A's first gradient is exactly 0 and A would rightly not move
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    out = model(**tiny_inputs(), labels=torch.tensor([0, 1, 2, 3]))
    out.loss.backward()
    opt.step()
    for name, p in model.named_parameters():
        changed = not torch.equal(p, before[name])
        assert changed == p.requires_grad, name


@pytest.mark.parametrize("config, match", [
    (MyLoraConfig(2, ("nonexistent",), 4, 0.0), "target_modules"),
    (MyLoraConfig(2, ("attention",), 4, 0.0), "not an nn.Linear"),
    (MyLoraConfig(2, TARGETS, 4, 0.0, modules_to_save=("head",)), "head"),
])
def test_get_lora_model_errors_loudly(config, match):
    with pytest.raises(ValueError, match=match):
        get_lora_model(tiny_bert(), config)


def test_suffix_match_is_by_whole_name_component():
    model = nn.Sequential()
    model.add_module("myquery", nn.Linear(4, 4))
    model.add_module("query", nn.Linear(4, 4))
    model.add_module("classifier", nn.Linear(4, 2))
    assert inject_lora(model, MyLoraConfig(1, ("query",), 2, 0.0)) == ["query"]


def test_params_info_and_last_layer_on_a_small_model():
    model = nn.Sequential()
    model.add_module("body", nn.Linear(10, 4))  # 44 parameters
    model.add_module("classifier", nn.Linear(4, 3))  # 15 parameters
    assert get_model_params_info(model) == (59, 59, 100.0)
    freeze_all_but_classifier(model)
    total, trainable, percent = get_model_params_info(model)
    assert (total, trainable) == (59, 15) and percent == pytest.approx(100 * 15 / 59)
    with pytest.raises(ValueError, match="head"):
        freeze_all_but_classifier(model, classifier="head")
