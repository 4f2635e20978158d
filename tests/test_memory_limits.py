"""The run's memory without ptrace, the watchdog, the CPU budgets and the reference answered in a child."""

import os
import subprocess
import sys
import time

import pytest

from autograder import answers
from autograder.limits import Limits, budgeted
from autograder.supervisor import memory
from autograder.supervisor.memory import MemoryReport, MemoryWatch
from autograder.supervisor.replies import _whose_fault


def test_anonymous_memory_comes_from_statm_and_follows_an_allocation():
    before = memory.anonymous_mb(os.getpid())
    block = bytearray(64 * 2**20)
    block[::4096] = b"1" * len(block[::4096])
    assert memory.anonymous_mb(os.getpid()) - before > 50
    assert memory.anonymous_mb(2**22 + 12345) == 0.0  # gone: nothing, not an error


def test_the_watchdog_stops_the_biggest_process_beyond_the_zygotes_share():
    hog = subprocess.Popen([sys.executable, "-c", "x = bytearray(300 * 2**20); x[::4096] = b'1' * len(x[::4096]); "
                            "import time; time.sleep(60)"])
    small = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        deadline = time.monotonic() + 30
        while memory.anonymous_mb(hog.pid) < 280 and time.monotonic() < deadline:
            time.sleep(0.05)
        # the control: the same hog, watched with the limit above it, is measured and left alone
        roomy = MemoryWatch(lambda: [hog.pid, small.pid], 600, baseline_pid=small.pid, interval=0.05).start()
        time.sleep(0.5)
        left_alone = roomy.stop()
        assert hog.poll() is None and not left_alone.stopped and not left_alone.exceeded
        assert left_alone.peak_mb > 250
        watch = MemoryWatch(lambda: [hog.pid, small.pid], 150, baseline_pid=small.pid, interval=0.05).start()
        assert hog.wait(timeout=30) == -9
        report = watch.stop()
    finally:
        for process in (hog, small):
            process.kill()
            process.wait()
    assert list(report.stopped) == [hog.pid] and report.stopped[hog.pid] > 150 and report.exceeded
    assert report.stopped_inside == [hog.pid]  # no PID namespace here: the same number
    assert report.peak_mb > 150 and report.source == "statm"


def test_the_watchdogs_limit_stays_below_what_the_container_has_left(tmp_path, monkeypatch):
    (tmp_path / "memory.limit_in_bytes").write_text(str(768 * 2**20))
    (tmp_path / "memory.stat").write_text(f"cache 0\ntotal_rss {300 * 2**20}\ntotal_swap 0\n")
    monkeypatch.setattr(memory, "CONTAINER_V1", tmp_path)
    assert memory.container_room_mb() == 468
    assert MemoryWatch(lambda: [], 640, None).report.limit_mb == 468 - memory.ROOM_MARGIN_MB
    assert MemoryWatch(lambda: [], 200, None).report.limit_mb == 200  # a smaller limit of its own stays
    (tmp_path / "memory.limit_in_bytes").write_text(str(2**63 - 4096))  # no limit: nothing to keep below
    assert memory.container_room_mb() is None


def test_a_check_stopped_twice_is_the_students_only_when_the_runs_own_limit_stopped_it():
    def stopped():
        return {"ok": False, "needs_review": "box", "pids": [6, 7], "error": "stopped twice by the machine"}
    box = MemoryReport(640, container_oom_kills=2)
    assert _whose_fault({"c": stopped()}, box)["c"]["needs_review"] == "box"
    watched = MemoryReport(640, stopped={4242: 700.0}, stopped_inside=[7])
    verdict = _whose_fault({"c": stopped()}, watched)["c"]
    assert "needs_review" not in verdict and verdict["stopped"] == "memory" and "640 MB" in verdict["error"]
    cgroup = MemoryReport(640, cgroup_oom_kills=1)
    assert "needs_review" not in _whose_fault({"c": stopped()}, cgroup)["c"]


def test_cpu_budgets_follow_the_references_cost_with_a_floor_and_the_wall_is_a_backstop():
    limits = Limits(cpu_floor_seconds=60, cpu_factor=50)
    costly = budgeted({"name": "model", "timeout": 120, "reference_cpu_seconds": 5.6}, limits)
    assert costly["cpu_seconds"] == 280.0 and costly["timeout"] == 560.0
    cheap = budgeted({"name": "loss", "timeout": 60, "reference_cpu_seconds": 0.01}, limits)
    assert cheap["cpu_seconds"] == 60 and cheap["timeout"] == 120
    unknown = budgeted({"name": "probe", "timeout": 3}, limits)  # no reference (tests, the harness)
    assert unknown["cpu_seconds"] == 60 and unknown["timeout"] == 3 and unknown["wall_is_limit"]
    assert "wall_is_limit" not in costly
    harness = budgeted({"name": "numeric", "timeout": 870}, limits)
    assert harness["cpu_seconds"] == 870 and harness["timeout"] == 870


