"""What the measurement's kernel policy costs: per measurement child (its seccomp filter) and once per
measurement process (Landlock + the measurement filter + the guard), against the same work without it, in one run.

    .venv/bin/python benchmarks/bench_policy.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "autograder" / "inside"))


def _fork_child(body) -> float:
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        body()
        os._exit(0)
    os.waitpid(pid, 0)
    return time.perf_counter() - started


def _in_fresh_process(body) -> float:
    """body() once in a forked process (a process can be confined only once); its seconds."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        started = time.perf_counter()
        body()
        os.write(write, repr(time.perf_counter() - started).encode())
        os._exit(0)
    os.close(write)
    seconds = float(os.read(read, 64))
    os.waitpid(pid, 0)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    rounds = parser.parse_args(argv).rounds
    import pyseccomp  # noqa: F401  (the measurement process has it loaded before it forks)
    import torch  # noqa: F401
    import policy
    import syscalls
    plain, filtered = [], []
    for _ in range(rounds):  # interleaved: a busy box slows both alike
        plain.append(_fork_child(lambda: None))
        filtered.append(_fork_child(lambda: syscalls.install("child", os.getpid())))
    print(f"measurement child, fork + exit:            median {statistics.median(plain) * 1000:7.2f} ms")
    print(f"measurement child, fork + filter + exit:   median {statistics.median(filtered) * 1000:7.2f} ms "
          f"(+{(statistics.median(filtered) - statistics.median(plain)) * 1000:.2f} ms per call)")
    declared = {"imports": ["torch"], "forbidden": ["torch.optim"], "kernels": ["aten::_fused_", "aten::_foreach_"]}
    guard_only, everything = [], []
    for _ in range(max(5, rounds // 3)):
        guard_only.append(_in_fresh_process(lambda: policy.confine_measurement(declared, "x", ("files", "syscalls"))))
        everything.append(_in_fresh_process(lambda: policy.confine_measurement(declared, "x")))
    print(f"measurement process, guard only:           median {statistics.median(guard_only) * 1000:7.1f} ms")
    print(f"measurement process, Landlock+seccomp+guard: median {statistics.median(everything) * 1000:7.1f} ms "
          f"(+{(statistics.median(everything) - statistics.median(guard_only)) * 1000:.1f} ms once per submission)")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
