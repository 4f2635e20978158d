"""Part 2's key as document blocks, from one run folder of `python -m solution.finetune`: its figures (copied
beside the key), its rank table, the free-response answers (e) and (g) and the timing answer (h)."""

import json
import shutil
from pathlib import Path

from solution.answer_key.document import Block, Bullets, Heading, Image, Para, Table
from solution.answer_key.rubric import HANDOUT_POINTS, rubric_blocks
from solution.finetune.answers import answer_e, answer_g
from solution.finetune.config import FinetuneConfig, config_from_json
from solution.finetune.plots import load_results
from solution.finetune.report import rank_rows, timing_section

__all__ = ["load_run", "part2_blocks", "FIGURES"]

FIGURES = {"a": ("fig_a_parameters.png", "Trainable vs total parameters"),
           "b": ("fig_b_train_loss.png", "Training loss per epoch"),
           "c": ("fig_c_val_accuracy.png", "Validation accuracy per epoch"),
           "d": ("fig_d_val_accuracy_f1.png", "Validation accuracy and weighted F1"),
           "f": ("fig_f_rank_sweep.png", "Best validation accuracy per LoRA rank"),
           "h": ("fig_h_forward_time.png", "Forward time per batch")}
TITLES = {"a": "Trainable vs total parameters", "b": "Training loss", "c": "Validation accuracy",
          "d": "Validation accuracy and F1", "e": "LoRA vs full and last-layer fine-tuning",
          "f": "Rank sweep", "g": "Effect of the rank (alpha fixed)", "h": "Forward time"}


def load_run(run: Path) -> tuple[FinetuneConfig, dict[str, dict], dict | None]:
    config = run / "config.json"
    if not config.is_file():
        raise ValueError(f"run folder {run} has no config.json: not an output of python -m solution.finetune")
    timing = json.loads((run / "timing.json").read_text()) if (run / "timing.json").is_file() else None
    return config_from_json(config.read_text()), load_results(run), timing


def _markdown_to_blocks(text: str) -> list[Block]:
    """The few shapes report.timing_section writes: paragraphs, one pipe table, a bullet list, an image line."""
    blocks: list[Block] = []
    for chunk in text.strip().split("\n\n"):
        lines = chunk.splitlines()
        if lines[0].startswith("|"):
            cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
            align = "".join("r" if c.endswith(":") else "l" for c in cells[1])
            blocks.append(Table(tuple(cells[0]), tuple(tuple(r) for r in cells[2:]), align))
        elif lines[0].startswith("- "):
            blocks.append(Bullets(tuple(line[2:] for line in lines)))
        elif not lines[0].startswith("!["):
            blocks.append(Para(" ".join(lines)))
    return blocks


def _figure(run: Path, out: Path, question: str) -> list[Block]:
    name, caption = FIGURES[question]
    if not (run / name).is_file():
        return [Para(f"(No `{name}` in the run folder.)")]
    (out / "part2").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run / name, out / "part2" / name)
    return [Image(f"part2/{name}", caption, 100 if question in "ah" else 60)]


def part2_blocks(run: Path, out: Path, rubric: dict) -> list[Block]:
    cfg, results, timing = load_run(run)
    what = ("a **smoke run** (tiny random BERT, synthetic data: a check of the pipeline, not results)" if cfg.smoke
            else f"model `{cfg.model}`, data `{cfg.data or 'SetFit/sst5'}`")
    blocks: list[Block] = [
        Heading(2, f"Part 2: LoRA on BERT, SST-5 ({sum(HANDOUT_POINTS['part2'].values())} hand-graded points)"),
        Para(f"From the run in `{run.name}`: {what}; {cfg.epochs} epochs, Adam lr {cfg.lr:g}, batch "
             f"{cfg.batch_size}, LoRA alpha {cfg.lora_alpha:g}, dropout {cfg.lora_dropout:g}, seed {cfg.seed}. "
             "Every figure below is read from the run's `metrics.json` and `timing.json`."),
    ]
    for q in "abcdefgh":
        blocks.append(Heading(3, f"({q}) {TITLES[q]}"))
        if q in "abcd":
            blocks += _figure(run, out, q)
        elif q == "e":
            blocks += [Para(s) for s in answer_e(results, cfg)]
        elif q == "f":
            rows = rank_rows(results)
            blocks.append(Table(("r", "trainable", "total", "best val accuracy", "at epoch"),
                                tuple((str(r["rank"]), f"{r['trainable']:,}", f"{r['total']:,}",
                                       f"{100 * r['best_val_accuracy']:.1f}%", f"{r['best_epoch']} of {r['epochs']}")
                                      for r in rows), "rrrrr"))
            blocks += _figure(run, out, q)
        elif q == "g":
            blocks += [Para(s) for s in answer_g(results, cfg)]
        elif timing is None:
            blocks.append(Para("(No `timing.json` in the run folder.)"))
        else:
            if cfg.smoke:
                blocks.append(Para("**Smoke run:** a tiny model's timings on a busy CPU; the ratios are noise."))
            blocks += _markdown_to_blocks(timing_section(timing, None)) + _figure(run, out, q)
        blocks += rubric_blocks(rubric, "part2", q)
    return blocks
