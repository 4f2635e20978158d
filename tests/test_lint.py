"""ruff and mypy, as configured in pyproject.toml, pass on the checkout (a unit-tier test: seconds)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_passes():
    done = run("ruff", "check", "--no-cache", ".")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_mypy_passes(tmp_path):
    done = run("mypy", "--cache-dir", str(tmp_path / "mypy"))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "no issues found" in done.stdout


def test_every_module_of_the_sandbox_side_is_type_checked_inside_untyped_functions_too():
    """pyproject.toml lists the sandbox's modules by their bare names (they are not autograder.inside.* to mypy)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    checked = {name for override in config["overrides"] if override.get("check_untyped_defs")
               for name in override["module"]}
    inside = {path.stem for path in (ROOT / "autograder" / "inside").glob("*.py") if path.stem != "__init__"}
    assert len(inside) > 10 and inside <= checked, sorted(inside - checked)
