"""`python -m autograder`: in a checkout every command (the staff's CLI, autograder/staff/cli.py); in a Gradescope
zip, which holds no autograder/staff, the grading modes (autograder/cli.py). The program, not a module: nothing
imports it, and it is the one place outside autograder/staff that names the staff package."""

import os
import sys

# Before anything imports torch: the grader's own tensor work (the reference's answers, the cases' replays) is many
# small operations, for which torch's thread pool only spins the other cores (Part 1's cases on 2 cores: the same
# wall time, 40% more CPU), which a batch's other grader needs.
os.environ.setdefault("OMP_NUM_THREADS", "1")

try:
    from autograder.staff.cli import main
except ModuleNotFoundError as missing:
    if missing.name != "autograder.staff":  # a package the staff's tools need is missing: say so
        raise
    from autograder.cli import main

sys.exit(main())
