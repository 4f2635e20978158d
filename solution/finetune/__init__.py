"""The HW4 Part 2 answer-key runner: full, last-layer and LoRA fine-tuning of BERT on SST-5.

`python -m solution.finetune --help` lists the options; `--smoke` is the CI check. Modules: `config` (the frozen
FinetuneConfig), `data` (loading, tokenising, bucketed batches), `models` (device, seed, model, methods), `train`
(train_one_epoch / evaluate / train), `timing` (question h), `runner` (the whole run), `plots` and `report`
(from the JSON only).
"""

from solution.finetune.config import DEFAULT, SMOKE, FinetuneConfig

__all__ = ["DEFAULT", "SMOKE", "FinetuneConfig"]
