"""The key's document model as Typst, compiled to PDF by the `typst` package (no TeX needed).

The key's math is LaTeX (GitHub renders it); `latex_to_typst` translates the small subset the key uses and raises
on anything else, so a new command cannot silently print wrong in the PDF.
"""

import re
from pathlib import Path

from solution.answer_key.document import Block, Bullets, Heading, Image, Math, PageBreak, Para, Table

__all__ = ["latex_to_typst", "text_to_typst", "to_typst", "write_pdf"]

_SYMBOLS = {
    "partial": "partial", "delta": "delta", "eta": "eta", "alpha": "alpha", "sum": "sum", "odot": "dot.o",
    "top": "top", "cdot": "dot.op", "leftarrow": "arrow.l", "gets": "arrow.l", "rightarrow": "arrow.r",
    "to": "arrow.r", "times": "times", "in": "in", "quad": "quad", "qquad": "wide", ",": "thin", ";": "med",
    "le": "<=", "ge": ">=", "ne": "!=", "approx": "approx", "ldots": "dots", "max": "max", "bar": None,
    "{": "\\{", "}": "\\}", "lambda": "lambda", "theta": "theta", "nabla": "nabla", "sqrt": None,
}
_TOKEN = re.compile(r"\\(?:text|mathrm|operatorname)\{[^{}]*\}"  # kept whole: its spaces are text
                    r"|\\[a-zA-Z]+|\\.|[{}^_]|[0-9]+(?:\.[0-9]+)?|[a-zA-Z]|\s+|.")


def _tokens(latex: str) -> list[str]:
    return [t for t in _TOKEN.findall(latex) if not t.isspace()]


def _group(tokens: list[str], i: int) -> tuple[list[str], int]:
    """The tokens of the argument starting at i (a {group} or one token) and the index after it."""
    if tokens[i] != "{":
        return [tokens[i]], i + 1
    depth, j = 1, i + 1
    while depth:
        depth += {"{": 1, "}": -1}.get(tokens[j], 0)
        j += 1
    return tokens[i + 1:j - 1], j


def _raw(tokens: list[str]) -> str:
    return "".join(t if not t.startswith("\\") else t[1:] for t in tokens)


def _convert(tokens: list[str]) -> str:
    atoms: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in ("^", "_"):
            arg, i = _group(tokens, i + 1)
            inner = _convert(arg)
            atoms[-1] += tok + (inner if len(arg) == 1 and " " not in inner else f"({inner})")
            continue
        if tok.startswith("\\") and len(tok) > 1:
            name = tok[1:]
            if name in ("left", "right", "big", "Big", "!"):
                i += 1
                continue
            if name == "frac":
                num, i = _group(tokens, i + 1)
                den, i = _group(tokens, i)
                atoms.append(f"frac({_convert(num)}, {_convert(den)})")
                continue
            if "{" in name:  # \text{...} and kin, kept whole by the tokenizer with their spaces
                atoms.append('"' + name[name.index("{") + 1:-1].replace('"', '\\"') + '"')
                i += 1
                continue
            if name == "mathbb":
                arg, i = _group(tokens, i + 1)
                atoms.append({"R": "RR"}.get(_raw(arg), f"bb({_raw(arg)})"))
                continue
            if name in ("bar", "sqrt"):
                arg, i = _group(tokens, i + 1)
                atoms.append(f"{'overline' if name == 'bar' else 'sqrt'}({_convert(arg)})")
                continue
            if name not in _SYMBOLS:
                raise ValueError(f"LaTeX command {tok!r} has no Typst translation")
            atoms.append(_SYMBOLS[name])
            i += 1
            continue
        if tok == "{":
            arg, i = _group(tokens, i)
            atoms.append(f"({_convert(arg)})" if len(arg) > 1 else _convert(arg))
            continue
        atoms.append({"/": "\\/", "&": "&", "'": "'", '"': '\\"'}.get(tok, tok))
        i += 1
    return " ".join(atoms)


def latex_to_typst(latex: str) -> str:
    return _convert(_tokens(latex))


_INLINE = re.compile(r"\$([^$]+)\$|`([^`]+)`|\*\*(.+?)\*\*")
_MARKUP = re.compile(r"([\\*_#@<>\[\]~/$`=+-])")


def _escape(text: str) -> str:
    return _MARKUP.sub(r"\\\1", text)


def text_to_typst(text: str) -> str:
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(_escape(text[pos:m.start()]))
        if m.group(1) is not None:
            out.append(f"${latex_to_typst(m.group(1))}$")
        elif m.group(2) is not None:
            out.append("`" + m.group(2) + "`")
        else:
            out.append("*" + text_to_typst(m.group(3)) + "*")
        pos = m.end()
    out.append(_escape(text[pos:]))
    return "".join(out)


def _cell(text: str) -> str:
    return "[" + text_to_typst(text) + "]"


def to_typst(blocks: list[Block], title: str) -> str:
    out = ['#set page(paper: "us-letter", margin: (x: 1.8cm, y: 2cm), numbering: "1")',
           '#set text(size: 10pt)', '#set par(justify: false)',
           '#show heading.where(level: 1): set text(size: 15pt)', '#show raw: set text(size: 9pt)',
           f'#set document(title: "{title}")']
    for block in blocks:
        if isinstance(block, Heading):
            out.append("=" * block.level + " " + text_to_typst(block.text))
        elif isinstance(block, Para):
            out.append(text_to_typst(block.text))
        elif isinstance(block, Math):
            out.append("$ " + latex_to_typst(block.latex) + " $")
        elif isinstance(block, Bullets):
            out.append("\n".join("- " + text_to_typst(item) for item in block.items))
        elif isinstance(block, Table):
            align = block.align or "l" * len(block.header)
            aligns = ", ".join("right" if a == "r" else "left" for a in align)
            cells = [_cell(f"**{h}**") for h in block.header] + [_cell(c) for row in block.rows for c in row]
            out.append(f"#table(columns: {len(block.header)}, align: ({aligns},), inset: 4pt,\n  "
                       + ", ".join(cells) + ")")
        elif isinstance(block, Image):
            out.append(f'#figure(image("{block.path}", width: {block.width_percent}%), '
                       f"caption: {_cell(block.caption)})")
        elif isinstance(block, PageBreak):
            out.append("#pagebreak()")
        else:
            raise TypeError(f"unknown block {block!r}")
    return "\n\n".join(out) + "\n"


def write_pdf(blocks: list[Block], folder: Path, stem: str, title: str) -> Path:
    """Write `stem`.typ and compile `stem`.pdf in `folder` (images are looked up relative to it)."""
    import typst

    source = folder / f"{stem}.typ"
    source.write_text(to_typst(blocks, title))
    pdf = folder / f"{stem}.pdf"
    typst.compile(str(source), output=str(pdf), root=str(folder))
    return pdf