class _Call:
    def __init__(self, name, seconds):
        self.name, self.seconds = name, seconds

    def key(self):
        return f"{self.name}:{self.seconds}"


def _spin(call):
    import colorsys  # noqa: F401  (imported where the reference runs)
    end = time.process_time() + call.seconds
    while time.process_time() < end:
        pass
    return {"pid": os.getpid(), "name": call.name}


def test_the_reference_answers_in_a_child_that_exits_and_its_cpu_time_is_measured():
    sys.modules.pop("colorsys", None)
    calls = [_Call("busy", 0.3), _Call("quick", 0.0)]
    got, costs = answers.reference_answers(_spin, calls)
    assert got["busy"]["pid"] != os.getpid() and "colorsys" not in sys.modules  # not in the grader
    try:  # the control: the same function called here imports into the grader
        assert _spin(_Call("here", 0.0))["pid"] == os.getpid() and "colorsys" in sys.modules
    finally:
        sys.modules.pop("colorsys", None)
    assert costs["busy"] >= 0.25 and costs["quick"] < 0.2
    again, _ = answers.reference_answers(_spin, calls)
    assert again == got and again["busy"] is not got["busy"]  # remembered, handed out as fresh copies


def _made_calls():
    import colorsys  # noqa: F401  (imported where the calls are made: torch, for Part 1's hidden problems)
    from autograder.assignment import Call
    return [Call("busy", "spin", {"seconds": 0.3, "values": (1.5, [2, 3])}, timeout=7, seed=11),
            Call("quick", "spin", {"seconds": 0.0})]


def _spin_call(call):
    return _spin(_Call(call.name, call.args["seconds"]))


def test_the_calls_are_made_with_their_answers_in_a_child_that_exits(monkeypatch):
    sys.modules.pop("colorsys", None)
    calls, got, costs = answers.prepared_calls(_made_calls, _spin_call)
    assert "colorsys" not in sys.modules  # what making the calls imported is not the grader's to hold
    busy, quick = calls  # as JSON carries them (and the sandbox receives them): a tuple comes back a list
    assert busy.to_json() == {"name": "busy", "entry": "spin", "args": {"seconds": 0.3, "values": [1.5, [2, 3]]},
                              "timeout": 7, "seed": 11}
    assert quick.to_json() == _made_calls()[1].to_json()
    assert got["busy"]["pid"] != os.getpid() and costs["busy"] >= 0.25 and costs["quick"] < 0.2
    sys.modules.pop("colorsys", None)
    again, known, _ = answers.prepared_calls(_made_calls, lambda call: pytest.fail("answered twice"))
    assert [c.to_json() for c in again] == [c.to_json() for c in calls] and known == got  # remembered

    # The control: where the child cannot answer (fork refused), the same work is done here, imports and all.
    def refused():
        raise OSError("fork refused")
    answers._answers.clear()
    monkeypatch.setattr(os, "fork", refused)
    here, mine, _ = answers.prepared_calls(_made_calls, _spin_call)
    assert "colorsys" in sys.modules and mine["busy"]["pid"] == os.getpid() and len(here) == 2


@pytest.fixture(autouse=True)
def _fresh_answer_store():
    answers._answers.clear()
    answers._costs.clear()
    yield
    answers._answers.clear()
    answers._costs.clear()


def test_a_check_the_box_stopped_says_staff_will_review_it_and_is_listed_for_review():
    from autograder.plugin import CaseResult, NeedsReview, Submission
    from autograder.results import build_results
    reply = {"probes": {"model": {"ok": False, "needs_review": "box", "error": "stopped twice by the machine"},
                        "step": {"ok": False, "error": "your code raised"}}}
    submission = Submission(None, reply, "", {}, None, None)
    with pytest.raises(NeedsReview, match="stopped twice"):
        submission.probe("model")
    with pytest.raises(Exception) as plain:
        submission.probe("step")
    assert not isinstance(plain.value, NeedsReview)
    cases = [CaseResult("a", "2.1", 1, 0.0, "failed", "**Staff will review this check:** ...", review="box"),
             CaseResult("b", "2.2", 1, 1.0, "passed", "Passed.")]
    assert build_results(cases, "", 1.0)["extra_data"]["needs_review"] == [{"number": "2.1", "reason": "box"}]
    assert build_results(cases[1:], "", 1.0)["extra_data"]["needs_review"] == []
