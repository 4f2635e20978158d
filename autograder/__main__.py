"""`python -m autograder`: in a checkout every command (the staff's CLI, autograder/staff/cli.py); in a Gradescope
zip, which holds no autograder/staff, the grading modes (autograder/cli.py). The program, not a module: nothing
imports it, and it is the one place outside autograder/staff that names the staff package."""

import atexit
import os
import sys

# Before anything imports torch: the grader's own tensor work (the reference's answers, the cases' replays) is many
# small operations, for which torch's thread pool only spins the other cores (Part 1's cases on 2 cores: the same
# wall time, 40% more CPU), which a batch's other grader needs.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from autograder.argv import hide  # noqa: E402  (before the engine's imports: re-executing costs no more than this)

hide()

try:
    from autograder.staff.cli import main
except ModuleNotFoundError as missing:
    if missing.name != "autograder.staff":  # a package the staff's tools need is missing: say so
        raise
    from autograder.cli import main

code = main()
# The exit handlers (the sandbox's warm starts) run as usual; the interpreter's teardown, most of a second with
# torch and pytest loaded, is skipped: a finished grading has nothing left in memory to save.
atexit._run_exitfuncs()
sys.stdout.flush()
sys.stderr.flush()
os._exit(int(code or 0))
