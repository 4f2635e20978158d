"""Confine the current process: the last step before student-facing code runs, in a freshly forked child.

Standard library only, and plain data only: it runs both between fork and exec (subprocess's preexec_fn) and in
children of the warm start (zygote.py), which loads this file by path, not as part of the grader's package.
The grader decides what a plan holds (sandbox.py); this file only applies it, in an order that matters:
cgroups and the network namespace need root, so the user is changed last.
"""

import ctypes
import os
import resource

CLONE_NEWNET = 0x40000000


def confine(plan: dict) -> None:
    """plan: {"cgroup_procs": [paths], "unshare_network": bool, "rlimits": {name: value},
    "address_space_mb": int | None, "relative_address_space": bool, "uid": int | None, "gid": int | None}."""
    os.setsid()
    for procs in plan["cgroup_procs"]:
        with open(procs, "w") as stream:
            stream.write(str(os.getpid()))
    if plan["unshare_network"]:
        ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET)
    for name, value in plan["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    if plan["address_space_mb"]:
        # Address space, not resident memory: torch maps far more than it touches. A forked child already maps
        # what its parent imported, so its allowance counts from there.
        base = _mapped_bytes() if plan["relative_address_space"] else 0
        limit = base + plan["address_space_mb"] * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if plan["uid"] is not None:
        os.setgroups([])
        os.setgid(plan["gid"])
        os.setuid(plan["uid"])


def _mapped_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0
