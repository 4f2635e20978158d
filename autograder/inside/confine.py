"""Confine the current process when the kernel refuses namespaces (the fallback; Gradescope's container may).

Applied by the zygote (zygote.py, then running as the grader's user) in each run's freshly forked process, before
any student-facing code: its own session, the run's cgroups where the grader made some, rlimits, first in line for
the out-of-memory killer (so that a hog, not the grader, is what the kernel stops in a full box) (`confine`); then
the unprivileged user of this run (`become`). The run's process forks the measurement process between the two, so
that each takes the user with supplementary groups of its own: the notebook run gets the group that may read the
forbidden packages' files (the course's given cells use torch.optim), the measurement process gets none, and the
kernel's permission checks then keep those files from it by any route (supervisor/filepolicy.py). Neither can
change its groups afterwards (that needs root). No address-space limit: torch and transformers map far more than
they use, so memory is bounded by what measures memory (the cgroup, the grader's watchdog, the OOM killer's order).
Plain data in, standard library only.
"""

import os
import resource


def confine(plan: dict) -> None:
    """plan: {"cgroup_procs": [paths], "rlimits": {name: value}, ...}: everything but the user."""
    os.setsid()
    for procs in plan["cgroup_procs"]:
        with open(procs, "w") as stream:
            stream.write(str(os.getpid()))
    for name, value in plan["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    first_to_go()


def become(plan: dict, groups: list[int]) -> None:
    """plan: {"uid": int | None, "gid": int | None}: that user, with exactly `groups` as supplementary groups."""
    if plan["uid"] is not None:
        os.setgroups(groups)
        os.setgid(plan["gid"])
        os.setuid(plan["uid"])


def first_to_go() -> None:
    """Raising one's own oom_score_adj needs no privilege; the grader keeps its own."""
    try:
        with open("/proc/self/oom_score_adj", "w") as stream:
            stream.write("1000")
    except OSError:
        pass
