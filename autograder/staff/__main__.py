import sys

from autograder.staff.cli import main

sys.exit(main())
