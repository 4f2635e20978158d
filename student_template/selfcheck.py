"""Build the students' self-check for Part 1 (`hw4_part1_selfcheck.py`, shipped beside the notebook).

The bundle is the driver (selfcheck_driver.py) with the grader's replay.py pasted in verbatim and the grader's run
settings (hyper-parameters, step counts, the stream position of each notebook check) written in from the
assignment's own constants, so the self-check judges exactly as the grader does and cannot drift from it.
No secret, no hidden problem and no reference code goes in: replay.py holds only the update rules the notebook
states and the named mistakes. build.py writes it with the notebooks (and `--check` reports it stale).
"""

from __future__ import annotations

import pprint
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPLAY = ROOT / "autograder" / "assignments" / "hw4_part1" / "replay.py"
DRIVER = ROOT / "student_template" / "selfcheck_driver.py"
TARGET = ROOT / "student_template" / "hw4_part1_selfcheck.py"
RULE_LINE = 'RULE_SOURCE = ""  # bundle: the grader\'s replay.py, verbatim\n'
RUNS_LINE = "RUNS = {}  # bundle: the grader's run settings\n"


def _call(name: str, kwargs: dict) -> str:
    return f"{name}({', '.join(f'{k}={v}' for k, v in kwargs.items())})"


def run_settings() -> dict:
    """Per optimizer, the public runs: the notebook's own evaluation on the course data (the grader's notebook
    check), and the grader's other hyper-parameters on the course inputs with targets near the starting point
    (where ε and the accumulator's start show, as in the grader's runs with small gradients)."""
    from autograder.assignments import hw4_part1 as grader
    settings = {}
    for name in grader.OPTIMIZERS:
        settings[name] = [
            {"label": f"{_call(name, grader.HANDOUT_KWARGS[name])}, the notebook's {grader.HANDOUT_STEPS} steps",
             "data": "course", "kwargs": grader.HANDOUT_KWARGS[name], "steps": grader.HANDOUT_STEPS,
             "draws": grader.PUBLIC_DRAWS[name]},
            {"label": f"{_call(name, grader.CUSTOM_KWARGS[name])}, {grader.CUSTOM_STEPS} steps on targets near "
                      "the starting point",
             "data": "near_start", "kwargs": grader.CUSTOM_KWARGS[name], "steps": grader.CUSTOM_STEPS, "draws": 0},
        ]
    return settings


def render(replay_text: str | None = None, driver_text: str | None = None, settings: dict | None = None) -> str:
    """The bundle's text: the driver with replay.py's text (as it is now, unless given) and the run settings."""
    replay_text = REPLAY.read_text() if replay_text is None else replay_text
    driver_text = DRIVER.read_text() if driver_text is None else driver_text
    settings = run_settings() if settings is None else settings
    if "'''" in replay_text or replay_text.endswith("\\"):
        raise ValueError("replay.py cannot be pasted into a r'''...''' string: it holds ''' or ends with '\\'")
    for line in (RULE_LINE, RUNS_LINE):
        if driver_text.count(line) != 1:
            raise ValueError(f"the driver should hold the line {line.strip()!r} exactly once")
    rule = f"RULE_SOURCE = r'''{replay_text}'''  # the grader's replay.py, verbatim\n"
    runs = f"RUNS = {pprint.pformat(settings, width=116, sort_dicts=False)}\n"
    return driver_text.replace(RULE_LINE, rule).replace(RUNS_LINE, runs)


def targets() -> dict[Path, str]:
    """Target path -> text, as build.render gives the notebooks'."""
    return {TARGET: render()}
