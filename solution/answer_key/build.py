"""Build the whole key into a folder: key.md (GitHub Markdown), key.pdf (Typst), rubric/ (Gradescope CSV + YAML)."""

import subprocess
import sys
import tempfile
from pathlib import Path

from solution.answer_key.document import Heading, PageBreak, Para, to_markdown
from solution.answer_key.part2_key import part2_blocks
from solution.answer_key.rubric import load_rubric, write_rubric_files
from solution.answer_key.typeset import write_pdf
from solution.answer_key.written_key import written_blocks

__all__ = ["build_key", "smoke_run"]

TITLE = "HW4 answer key and rubric (10-405/605)"


def smoke_run(folder: Path) -> Path:
    """The Part 2 smoke run (tiny random BERT, CPU, about a minute), in its own process like a user would run it."""
    subprocess.run([sys.executable, "-m", "solution.finetune", "--smoke", "--out", str(folder), "--no-progress"],
                   check=True, stdout=subprocess.DEVNULL)
    return folder


def build_key(out: Path, run: Path | None = None) -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rubric = load_rubric()
    with tempfile.TemporaryDirectory(prefix="hw4-smoke-") as tmp:
        run_dir = Path(run) if run is not None else smoke_run(Path(tmp) / "smoke")
        blocks = [Heading(1, TITLE),
                  Para("Written 1.1 and Part 2's hand-graded questions: answers, the forms accepted as "
                       "equivalent, and Gradescope rubric items (also as one CSV and one YAML file per question in "
                       "`rubric/`). Built by `python -m solution.answer_key`; every number comes from the code.")]
        blocks += written_blocks(rubric) + [PageBreak()] + part2_blocks(run_dir, out, rubric)
    markdown = out / "key.md"
    markdown.write_text(to_markdown(blocks))
    pdf = write_pdf(blocks, out, "key", TITLE)
    write_rubric_files(rubric, out / "rubric")
    return {"markdown": markdown, "pdf": pdf, "rubric": out / "rubric"}
