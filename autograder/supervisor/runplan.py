"""What a run starts with: its scrubbed environment, and its plan for the zygote (scratch folder, rlimits, and in
the fallback its uid and cgroups)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from autograder.limits import Limits
from autograder.supervisor import host
from autograder.supervisor.cgroups import Cgroups

__all__ = ["run_plan", "scrubbed_env"]


def run_plan(limits: Limits, mode: str, scratch: Path | None, groups: Cgroups, user) -> dict:
    rlimits = {"RLIMIT_CPU": limits.wall_seconds * 2, "RLIMIT_FSIZE": limits.max_file_mb * 2**20, "RLIMIT_CORE": 0}
    # A slot user of its own: its count is the run's (a TA's own user also runs their desktop: no limit there).
    # Kept beside a pids cgroup in the full sandbox, whose run is moved into it only after this plan is sent.
    if user is not None and ("pids" not in groups.paths or mode == "namespaces"):
        rlimits["RLIMIT_NPROC"] = limits.max_processes
    if mode == "namespaces":
        return {"scratch": "/scratch", "scratch_mb": limits.scratch_mb, "rlimits": rlimits,
                "keep": [str(p) for p in host.python_paths()]}  # bound at the same paths in the view
    return {"scratch": str(scratch), "rlimits": rlimits,
            "cgroup_procs": [str(path / "cgroup.procs") for path in groups.paths.values()],
            "uid": user.pw_uid if user else None, "gid": user.pw_gid if user else None}


def scrubbed_env(scratch: str) -> dict[str, str]:
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": scratch, "TMPDIR": scratch, "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1", "MPLBACKEND": "Agg",
        "JUPYTER_RUNTIME_DIR": f"{scratch}/.jupyter", "IPYTHONDIR": f"{scratch}/.ipython",
        "MPLCONFIGDIR": f"{scratch}/.matplotlib", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
    }
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # see the machine notes: old OpenBLAS needs them
        if name in os.environ:
            env[name] = os.environ[name]
    return env
