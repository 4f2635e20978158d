"""The command line kept out of /proc/PID/cmdline, which every user can read: in the fallback a sandboxed run is a
user of its own, and a batch's arguments name the folder of the classmates' notebooks. As root, `python -m
autograder ARGS` re-executes itself at once, before any heavy import, with ARGS in its environment, which only its
own user can read. Imports nothing of the engine: autograder/__main__.py calls it first."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

__all__ = ["hide", "hidden"]

VARIABLE = "AUTOGRADER_PRIVATE_ARGV"
ROOT = Path(__file__).resolve().parent.parent


def hide() -> None:
    """Re-execute `python -m autograder` with its arguments moved into the environment; returns only where there
    is nothing to hide (not root, no arguments, or this is the re-executed process)."""
    if os.geteuid() != 0 or not sys.argv[1:] or VARIABLE in os.environ:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    boot = f"import sys, runpy; sys.path.insert(0, {str(ROOT)!r}); runpy.run_module('autograder', run_name='__main__')"
    os.execve(sys.executable, [sys.executable, "-c", boot], {**os.environ, VARIABLE: json.dumps(sys.argv[1:])})


def hidden() -> list[str] | None:
    """The arguments hide() moved, taken out of the environment (no child inherits them); None: use sys.argv."""
    value = os.environ.pop(VARIABLE, None)
    return json.loads(value) if value is not None else None
