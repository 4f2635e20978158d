"""The handout's exact parameter counts, on a randomly initialised bert-base-shaped classifier (no download)."""

import copy

import pytest
import torch

from solution.lora import MyLoraConfig, freeze_all_but_classifier, get_lora_model, get_model_params_info, lora_layers

transformers = pytest.importorskip("transformers", reason="transformers is a runtime requirement")
from transformers import BertConfig, BertForSequenceClassification  # noqa: E402

TARGETS = ("query", "value")


@pytest.fixture(scope="module")
def bert_base():
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(num_labels=5))


def test_bert_base_counts_full_and_last_layer(bert_base):
    model = copy.deepcopy(bert_base)
    assert get_model_params_info(model)[:2] == (109_486_085, 109_486_085)
    assert get_model_params_info(freeze_all_but_classifier(model))[:2] == (109_486_085, 3_845)


@pytest.mark.parametrize("r, trainable, total", [(1, 40_709, 109_522_949), (16, 593_669, 110_075_909),
                                                 (256, 9_441_029, 118_923_269)])
def test_bert_base_counts_lora(bert_base, r, trainable, total):
    model = get_lora_model(copy.deepcopy(bert_base), MyLoraConfig(r, TARGETS, 32, 0.4))
    assert get_model_params_info(model)[:2] == (total, trainable)
    assert len(lora_layers(model)) == 24
