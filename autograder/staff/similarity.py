"""Similar submissions: pairs and clusters of unusually similar graded code, for a TA to review.

Only the graded cells are compared (the cells that define the assignment's graded names, and the cells of the
helpers those definitions use), with the template's given code removed as boilerplate. Fingerprints are
copydetect's (winnowing, as MOSS does): its tokenizer replaces every identifier by one letter and drops comments
and layout, so renamed variables and reformatted code keep their fingerprints, and winnowing is local, so
reordered helpers keep theirs too. Fingerprints that many submissions share (an idiom of the problem, not a copy)
are ignored, as MOSS does. Candidate pairs come from one sparse product (shared fingerprints of every pair at
once); copydetect's pairwise comparison then scores them and finds the shared parts. A score says how much of the
code is shared; it is a reason to look, not a finding.
"""

from __future__ import annotations

import ast
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from copydetect import CodeFingerprint, compare_files
from copydetect.utils import filter_code, get_token_coverage, highlight_overlap
from scipy import sparse

from autograder.errors import SubmissionError
from autograder.notebook import Notebook, load_notebook, python_source

__all__ = ["THRESHOLD", "Document", "Pair", "clusters", "find_similar", "graded_code", "notebook_document", "tokens"]

NOISE = 25  # k: shortest shared run (in filtered characters) that counts; copydetect's default
GUARANTEE = 30  # any shared run this long is always found (winnowing window = GUARANTEE - NOISE + 1)
THRESHOLD = 0.6  # a pair is listed when this share of one side's code is found in the other
MIN_SHARED = 150  # and at least this many filtered characters are shared (two stubs share nothing of note)
COMMON_SHARE, COMMON_MIN = 0.2, 10  # a fingerprint in more submissions than both is the problem's idiom
UNREADABLE = (SubmissionError, OSError, UnicodeError)  # a notebook that cannot be read: not compared


@dataclass(frozen=True)
class Document:
    key: str  # the submission's id, or "known: NAME" for a known public solution
    code: str  # the graded cells, as Python
    known: bool = False
    # copydetect's filtered tokens and offsets (tokens(code)), when computed elsewhere (a worker process)
    filtered: tuple | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Pair:
    first: str
    second: str
    share_first: float  # of the first's code, the part found in the second
    share_second: float
    shared: int  # filtered characters shared
    first_html: str  # each side's code, HTML-escaped, shared parts in <mark>
    second_html: str

    @property
    def score(self) -> float:
        return max(self.share_first, self.share_second)


def graded_code(notebook: Notebook, graded_names: tuple[str, ...]) -> str:
    """The cells defining the graded names, and the cells of the helpers they use, in notebook order."""
    graded = [d for name in graded_names for d in notebook.definitions.get(name, [])]
    used: set[str] = set()
    for definition in graded:
        try:
            used |= {n.id for n in ast.walk(ast.parse(definition.source)) if isinstance(n, ast.Name)}
        except SyntaxError:
            continue
    helpers = [d for name in used - set(graded_names) for d in notebook.definitions.get(name, [])]
    cells = {d.cell.index: d.cell for d in graded + helpers}
    return "\n\n".join(_python(cells[index].source) for index in sorted(cells))


def notebook_document(key: str, path: Path, graded_names: tuple[str, ...], known: bool = False) -> Document:
    """A notebook's graded code; ValueError naming the file when it cannot be read."""
    try:
        return Document(key, graded_code(load_notebook(path), graded_names), known)
    except UNREADABLE as error:
        raise ValueError(f"{path}: {error}") from None


