"""A run's limits (an assignment states them), and the CPU budget of one measurement call under them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits", "budgeted"]


@dataclass(frozen=True)
class Limits:
    wall_seconds: int = 540  # whole run; Gradescope's default box allows 600 s per submission
    cell_timeout: int = 120  # one notebook cell or one measurement call
    memory_mb: int = 1200  # what the run's processes hold of their own (not the pages shared with the zygote)
    # A measurement call's CPU-time budget: max(cpu_floor_seconds, cpu_factor x the reference's CPU time for the
    # same call, measured by the grader). CPU time does not depend on how busy the machine is; the wall-clock
    # limit (cell_timeout, the run's deadlines) is only a backstop, wide enough for a half-core box.
    cpu_floor_seconds: int = 60
    cpu_factor: float = 50.0
    max_processes: int = 128  # threads count too
    max_file_mb: int = 64  # largest file the student's code may write
    output_kb_per_cell: int = 1000  # printed output kept per cell
    scratch_mb: int = 128  # the run's scratch folder (a tmpfs in the full sandbox)


def budgeted(call: dict, limits: Limits) -> dict:
    """The call's CPU budget (calibrated by the reference's own CPU time where the grader measured it) and its
    wall-clock backstop, then twice the budget: room for a CPU-bound child on half a core on a busy machine."""
    reference, timeout = call.get("reference_cpu_seconds"), call.get("timeout", 60)
    if reference is None:  # no calibration (tests, the GPU harness): the call's own wall limit bounds its CPU too
        return {**call, "cpu_seconds": max(limits.cpu_floor_seconds, timeout), "timeout": timeout,
                "wall_is_limit": True}
    budget = round(max(limits.cpu_floor_seconds, limits.cpu_factor * reference), 1)
    return {**call, "cpu_seconds": budget, "timeout": max(timeout, 2 * budget)}
