"""The class report's "similar submissions" section: which code to compare, and the pairs side by side.

Each submission's notebook is the one the batch graded (batch.json names the submission; in a folder, the
notebook that defines most graded names). Its assignment is detected from the notebook as the grader does, and the
template of that assignment (student_template/NAME.ipynb) is the boilerplate. The wording is for a TA to review:
a high score says two submissions share much of their graded code, not why.
"""

from __future__ import annotations

import html
import multiprocessing
import os
from typing import Any
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from autograder.assignment import detect_assignment, load_assignment
from autograder.notebook import Notebook, find_notebooks, load_notebook
from autograder.staff.class_data import SubmissionRecord
from autograder.staff.similarity import (
    THRESHOLD,
    UNREADABLE,
    Document,
    Pair,
    clusters,
    find_similar,
    graded_code,
    notebook_document,
    tokens,
)

__all__ = ["Similarity", "compare_class", "similarity_html"]

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "student_template"
KNOWN = "known: "  # prefix of a known public solution's key
PARALLEL_FROM = 40  # submissions: below, worker processes cost more than they save
LISTED, SIDE_BY_SIDE = 300, 25  # pairs in the table, and shown side by side (the most similar first)


@dataclass
class Similarity:
    pairs: list[Pair] = field(default_factory=list)
    groups: list[list[str]] = field(default_factory=list)
    compared: int = 0
    unread: list[str] = field(default_factory=list)  # submissions whose notebook could not be read


def compare_class(records: list[SubmissionRecord], known: Path | None = None,
                  threshold: float = THRESHOLD) -> Similarity:
    """Compare the graded code of every submission (per assignment), and with each known solution in `known`."""
    if known is not None and not known.is_dir():
        raise ValueError(f"known solutions: {known} is not a folder")
    result = Similarity()
    by_assignment: dict[str, tuple[Any, list[Document]]] = {}
    paths = [record.submission for record in records]
    if len(paths) >= PARALLEL_FROM and (os.cpu_count() or 1) > 1:  # reading and tokenizing: CPU-bound, per file
        with ProcessPoolExecutor(os.cpu_count(), mp_context=multiprocessing.get_context("fork")) as pool:
            read = list(pool.map(_read_submission, paths, chunksize=8))
    else:
        read = [_read_submission(path) for path in paths]
    for record, found in zip(records, read):
        if found is None:
            result.unread.append(record.key)
            continue
        name, code, filtered = found
        assignment = load_assignment(name)
        by_assignment.setdefault(name, (assignment, []))[1].append(Document(record.key, code, filtered=filtered))
    for name, (assignment, documents) in sorted(by_assignment.items()):
        documents += _known_documents(known, assignment.graded_names) if known else []
        template = TEMPLATES / f"{name}.ipynb"
        given = graded_code(load_notebook(template), assignment.graded_names) if template.is_file() else ""
        result.pairs += find_similar(documents, given, threshold)
        result.compared += sum(not d.known for d in documents)
    result.pairs.sort(key=lambda p: (-p.score, p.first, p.second))
    result.groups = clusters(result.pairs)
    return result


def similarity_html(result: Similarity, anchor_of: dict[str, str]) -> str:
    """The section: a table of pairs, the clusters, then each pair side by side."""
    def who(key: str) -> str:
        return f'<a href="#{anchor_of[key]}">{html.escape(key)}</a>' if key in anchor_of else \
            f"<em>{html.escape(key)}</em>"

    parts = [(f"<p>{result.compared} submissions compared over their graded cells, with the template's given code "
             "left out. A pair is listed when one side's code is mostly found in the other (score at least "
             f"{THRESHOLD:.0%}; renamed variables and reformatting do not hide it). These pairs are "
             "<strong>unusually similar; review</strong> them before drawing any conclusion: a short or heavily "
             "guided part can make honest solutions look alike.</p>")]
    if result.unread:
        parts.append(f"<p>Not compared (no readable notebook): {', '.join(who(k) for k in result.unread)}.</p>")
    if not result.pairs:
        return "\n".join(parts + ["<p>No pair above the threshold.</p>"])
    rows = "".join(f'<tr><td class="num">{p.score:.0%}</td><td>{who(p.first)}</td><td>{who(p.second)}</td>'
                   f'<td class="num">{p.share_first:.0%} / {p.share_second:.0%}</td><td>'
                   + (f'<a href="#pair-{n}">side by side</a>' if n <= SIDE_BY_SIDE else "") + "</td></tr>"
                   for n, p in enumerate(result.pairs[:LISTED], 1))
    parts.append('<table><thead><tr><th>score</th><th>submission</th><th>submission</th>'
                 '<th>share of each found in the other</th><th></th></tr></thead>'
                 f"<tbody>{rows}</tbody></table>")
    if len(result.pairs) > LISTED:
        parts.append(f"<p>{len(result.pairs) - LISTED} more pairs above the threshold are not listed.</p>")
    if result.groups:
        parts.append("<h3>Groups</h3><p>Submissions linked by listed pairs:</p><ul>" + "".join(
            f"<li>{', '.join(who(k) for k in group)}</li>" for group in result.groups) + "</ul>")
    for n, pair in enumerate(result.pairs[:SIDE_BY_SIDE], 1):
        parts.append(f'<div class="pair" id="pair-{n}"><h3>Pair {n}: score {pair.score:.0%}, unusually similar; '
                     f"review</h3><div class=\"sides\"><div><h4>{who(pair.first)} ({pair.share_first:.0%} found in "
                     f"the other)</h4><pre>{pair.first_html}</pre></div><div><h4>{who(pair.second)} "
                     f"({pair.share_second:.0%} found in the other)</h4><pre>{pair.second_html}</pre></div></div>"
                     "</div>")
    return "\n".join(parts)


def _read_submission(submission: Path | None) -> tuple[str, str, tuple] | None:
    """(assignment name, graded code, its tokens) of a submission's notebook; None when there is none to read."""
    notebook = _graded_notebook(submission)
    if notebook is None:
        return None
    assignment = detect_assignment(notebook)[0]
    code = graded_code(notebook, assignment.graded_names)
    return assignment.name, code, tokens(code)


def _graded_notebook(submission: Path | None) -> Notebook | None:
    """The notebook defining most graded names of its assignment; None when there is none to read."""
    if submission is None or not submission.exists():
        return None
    best, best_count = None, -1
    try:
        paths = find_notebooks(submission)
    except UNREADABLE:  # nothing readable was submitted
        return None
    for path in paths:
        try:
            notebook = load_notebook(path)
        except UNREADABLE:  # not JSON, too large: not compared
            continue
        count = detect_assignment(notebook)[1]
        if count > best_count:
            best, best_count = notebook, count
    return best if best_count > 0 else None


def _known_documents(folder: Path, graded_names: tuple[str, ...]) -> list[Document]:
    """Each notebook or Python file in `folder`: a notebook's graded cells, a .py file whole. ValueError naming a
    file that cannot be read: the TA chose these files."""
    documents = []
    for path in sorted(folder.iterdir()):
        if path.suffix == ".ipynb" and path.is_file():
            documents.append(notebook_document(KNOWN + path.name, path, graded_names, known=True))
        elif path.suffix == ".py" and path.is_file():
            documents.append(Document(KNOWN + path.name, path.read_text(errors="replace"), known=True))
    return documents
