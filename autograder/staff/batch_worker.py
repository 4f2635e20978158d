"""The batch's long-lived grader (staff only): `python -m autograder.staff.batch_worker` grades submission after
submission in one process.

Why: a fresh `python -m autograder` per submission pays its start-up (python, `import torch`, pytest, the
reference's first torch.optim use: about 2.5 CPU-seconds) every time. batch.py keeps one of these per job slot
instead, so a class pays it once per slot, and replaces one that times out or dies.

Protocol, one JSON line each way per submission:
  stdin:  {"submission": path, "results": path, "log": path, "assignment": name or null}
  stdout: {"done": true}  once grade() has written results.json (it always does)
EOF on stdin ends the process. The real stdout carries these lines only: fd 1 and 2, sys.stdout and sys.stderr
point at the current job's log (at the start-up's stderr before the first job, at /dev/null between jobs), so
nothing a library prints can corrupt the protocol. SIGINT interrupts the grading in progress, which then cleans
its sandbox and writes results.json, and ends the process.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable

from autograder.config import from_environment

__all__ = ["main"]


def main(grade: Callable[..., dict] | None = None) -> int:
    """Serve jobs from stdin until EOF. `grade` replaces autograder.grade.grade (tests use a fake)."""
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")  # first: from here on fd 1 is never the protocol
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)  # nothing else may read the jobs
    os.dup2(2, 1)  # start-up noise goes where the batch sent our stderr: the first job's log
    # So a crash loses nothing of a job's log. (sys.stdout is a TextIOWrapper here; typeshed says TextIO.)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported: as autograder/__main__.py says
    if grade is None:
        from autograder.grade import grade as real_grade  # after the redirection: its imports may print
        grade = real_grade
    config = from_environment()  # the batch gives each grader its secret, rubric and sandbox user in its environment
    while line := requests.readline():
        job = json.loads(line)
        with open(job["log"], "ab") as log:
            _output_to(log.fileno())
            try:
                grade(Path(job["submission"]), Path(job["results"]), job.get("assignment"),
                      log=lambda message: print(message, file=sys.stderr, flush=True), config=config)
            finally:
                _output_to(null)
        replies.write(json.dumps({"done": True}) + "\n")
        replies.flush()
    return 0


def _output_to(fd: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)


if __name__ == "__main__":
    sys.exit(main())
