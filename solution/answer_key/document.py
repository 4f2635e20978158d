"""A small document model the key is written in, rendered to GitHub Markdown (here) and to Typst (typeset.py).

Text may hold inline math `$...$` (LaTeX), `code` and **bold**; display math is LaTeX. Keeping one model for both
outputs means the PDF and the Markdown cannot say different things.
"""

from dataclasses import dataclass

__all__ = ["Heading", "Para", "Math", "Bullets", "Table", "Image", "PageBreak", "Block", "to_markdown"]


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Math:
    latex: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    align: str = ""  # one of "l", "r" per column; default left


@dataclass(frozen=True)
class Image:
    path: str  # relative to the output folder
    caption: str
    width_percent: int = 70


@dataclass(frozen=True)
class PageBreak:
    pass


Block = Heading | Para | Math | Bullets | Table | Image | PageBreak


def _md_cell(text: str) -> str:
    return text.replace("|", r"\|")


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append("#" * block.level + " " + block.text)
        elif isinstance(block, Para):
            out.append(block.text)
        elif isinstance(block, Math):
            out.append("$$\n" + block.latex + "\n$$")
        elif isinstance(block, Bullets):
            out.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            align = block.align or "l" * len(block.header)
            lines = ["| " + " | ".join(_md_cell(h) for h in block.header) + " |",
                     "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out.append("\n".join(lines))
        elif isinstance(block, Image):
            out.append(f"![{block.caption}]({block.path})")
        elif isinstance(block, PageBreak):
            continue
        else:
            raise TypeError(f"unknown block {block!r}")
    return "\n\n".join(out) + "\n"
