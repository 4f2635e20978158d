"""The grader's configuration: read once, at an entry point, and passed down; nothing below looks it up again.

The entry points (autograder/cli.py, the staff's CLI and batch worker, the tests) call from_environment(); grade(),
the build gate and the sandbox take the GraderConfig they are given (GraderConfig(): no override at all). Nothing in
the grader writes os.environ to reach another part of itself: the build gate grades with a config of its own.

The variables, unchanged for TAs and Gradescope:
  $AUTOGRADER_SECRET_<NAME>  one assignment's secret (AUTOGRADER_SECRET_HW4_PART1 for hw4_part1)
  $AUTOGRADER_SECRET         every assignment's secret when it has none of its own (a fallback)
  $AUTOGRADER_RUBRIC         another rubric file to grade with (the batch's --zip extracts one)
  $AUTOGRADER_DISABLE        sandbox layers switched off, comma-separated: bwrap, cgroups, zygote, landlock (the
                             fallback then keeps torch.optim's files from the measurement by file permissions)
  $AUTOGRADER_SANDBOX_USER   the base name of the sandbox's slot users (setup.sh creates it)
  $AUTOGRADER_HOME           Gradescope's tree (/autograder); a fake one in tests
"""

from __future__ import annotations

import os
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

__all__ = ["GraderConfig", "from_environment", "secret_variable", "SHARED_SECRET", "RUBRIC_VARIABLE",
           "DISABLE_VARIABLE", "SANDBOX_USER_VARIABLE", "DEFAULT_SANDBOX_USER"]

SECRET_PREFIX = "AUTOGRADER_SECRET_"
SHARED_SECRET = "AUTOGRADER_SECRET"
RUBRIC_VARIABLE = "AUTOGRADER_RUBRIC"
DISABLE_VARIABLE = "AUTOGRADER_DISABLE"
SANDBOX_USER_VARIABLE = "AUTOGRADER_SANDBOX_USER"
HOME_VARIABLE = "AUTOGRADER_HOME"
DEFAULT_SANDBOX_USER = "ag-sandbox"


def secret_variable(name: str) -> str:
    """The environment variable holding one assignment's secret: AUTOGRADER_SECRET_HW4_PART1 for hw4_part1."""
    return SECRET_PREFIX + name.upper()


@dataclass(frozen=True)
class GraderConfig:
    secrets: Mapping[str, str] = field(default_factory=dict)  # assignment name -> its secret ($AUTOGRADER_SECRET_<NAME>)
    shared_secret: str = ""  # every assignment's secret after its own ($AUTOGRADER_SECRET); "": none
    rubric: Path | None = None  # the rubric file to grade with ($AUTOGRADER_RUBRIC); None: the assignment's own
    disabled: frozenset[str] = frozenset()  # sandbox layers switched off ($AUTOGRADER_DISABLE): bwrap, cgroups, zygote,
    # landlock
    sandbox_user: str = DEFAULT_SANDBOX_USER  # base name of the sandbox's slot users ($AUTOGRADER_SANDBOX_USER)
    home: Path = Path("/autograder")  # Gradescope's tree, for run_autograder without arguments ($AUTOGRADER_HOME)

    def __post_init__(self):
        if not isinstance(self.disabled, frozenset):
            raise ValueError(f"GraderConfig.disabled must be a frozenset, not {self.disabled!r}")
        if not self.sandbox_user:
            raise ValueError(f"GraderConfig.sandbox_user must name a user, not {self.sandbox_user!r}")
        # Frozen all the way down: nobody can change a secret under a grading that holds this config.
        object.__setattr__(self, "secrets", types.MappingProxyType({k.lower(): v for k, v in self.secrets.items()}))

    def secret_for(self, name: str) -> tuple[str, str] | None:
        """(secret, the variable it is read from) for assignment `name`, or None where the config has none."""
        if own := self.secrets.get(name.lower(), "").strip():
            return own, secret_variable(name)
        if self.shared_secret.strip():
            return self.shared_secret.strip(), SHARED_SECRET
        return None


def from_environment(env: Mapping[str, str] | None = None) -> GraderConfig:
    """The configuration the variables in `env` (default: os.environ) describe. Only entry points call this."""
    env = os.environ if env is None else env
    secrets = {k[len(SECRET_PREFIX):].lower(): v.strip() for k, v in env.items()
               if k.startswith(SECRET_PREFIX) and v.strip()}
    rubric = env.get(RUBRIC_VARIABLE, "")
    return GraderConfig(
        secrets=secrets, shared_secret=env.get(SHARED_SECRET, "").strip(),
        rubric=Path(rubric) if rubric else None,
        disabled=frozenset(filter(None, (p.strip() for p in env.get(DISABLE_VARIABLE, "").split(",")))),
        sandbox_user=env.get(SANDBOX_USER_VARIABLE, "") or DEFAULT_SANDBOX_USER,
        home=Path(env.get(HOME_VARIABLE, "") or "/autograder"))
