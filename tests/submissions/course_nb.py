"""Course-shaped notebooks as plain JSON dicts: find cells by their master id, edit, add cells, record outputs,
and write them as Jupyter or Colab writes them (nbformat 4.0, no cell ids, `metadata.id`).

Nothing here runs a submission's attack code: `record_outputs` is for the benign, correct variants only.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import random
import traceback
from pathlib import Path

import numpy as np

PIP_OUTPUT = ("Requirement already satisfied: torch in /usr/local/lib/python3.11/dist-packages (2.6.0+cu124)\n"
              "Requirement already satisfied: numpy in /usr/local/lib/python3.11/dist-packages (2.0.2)\n")


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def key(cell: dict) -> str:
    return cell["metadata"]["id"]


def text(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def index(notebook: dict, cell_key: str) -> int:
    keys = [key(c) for c in notebook["cells"]]
    if cell_key not in keys:
        raise KeyError(f"no cell {cell_key!r}")
    return keys.index(cell_key)


def cell(notebook: dict, cell_key: str) -> dict:
    return notebook["cells"][index(notebook, cell_key)]


def colab_id(*parts: str) -> str:
    """A 12-character id like the ones Colab gives new cells, derived from `parts` so rebuilds are identical."""
    digest = hashlib.sha256("\0".join(parts).encode()).digest()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(alphabet[b % len(alphabet)] for b in digest[:12])


def code_cell(source: str, cell_key: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": {"id": cell_key}, "outputs": [],
            "source": source}


def markdown_cell(source: str, cell_key: str) -> dict:
    return {"cell_type": "markdown", "metadata": {"id": cell_key}, "source": source}


def patched(base: dict, *edits: tuple[str, str, str]) -> dict:
    """Copy of `base` with (cell key, old text, new text) replacements; each old text must be present once."""
    notebook = copy.deepcopy(base)
    for cell_key, old, new in edits:
        target = cell(notebook, cell_key)
        source = text(target)
        if source.count(old) != 1:
            raise ValueError(f"{old!r} occurs {source.count(old)} times in cell {cell_key}, not once")
        target["source"] = source.replace(old, new)
    return notebook


def replaced(base: dict, **sources: str) -> dict:
    """Copy of `base` whose cells (by key) hold new sources."""
    notebook = copy.deepcopy(base)
    for cell_key, source in sources.items():
        cell(notebook, cell_key)["source"] = source
    return notebook


def inserted(base: dict, source: str, after: str | None, kind: str = "code", name: str = "") -> dict:
    """Copy of `base` with a new cell after the cell keyed `after` (None: at the top), given a Colab-like id."""
    notebook = copy.deepcopy(base)
    position = 0 if after is None else index(notebook, after) + 1
    new = (code_cell if kind == "code" else markdown_cell)(source, colab_id(name, str(position), source))
    notebook["cells"].insert(position, new)
    return notebook


def without(base: dict, predicate) -> dict:
    notebook = copy.deepcopy(base)
    notebook["cells"] = [c for c in notebook["cells"] if not predicate(c)]
    return notebook


def _runnable(source: str) -> str:
    """The cell without IPython-only lines (`!pip`, `%matplotlib`), which the recorder does not emulate."""
    return "\n".join("" if line.lstrip().startswith(("!", "%")) else line for line in source.split("\n"))


def record_outputs(base: dict, name: str, seed: int = 0) -> dict:
    """Copy of `base` with the outputs a Colab 'Run all' would leave, run in this process, cell after cell,
    going on after a failing cell as a student re-running cells does. numpy's and Python's generators are
    seeded so the recorded outputs are the same on every rebuild."""
    notebook = copy.deepcopy(base)
    namespace: dict = {"__name__": "__main__"}
    np.random.seed(seed)
    random.seed(seed)
    count = 0
    for number, current in enumerate(notebook["cells"]):
        if current["cell_type"] != "code":
            continue
        count += 1
        source = text(current)
        stdout = io.StringIO()
        outputs = []
        try:
            with contextlib.redirect_stdout(stdout):
                exec(compile(_runnable(source), f"<cell {number + 1}>", "exec"), namespace)
            error = None
        except Exception as caught:  # recorded as Jupyter records it
            error = caught
        printed = (PIP_OUTPUT if source.lstrip().startswith("!pip") else "") + stdout.getvalue()
        if printed:
            outputs.append({"name": "stdout", "output_type": "stream", "text": printed})
        if error is not None:
            lines = traceback.format_exception_only(type(error), error)
            outputs.append({"ename": type(error).__name__, "evalue": str(error), "output_type": "error",
                            "traceback": ["-" * 75, *[line.rstrip("\n") for line in lines]]})
        current["execution_count"] = count
        current["outputs"] = outputs
        if outputs:  # what Colab adds to a cell that printed something
            current["metadata"]["colab"] = {"base_uri": "https://localhost:8080/"}
            current["metadata"]["outputId"] = colab_id(name, "output", str(number))
    return notebook


def _lines(source) -> list[str]:
    source = "".join(source) if isinstance(source, list) else source
    return source.splitlines(keepends=True)


def _normalised(notebook: dict) -> dict:
    notebook = copy.deepcopy(notebook)
    for current in notebook["cells"]:
        current["source"] = _lines(current["source"])
        for output in current.get("outputs", []):
            if "text" in output:
                output["text"] = _lines(output["text"])
    return notebook


def dumps(notebook: dict, style: str = "jupyter") -> str:
    """Jupyter: one-space indent, sorted keys. Colab: two-space indent, nbformat first, as its downloads read."""
    notebook = _normalised(notebook)
    if style == "colab":
        ordered = {k: notebook[k] for k in ("nbformat", "nbformat_minor", "metadata", "cells")}
        return json.dumps(ordered, indent=2, ensure_ascii=False) + "\n"
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
