"""Engine helpers that run INSIDE the student's kernel, before an assignment's probes.

This file's text is sent to the kernel by the worker (it is not imported by the grader). Its globals start
with `_ag` / `_autograder`, so that they do not collide with student names. The grader appends the line
`_autograder.definitions = {...}` (the notebook's definitions, as located by notebook.py).
Everything a probe returns must be plain JSON data; the grader validates it and trusts nothing else.
"""

import json as _json
import sys as _sys
import traceback as _traceback
import types as _types


def _ag_load(name, base=None, not_base=None):
    """The student's last definition of `name`, re-executed in a copy of the notebook's globals.

    `base` / `not_base` pick among same-named definitions by a substring of a base class (the HW4 notebook
    defines `LinearModel` twice: an nn.Module, then a plain class).
    """
    candidates = _autograder.definitions.get(name, [])
    if base is not None:
        candidates = [d for d in candidates if any(base in b for b in d["bases"])]
    if not_base is not None:
        candidates = [d for d in candidates if not any(not_base in b for b in d["bases"])]
    if not candidates:
        raise _autograder.Missing(f"`{name}` is not defined in your notebook")
    chosen = candidates[-1]
    namespace = dict(globals())
    padded = "\n" * (chosen["line"] - 1) + chosen["source"]  # tracebacks then give the line in the cell
    exec(compile(padded, f"<{chosen['cell_label']}>", "exec"), namespace)
    return namespace[name]


def _ag_describe(error):
    """`TypeError: ... (raised at cell 7 (id `adam`), line 12)` without grader frames."""
    where = ""
    for frame in reversed(_traceback.extract_tb(error.__traceback__)):
        if frame.filename.startswith("<cell"):
            where = f" (raised at {frame.filename.strip('<>')}, line {frame.lineno})"
            break
    return f"{type(error).__name__}: {error}"[:1500] + where


def _ag_plain(value):
    """Tensors, arrays and numbers as JSON-ready lists and floats."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().tolist()
    elif hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_ag_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _ag_plain(v) for k, v in value.items()}
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value) if isinstance(value, float) else int(value)
    return repr(value)[:200]


def _ag_emit(payload):
    from IPython.display import display
    text = _json.dumps(payload, allow_nan=True)
    display({"application/x-autograder-observation+json": _json.loads(text)}, raw=True)


def _ag_call(function, *args):
    """Run one probe and emit {"ok": True, "value": ...} or {"ok": False, "error": ...}."""
    try:
        value = function(*args)
        _ag_emit({"ok": True, "value": _ag_plain(value)})
    except _autograder.Missing as error:
        _ag_emit({"ok": False, "error": str(error), "missing": True})
    except BaseException as error:  # SystemExit and KeyboardInterrupt from student code included
        _ag_emit({"ok": False, "error": _ag_describe(error)})


class _AgCallWatch:
    """Records calls into functions whose file lies under one of `folders` (e.g. torch/optim/).

    Used as a context manager around student code; reports whether the student removed the hook. A trace
    function, not a profiler: it hears only of Python frames being entered (every torch.optim function is
    Python), not of each C call and return, so it slows the student's code far less.
    """

    def __init__(self, folders):
        self.folders = tuple(folders)
        self.hits = []
        self.tampered = False

    def _hook(self, frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith(self.folders) and len(self.hits) < 20:
            self.hits.append(f"{frame.f_code.co_name} in {'/'.join(frame.f_code.co_filename.rsplit('/', 3)[-3:])}")
        return None  # no line-by-line tracing of the frame

    def __enter__(self):
        self._previous = _sys.gettrace()
        _sys.settrace(self._hook)
        return self

    def __exit__(self, *exc):
        if _sys.gettrace() != self._hook:  # bound methods compare equal, never identical
            self.tampered = True
        _sys.settrace(self._previous)
        return False


class _AgMissing(Exception):
    """A graded name is absent from the notebook."""


_autograder = _types.SimpleNamespace(
    load=_ag_load, call=_ag_call, plain=_ag_plain, describe=_ag_describe, CallWatch=_AgCallWatch,
    Missing=_AgMissing, definitions={},
)
