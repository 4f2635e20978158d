"""`python -m autograder`: in a checkout every command (the staff's CLI, autograder/staff/cli.py); in a Gradescope
zip, which holds no autograder/staff, the grading modes (autograder/cli.py). The program, not a module: nothing
imports it, and it is the one place outside autograder/staff that names the staff package."""

import sys

try:
    from autograder.staff.cli import main
except ModuleNotFoundError as missing:
    if missing.name != "autograder.staff":  # a package the staff's tools need is missing: say so
        raise
    from autograder.cli import main

sys.exit(main())
