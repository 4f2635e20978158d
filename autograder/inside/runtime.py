"""What a measurement call's child process holds: the notebook's definitions and the `_autograder` helpers.

Runs inside the sandbox, in a child of the measurement process (measure.py), after the guard (guard.py) is in
place. The student's imports, definitions and allowed top-level statements (the assignment's `context`: constants,
`device`, data) are executed into `namespace`, each compiled under its cell's
label so that tracebacks name the cell as Jupyter shows it; the assignment's probe module runs in a namespace of
its own, where `_autograder` gives it:
  load(name, base=None, not_base=None)  the notebook's last definition of `name` (re-executed), or Missing
  describe(error)                       "TypeError: ... (raised in <cell>, line N)"
  Missing                               raised for a graded name the notebook does not define
  namespace                             the student's globals after the definitions ran
What is needed after student code has run (the encoder, the writer) is captured when this module is imported,
before any student code exists in the process.
"""

from __future__ import annotations

import builtins
import io
import math
import sys
import types
from typing import Any

_excepthook = sys.__excepthook__  # C's traceback printer: it reads frames without the Python-level access the
_StringIO = io.StringIO           # guard refuses, and student code cannot replace these captured objects
_float, _int, _str, _bool, _list, _tuple, _dict, _type = float, int, str, bool, list, tuple, dict, type
_isfinite, _repr = math.isfinite, repr
ERROR_TEXT_LIMIT = 1500
try:  # torch's own C methods, captured: a Tensor's Python-level methods are the student's to replace
    import torch as _torch
    _Tensor, _tolist, _detach = _torch.Tensor, _torch._C.TensorBase.tolist, _torch._C.TensorBase.detach
    _no_torch_function = _torch._C.DisableTorchFunction
except ImportError:  # an assignment without torch
    _Tensor = None


# An error of a top-level statement or an import, as the grader receives it: "[top-level] NameError: ...".
KIND_TAGS = {"context": "[top-level] ", "import": "[import] "}


class Missing(Exception):
    """A graded name is absent from the notebook."""


class Runtime:
    def __init__(self, cells: list[dict], definitions: dict[str, list[dict]], sources: dict[str, str]):
        self.definitions, self.sources = definitions, sources
        self.namespace: dict = {"__name__": "__main__", "__builtins__": builtins}
        self.errors: list[tuple[str, str]] = []
        for cell in cells:
            self.errors += [(cell["label"], message)] if (message := self.run(cell)) else []

    def run(self, cell: dict) -> str:
        """Execute one import, definition or top-level statement; returns "" or the error's description, tagged
        with the statement's kind when it is not a definition (KIND_TAGS: the grader words those apart)."""
        try:
            exec(compile(cell["source"], f"<{cell['label']}>", "exec"), self.namespace)
        except BaseException as error:  # SystemExit and KeyboardInterrupt from student code too
            return KIND_TAGS.get(cell.get("kind", ""), "") + self.describe(error)
        return ""

    def load(self, name: str, base: str | None = None, not_base: str | None = None):
        candidates = self.definitions.get(name, [])
        if base is not None:
            candidates = [d for d in candidates if any(base in b for b in d["bases"])]
        if not_base is not None:
            candidates = [d for d in candidates if not any(not_base in b for b in d["bases"])]
        if not candidates:
            raise Missing(f"`{name}` is not defined in your notebook")
        chosen = candidates[-1]
        namespace = dict(self.namespace)
        exec(compile(chosen["source"], f"<{chosen['label']}>", "exec"), namespace)
        return namespace[name]

    def describe(self, error: BaseException) -> str:
        """The error and where in the notebook it was raised; an empty message shows the failing line."""
        text = f"{_type(error).__name__}: {error}" if _str(error) else _type(error).__name__
        where = _last_cell_frame(error, self.sources)
        if where:
            label, line = where
            source_line = self._line(label, line)
            if not _str(error) and source_line:
                text += f" in `{source_line}`"
            text += f" (raised in {label}, line {line})"
        return text[:ERROR_TEXT_LIMIT]

    def _line(self, label: str, line: int) -> str:
        lines = self.sources.get(label, "").split("\n")
        return lines[line - 1].strip() if 0 < line <= len(lines) else ""

    def helpers(self) -> types.SimpleNamespace:
        return types.SimpleNamespace(load=self.load, describe=self.describe, Missing=Missing,
                                     namespace=self.namespace)

    def call(self, probes_source: str, entry: str, args) -> dict:
        """Run the probe module, then `entry(args)`: {"ok": True, "value"} or {"ok": False, "error"}."""
        scope: dict[str, Any] = {"__name__": "probes", "__builtins__": builtins, "_autograder": self.helpers()}
        try:
            exec(compile(probes_source, "<probes>", "exec"), scope)
            return {"ok": True, "value": plain(scope[entry](args))}
        except Missing as error:
            return {"ok": False, "error": _str(error), "missing": True}
        except BaseException as error:
            return {"ok": False, "error": self.describe(error)}


def _last_cell_frame(error: BaseException, cells) -> tuple[str, int] | None:
    """(cell label, line) of the innermost frame in a notebook cell, read from C's traceback printer."""
    stream, saved = _StringIO(), sys.stderr
    try:
        sys.stderr = stream
        _excepthook(_type(error), error, error.__traceback__)
    except BaseException:
        return None
    finally:
        sys.stderr = saved
    found = None
    for line in stream.getvalue().split("\n"):
        line = line.strip()
        if line.startswith('File "<') and "line " in line:
            label = line[len('File "<'):line.find('>"')]
            try:
                number = _int(line.split("line ", 1)[1].split(",")[0])
            except ValueError:
                continue
            if label in cells:
                found = (label, number)
    return found


def plain(value, depth: int = 0):
    """Tensors, arrays and numbers as JSON-ready lists and floats; anything else as a short repr."""
    if depth > 20:
        return "..."
    if _Tensor is not None and isinstance(value, _Tensor):
        with _no_torch_function():
            value = _tolist(_detach(value))
    elif _type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        value = value.tolist()
    kind = _type(value)
    if kind in (_list, _tuple):
        return [plain(v, depth + 1) for v in value]
    if kind is _dict:
        return {_str(k): plain(v, depth + 1) for k, v in value.items()}
    if value is None or kind in (_bool, _str):
        return value
    if kind is _float or kind is _int:
        return value
    if isinstance(value, (_int, _float)):
        return _float(value)
    return _repr(value)[:200]


def encode(value) -> bytes:
    """JSON, written with captured builtins only (json's module can be replaced by student code)."""
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts).encode("utf-8", "replace")


def _encode(value, parts: list) -> None:
    kind = _type(value)
    if value is None:
        parts.append("null")
    elif kind is _bool:
        parts.append("true" if value else "false")
    elif kind is _int:
        parts.append(_int.__repr__(value))
    elif kind is _float:
        parts.append(_float.__repr__(value) if _isfinite(value) else
                     ("NaN" if value != value else "Infinity" if value > 0 else "-Infinity"))
    elif kind is _str:
        parts.append(_quote(value))
    elif kind is _list:
        parts.append("[")
        for index, item in enumerate(value):
            parts.append("," if index else "")
            _encode(item, parts)
        parts.append("]")
    elif kind is _dict:
        parts.append("{")
        for index, (key, item) in enumerate(value.items()):
            parts.append(("," if index else "") + _quote(_str.__str__(key)) + ":")
            _encode(item, parts)
        parts.append("}")
    else:
        parts.append(_quote(_str.__str__(_repr(value))[:200]))


def _quote(text: str) -> str:
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif code < 0x20 or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)
