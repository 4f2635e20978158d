"""What the grader overlaps with the sandbox, and only where memory allows it (issue 19's speed, issue 15's box).

In Gradescope's 768 MiB box the grader holds no torch while the student's processes run: the answers' child exits
before the zygote boots, and the cases' imports wait for the run to end. With memory to spare the zygote boots beside
that child and the cases' imports load during the run. In process: the sandbox and the child are replaced by
recorders of the order in which grade_notebook reaches them."""

import subprocess
import sys
from pathlib import Path

import pytest

from autograder import grade
from autograder.assignment import load_assignment
from autograder.notebook import load_notebook
from autograder.supervisor import memory

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solution" / "notebooks" / "hw4_part1.ipynb"


class Stop(Exception):
    """Raised by the fake sandbox: the order up to the run is all this test needs."""


def order_of_events(monkeypatch, room: bool) -> list[str]:
    events: list[str] = []

    class Loading:
        def join(self):
            events.append("cases imported")

    monkeypatch.setattr(grade, "room_to_overlap", lambda: room)
    monkeypatch.setattr(grade, "warm_start", lambda *a, **k: events.append("zygote"))
    monkeypatch.setattr(grade, "prepared_calls", lambda make, ref: events.append("answers' child") or ([], {}, {}))
    monkeypatch.setattr(grade, "import_cases_soon", lambda path: events.append("cases import starts") or Loading())

    def run_worker(*args, **kwargs):
        events.append("sandbox run")
        raise Stop

    monkeypatch.setattr(grade, "run_worker", run_worker)
    with pytest.raises(Stop):
        grade.grade_notebook(load_notebook(SOLUTION), load_assignment("hw4_part1"), [], 0.0)
    return events


def test_in_a_tight_box_each_waits_its_turn(monkeypatch):
    # the control for the test below: the same grader, told that memory is short
    assert order_of_events(monkeypatch, room=False) == ["answers' child", "zygote", "sandbox run"]


def test_with_memory_to_spare_the_zygote_boots_beside_the_answers_and_the_cases_load_during_the_run(monkeypatch):
    events = order_of_events(monkeypatch, room=True)
    assert events[:2] == ["zygote", "answers' child"]
    # the import thread starts after the fork of the answers' child (a lock held at a fork is never released there)
    assert events.index("cases import starts") > events.index("answers' child")
    assert events.index("cases import starts") < events.index("sandbox run")


def test_room_to_overlap_reads_the_containers_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "CONTAINER_V1", tmp_path)
    (tmp_path / "memory.stat").write_text(f"total_rss {300 * 2**20}\ntotal_swap 0\n")
    (tmp_path / "memory.limit_in_bytes").write_text(str(768 * 2**20))  # Gradescope's box
    assert not memory.room_to_overlap()
    (tmp_path / "memory.limit_in_bytes").write_text(str(8 * 2**30))
    assert memory.room_to_overlap()
    (tmp_path / "memory.limit_in_bytes").write_text(str(2**63 - 4096))  # no limit
    assert memory.room_to_overlap()


def test_the_cases_import_loads_what_the_cases_import():
    code = ("import sys; from pathlib import Path; from autograder.plugin import import_cases_soon\n"
            "assert 'torch' not in sys.modules\n"
            "import_cases_soon(Path('autograder/assignments/hw4_part1/cases.py')).join()\n"
            "print('torch' in sys.modules, 'autograder.assignments.hw4_part1.judge' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True", "True"], out.stderr
