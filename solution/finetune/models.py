"""Device, precision and seed set once; the tokenizer; the model; and the three fine-tuning methods."""

import random
import re
import tempfile
from collections import Counter
from pathlib import Path

import torch
from torch import nn

from solution.finetune.config import FinetuneConfig, parse_method
from solution.lora import MyLoraConfig, freeze_all_but_classifier, get_lora_model

__all__ = [
    "resolve_device", "autocast_dtype", "set_seed", "load_tokenizer", "build_model", "apply_method",
    "smoke_bert_config", "word_vocab_tokenizer",
]

_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available")
    return device


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32. Weights and Adam state stay fp32 either way."""
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"fp32": None, "bf16": torch.bfloat16}[precision]


def set_seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # seeds every CUDA device too


def word_vocab_tokenizer(texts: list[str], size: int = 2000):
    """A BERT tokenizer over the `size` most frequent lower-cased words of `texts` (smoke runs, no download)."""
    from transformers import AutoTokenizer

    counts = Counter(w for t in texts for w in re.findall(r"\w+|[^\w\s]", t.lower()))
    words = [w for w, _ in counts.most_common(size) if w not in _SPECIALS]
    with tempfile.TemporaryDirectory() as folder:  # the tokenizer reads the vocabulary into memory
        Path(folder, "vocab.txt").write_text("\n".join(_SPECIALS + words) + "\n", encoding="utf-8")
        Path(folder, "tokenizer_config.json").write_text(
            '{"tokenizer_class": "BertTokenizer", "do_lower_case": true, "model_max_length": 512}')
        return AutoTokenizer.from_pretrained(folder)


def load_tokenizer(cfg: FinetuneConfig, train_texts: list[str] | None = None):
    """`cfg.tokenizer`, else the one beside `cfg.model`; a smoke run without either builds a word vocabulary.

    AutoTokenizer on a folder, not BertTokenizerFast(vocab_file=...): in transformers 5 the latter maps every
    word to [UNK] without a word.
    """
    from transformers import AutoTokenizer

    if cfg.tokenizer is not None:
        return AutoTokenizer.from_pretrained(cfg.tokenizer)
    if cfg.smoke and not Path(cfg.model).is_dir():
        if train_texts is None:
            raise ValueError("a smoke run without a tokenizer folder needs train_texts to build a vocabulary")
        return word_vocab_tokenizer(train_texts)
    return AutoTokenizer.from_pretrained(cfg.model)


def smoke_bert_config(vocab_size: int, num_labels: int, max_length: int):
    from transformers import BertConfig

    return BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=max(128, max_length), num_labels=num_labels)


def build_model(cfg: FinetuneConfig, vocab_size: int) -> nn.Module:
    """BertForSequenceClassification on the CPU, in fp32: pretrained from `cfg.model`, or tiny and random (smoke)."""
    from transformers import BertForSequenceClassification
    from transformers.utils import logging as hf_logging

    if cfg.smoke:
        return BertForSequenceClassification(smoke_bert_config(vocab_size, cfg.num_labels, cfg.max_length))
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # the "classifier newly initialised" load report is expected here
    hf_logging.disable_progress_bar()
    try:
        model = BertForSequenceClassification.from_pretrained(cfg.model, num_labels=cfg.num_labels,
                                                              dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    if model.config.vocab_size < vocab_size:
        raise ValueError(f"tokenizer has {vocab_size} tokens but the model embeds only {model.config.vocab_size}")
    return model


def apply_method(model: nn.Module, method: str, cfg: FinetuneConfig) -> nn.Module:
    """full: everything trains; last_layer: only `classifier`; lora_r<r>: LoRA on query/value + classifier."""
    kind, rank = parse_method(method)
    if kind == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    if kind == "last_layer":
        return freeze_all_but_classifier(model)
    lora_config = MyLoraConfig(rank, ("query", "value"), cfg.lora_alpha, cfg.lora_dropout, init=cfg.lora_init)
    return get_lora_model(model, lora_config)
