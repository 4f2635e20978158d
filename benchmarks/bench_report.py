"""Cost of the class report and of the similar-submissions search for a generated class of 600.

    .venv/bin/python benchmarks/bench_report.py [--students 600]

The class: results from the grader's own builder (tests/staff_fixtures.py) with random named mistakes and a few
timeouts and crashes; notebooks made from the template by mixing, per graded section, one of four independently
written solutions (the reference and tests/submissions/similarity/independent_*.py), plus a line of the
student's own, with five disguised copies planted. Prints the report's time (figures and page, no similarity),
the similarity search's time (reading notebooks, fingerprints, candidate pairs, copydetect's comparisons), and
the baseline: copydetect's pairwise comparison timed on a sample of pairs, times the number of all pairs.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograder.assignments.hw4_part1.replay import MISTAKES
from autograder.staff import similarity
from autograder.staff.class_data import read_class
from autograder.staff.class_report import write_class_report
from autograder.staff.similar_section import compare_class
from tests.staff_fixtures import (
    INDEPENDENT,
    RUBRIC,
    SOLUTION,
    Student,
    mistake_feedback,
    notebook_with,
    sections,
    write_batch,
)
from tests.test_similarity import _cells_of, disguise

SECTIONS = ("LinearModel", "GD", "SGD", "AdaGrad", "Adam")


def cpu_seconds() -> float:
    """CPU time of this process and of its finished worker processes: what a busy machine does not inflate."""
    mine, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + workers.ru_utime + workers.ru_stime


def personalise(code: str, rng: random.Random) -> str:
    """A line of the student's own at the start of every function body: each student's code differs in places,
    as independent work does, while most of it stays one of four styles."""
    lines, out = code.split("\n"), []
    for number, line in enumerate(lines):
        out.append(line)
        if line.lstrip().startswith("def ") and line.rstrip().endswith(":") and number + 1 < len(lines):
            following = lines[number + 1]
            indent = following[:len(following) - len(following.lstrip())]
            out.append(f"{indent}scale_{rng.randint(0, 9)} = {rng.randint(2, 999)} * {rng.random():.4f} + "
                       f"[{rng.randint(0, 99)}, {rng.randint(0, 99)}][{rng.randint(0, 1)}]")
    return "\n".join(out)


def make_class(folder: Path, size: int, rng: random.Random) -> list[Student]:
    styles = [_cells_of(SOLUTION)] + [sections(p.read_text()) for p in INDEPENDENT]
    notebooks = folder / "notebooks"
    notebooks.mkdir()
    students, codes = [], {}
    for n in range(size):
        key = f"{100000 + n}"
        if n % 120 == 119:  # a disguised copy of an earlier student
            cells = {k: disguise(v) for k, v in codes[f"{100000 + n - 60}"].items()}
        else:
            cells = {s: personalise(rng.choice(styles)[s], rng) for s in SECTIONS}
        codes[key] = cells
        path = notebook_with(cells, notebooks / f"{key}.ipynb")
        failures = {}
        for mistake in rng.sample(sorted(MISTAKES), k=rng.choice((0, 0, 0, 1, 1, 2))):
            failures.update({number: mistake_feedback(mistake) for number in rng.sample(sorted(RUBRIC), k=3)})
        status = "timeout" if n % 97 == 0 else "crashed" if n % 151 == 0 else "ok"
        students.append(Student(key, failures, status, recorded=rng.choice((40.0, 38.0, 27.0)), notebook=path,
                                names=(f"Student {n}",)))
    write_batch(folder / "out", students)
    return students


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=600)
    args = parser.parse_args()
    print(f"uptime: {os.popen('uptime').read().strip()}; cpus: {os.cpu_count()}")
    print("the similarity search's reading and tokenizing run in one worker process per CPU")
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        started = time.perf_counter()
        make_class(folder, args.students, random.Random(18))
        print(f"generated {args.students} results and notebooks in {time.perf_counter() - started:.1f} s")
        out = folder / "out"

        started, cpu = time.perf_counter(), cpu_seconds()
        write_class_report(out, similarity=False)
        print(f"report (figures, page; no similarity): {time.perf_counter() - started:.2f} s wall, "
              f"{cpu_seconds() - cpu:.2f} s CPU")

        started, cpu = time.perf_counter(), cpu_seconds()
        result = compare_class(read_class(out))
        seconds = time.perf_counter() - started
        print(f"similarity CPU (all processes): {cpu_seconds() - cpu:.2f} s")
        planted = sum(1 for p in result.pairs if abs(int(p.first) - int(p.second)) == 60)
        print(f"similarity: {seconds:.2f} s for {result.compared} notebooks; {len(result.pairs)} pairs listed "
              f"({planted} of the {args.students // 120} planted copies among them, top pair score "
              f"{result.pairs[0].score:.2f})" if result.pairs else f"similarity: {seconds:.2f} s, no pairs")

        started, cpu = time.perf_counter(), cpu_seconds()
        write_class_report(out)
        print(f"both, as the batch runs them: {time.perf_counter() - started:.2f} s wall, {cpu_seconds() - cpu:.2f} s "
              "CPU")

        documents = [similarity.Document(r.key, similarity.graded_code(similarity.load_notebook(r.submission),
                                                                        ("LinearModel", "loss", "GD", "SGD",
                                                                         "AdaGrad", "Adam")))
                     for r in read_class(out)[:200]]
        prints = [similarity._fingerprint(d.code) for d in documents]
        sample = list(combinations(range(len(prints)), 2))[:5000]
        started = time.perf_counter()  # one process, no load from this script meanwhile: wall is CPU here
        for i, j in sample:
            similarity.compare_files(prints[i], prints[j])
        per_pair = (time.perf_counter() - started) / len(sample)
        pairs = args.students * (args.students - 1) // 2
        print(f"baseline, copydetect on all pairs: {per_pair * 1e6:.0f} µs a pair x {pairs} pairs = "
              f"{per_pair * pairs:.1f} s for the comparisons alone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