def find_similar(documents: list[Document], boilerplate: str = "", threshold: float = THRESHOLD) -> list[Pair]:
    """Pairs at or above `threshold`, most similar first. Known solutions are compared with submissions only."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], not {threshold}")
    template = _fingerprint(boilerplate) if boilerplate.strip() else None
    given = np.array(sorted(template.hashes), dtype=np.int64) if template else np.array([], dtype=np.int64)
    prints = [_fingerprint(d.code, given, d.filtered) for d in documents]
    _drop_common(prints, documents)
    pairs = []
    for i, j in _candidates(prints, documents, threshold):
        shared, (share_i, share_j), (slices_i, slices_j) = compare_files(prints[i], prints[j])
        if shared < MIN_SHARED or max(share_i, share_j) < threshold:
            continue
        pairs.append(Pair(documents[i].key, documents[j].key, float(share_i), float(share_j), int(shared),
                          _highlight(documents[i].code, slices_i), _highlight(documents[j].code, slices_j)))
    return sorted(pairs, key=lambda p: (-p.score, p.first, p.second))


def clusters(pairs: list[Pair]) -> list[list[str]]:
    """Groups of submissions linked by listed pairs (three or more members), largest first."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for pair in pairs:
        parent[root(pair.first)] = root(pair.second)
    groups: dict[str, list[str]] = {}
    for key in parent:
        groups.setdefault(root(key), []).append(key)
    return sorted((sorted(g) for g in groups.values() if len(g) >= 3), key=lambda g: (-len(g), g))


def _python(source: str) -> str:
    try:
        return python_source(source)
    except Exception:  # noqa: BLE001 (IPython's transformer can fail on any odd input: compare the text as written)
        return source


def tokens(code: str) -> tuple:
    """copydetect's tokenizing (identifiers to one letter, no comments or layout) and its offsets back into the
    code: the costly part of a fingerprint, and free of Python's per-process string hashing, so a worker process
    may compute it."""
    return filter_code(code, "cells.py", "python")


def _fingerprint(code: str, boilerplate: np.ndarray | None = None, filtered: tuple | None = None
                 ) -> CodeFingerprint:
    """As CodeFingerprint(code) builds it (tokens, k-gram hashes, winnowing), from tokens(code) given or made."""
    text, offsets = filtered or tokens(code)
    fingerprint = CodeFingerprint("cells.py", NOISE, GUARANTEE - NOISE + 1, boilerplate=boilerplate, filter=False,
                                  fp=io.StringIO(text))
    fingerprint.raw_code, fingerprint.offsets = code, offsets
    return fingerprint


def _drop_common(prints: list[CodeFingerprint], documents: list[Document]) -> None:
    """Forget the fingerprints that more than COMMON_SHARE of the submissions (and COMMON_MIN) have; a share is
    then of the code that is left, the part that is the student's own."""
    students = [p for p, d in zip(prints, documents) if not d.known]
    limit = max(COMMON_MIN, COMMON_SHARE * len(students))
    counts: dict[int, int] = {}
    for fingerprint in students:
        for value in fingerprint.hashes:
            counts[value] = counts.get(value, 0) + 1
    common = {value for value, count in counts.items() if count > limit}
    if not common:
        return
    for fingerprint in prints:
        fingerprint.hashes -= common
        for value in common & fingerprint.hash_idx.keys():
            del fingerprint.hash_idx[value]
        fingerprint.token_coverage = get_token_coverage(fingerprint.hash_idx, fingerprint.k,
                                                        len(fingerprint.filtered_code))


def _candidates(prints: list[CodeFingerprint], documents: list[Document], threshold: float
                ) -> list[tuple[int, int]]:
    """Pairs whose shared fingerprints could reach the threshold: all pairs' counts from one sparse product.
    Loose on purpose (half the threshold): copydetect's own comparison decides."""
    columns: dict[int, int] = {}
    rows, cols = [], []
    for row, fingerprint in enumerate(prints):
        for value in fingerprint.hashes:
            rows.append(row)
            cols.append(columns.setdefault(value, len(columns)))
    if not columns:
        return []
    incidence = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)),
                                  shape=(len(prints), len(columns)))
    shared = sparse.triu(incidence @ incidence.T, k=1).tocoo()
    sizes = np.array([max(1, len(p.hashes)) for p in prints])
    known = np.array([d.known for d in documents])
    keep = (shared.data >= threshold / 2 * np.minimum(sizes[shared.row], sizes[shared.col])) \
        & ~(known[shared.row] & known[shared.col])
    return sorted(zip(shared.row[keep].tolist(), shared.col[keep].tolist()))


def _highlight(code: str, slices: np.ndarray) -> str:
    marked, _ = highlight_overlap(code, slices, "<mark>", "</mark>", escape_html=True)
    return marked
