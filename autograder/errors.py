"""Errors with two audiences: what the student reads, and what the staff need to debug."""

__all__ = ["GraderError", "SubmissionError", "SandboxError"]


class GraderError(Exception):
    """Expected failure of a grading run; `student_message` is shown, `staff_detail` is kept hidden."""

    def __init__(self, student_message: str, staff_detail: str = ""):
        super().__init__(student_message)
        self.student_message = student_message
        self.staff_detail = staff_detail or student_message


class SubmissionError(GraderError):
    """The submission cannot be graded as handed in (no notebook, not JSON, not a notebook)."""


class SandboxError(GraderError):
    """The worker could not be started or gave no usable reply."""
