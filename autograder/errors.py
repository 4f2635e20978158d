"""Every error the grader and its staff tools raise on purpose, in one place.

Two kinds. A GraderError is about a submission: `student_message` is what the student reads, `staff_detail`
what the staff need to debug. The others are about the staff's own input or configuration and carry a message
for them; the CLI (autograder/cli.py) catches them at one boundary. Anything else is a bug: it keeps its
traceback and a non-zero exit code.
"""

__all__ = ["GraderError", "SubmissionError", "NotRun", "InputError", "BuildError", "RubricError"]


class GraderError(Exception):
    """Expected failure of a grading run; `student_message` is shown, `staff_detail` is kept hidden."""

    def __init__(self, student_message: str, staff_detail: str = ""):
        super().__init__(student_message)
        self.student_message = student_message
        self.staff_detail = staff_detail or student_message


class SubmissionError(GraderError):
    """The submission cannot be graded as handed in (no notebook, not JSON, not a notebook)."""


class NotRun(GraderError):
    """A case could not run (missing definition, crashed probe, no observations): it scores 0, saying why."""


class InputError(ValueError):
    """Bad input to a staff command (an unknown assignment, an unreadable or mismatched zip): the CLI prints the
    message and exits 2. A ValueError, as the project's convention for bad input."""


class BuildError(Exception):
    """The zip was not written; the message says why and what to fix."""


class RubricError(Exception):
    """An assignment's rubric.yml is invalid or disagrees with its cases: a mistake of the staff, never charged to
    a student (the build refuses it; a grading run fails for review)."""
