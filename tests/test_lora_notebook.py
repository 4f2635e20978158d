"""The Part 2 notebooks: the solution's graded cells are the reference and pass the public checks; the template's
stubs fail there and only there. Cells are found by their content, not their ids (the notebooks may carry none),
and run in-process: the imports and definitions, with the notebook's literal constants (the data and training
cells need a download)."""

import nbformat
import pytest
import torch

from autograder.assignments.hw4_part2 import last_layer_cell, notebook_constants
from autograder.notebook import load_notebook

from solution.finetune.train import weighted_f1
from solution.lora import MyLoraConfig, get_lora_model, get_model_params_info
from student_template import build

transformers = pytest.importorskip("transformers", reason="transformers is a runtime requirement")
from transformers import BertConfig, BertForSequenceClassification  # noqa: E402

NAME = "hw4_part2"
TINY = dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=20,
            max_position_embeddings=32, num_labels=5)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny models gain nothing from threads, and OpenMP threads on a busy 2-core box wait on each other.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def cell_with(path, text: str) -> str:
    """The source of the one code cell that contains `text`."""
    (source,) = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code" and text in c.source]
    return source


def definitions(path) -> dict:
    """The notebook's literal constants, imports and definitions, as the grader's measurement process holds them."""
    notebook = load_notebook(path)
    namespace = {"__name__": "__notebook__", **notebook_constants(notebook)}
    for cell in notebook.definition_cells():
        exec(compile(cell["source"], f"{path.name}: {cell['label']}", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def solution_ns():
    path = build.SOLUTION_DIR / f"{NAME}.ipynb"
    namespace = definitions(path)
    exec(compile(cell_with(path, "MyLoraLayer checks passed"), "check-lora-layer", "exec"), namespace)
    return namespace


def test_solution_graded_cells_equal_the_reference(solution_ns):
    ns = solution_ns
    torch.manual_seed(0)
    base = BertForSequenceClassification(BertConfig(**TINY)).eval()
    state = base.state_dict()
    models = []
    for config_cls, get in ((ns["MyLoraConfig"], ns["get_lora_model"]), (MyLoraConfig, get_lora_model)):
        model = BertForSequenceClassification(BertConfig(**TINY))
        model.load_state_dict(state)
        torch.manual_seed(5)
        models.append(get(model, config_cls(4, ["query", "value"], 8, 0.0)).eval())
    with torch.no_grad():
        for a, b in zip(*(m.parameters() for m in models)):
            assert torch.equal(a, b)  # same seed, same draws: identical A (and B = 0)
    assert ns["get_model_params_info"](models[0]) == get_model_params_info(models[1])
    ids = torch.randint(0, TINY["vocab_size"], (3, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for model in models:  # give both the same non-zero B
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.copy_(torch.full_like(p, 0.1))
        torch.testing.assert_close(models[0](input_ids=ids).logits, models[1](input_ids=ids).logits,
                                   rtol=0, atol=0)
        assert not torch.allclose(models[0](input_ids=ids).logits, base(input_ids=ids).logits)


def test_notebook_f1_and_merge_helper_agree_with_the_reference(solution_ns):
    ns = solution_ns
    g = torch.Generator().manual_seed(3)
    preds, labels = torch.randint(0, 5, (200,), generator=g), torch.randint(0, 5, (200,), generator=g)
    assert ns["weighted_f1"](preds, labels) == pytest.approx(weighted_f1(preds, labels, 5))
    # merge_and_unload (cell "timing") must give the unmerged model's logits with the base architecture.
    timing_source = cell_with(build.SOLUTION_DIR / f"{NAME}.ipynb", "def merge_and_unload")
    definitions, found, _ = timing_source.partition("\n\n\nbatch = ")  # the helpers, not the bert-base timing
    assert found, "cell 'timing' no longer starts with its helper definitions"
    exec(compile(definitions, "timing-defs", "exec"), ns)
    torch.manual_seed(0)
    model = ns["get_lora_model"](BertForSequenceClassification(BertConfig(**TINY)),
                                 ns["MyLoraConfig"](ns["LORA_R"], ["query", "value"], ns["LORA_ALPHA"], 0.0))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    model.eval()
    ids = torch.randint(0, TINY["vocab_size"], (3, 9), generator=g)
    with torch.no_grad():
        before = model(input_ids=ids).logits
        merged = ns["merge_and_unload"](model)
        after = merged(input_ids=ids).logits
    assert not any(isinstance(m, ns["MyLoraLayer"]) for m in merged.modules())
    torch.testing.assert_close(after, before, rtol=0, atol=1e-5)


def test_template_stubs_fail_only_at_the_fill_in_points():
    path = build.TEMPLATE_DIR / f"{NAME}.ipynb"
    ns = definitions(path)  # the definitions themselves run
    with pytest.raises(NotImplementedError):
        exec(compile(cell_with(path, "MyLoraLayer checks passed"), "check-lora-layer", "exec"), ns)
    with pytest.raises(NotImplementedError):
        ns["MyLoraConfig"](16, ["query"], 32, 0.4)
    with pytest.raises(NotImplementedError):
        ns["get_lora_model"](torch.nn.Linear(2, 2), None)
    assert "raise NotImplementedError" in last_layer_cell(load_notebook(path)).source
    assert "target_modules=[...]" in cell_with(path, "lora_config = MyLoraConfig(")
    solution = nbformat.read(build.SOLUTION_DIR / f"{NAME}.ipynb", as_version=4)
    assert "raise NotImplementedError" not in "".join(c.source for c in solution.cells if c.cell_type == "code")
