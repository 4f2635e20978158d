"""The class report of a batch: OUT/report.html with its figures as PNG in OUT/report_files/.

Readable offline: inline CSS, no script, no remote resource; the figures are files beside the page, linked
relatively. Every bar of a figure is a link (an HTML image map) to the list of the submissions behind it, and
every listed submission links to its row in the table at the end, which links to its results.json.

    python -m autograder.staff.class_report OUT [--known DIR]   # again, without regrading
"""

from __future__ import annotations

import argparse
import html
import math
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from autograder.staff.class_data import SubmissionRecord, read_class
from autograder.staff.figures import Area, bar_chart, scatter_changes
from autograder.staff.similar_section import compare_class, similarity_html

__all__ = ["main", "write_class_report"]

FILES = "report_files"
STATUS_ORDER = ("ok", "timeout", "crashed", "invalid", "needs review")
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:0 auto;max-width:1100px;
padding:1rem 1.5rem;color:#222;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{border-bottom:2px solid #3b6ea5;padding-bottom:.2rem;margin-top:2rem}
nav a{margin-right:1rem} .muted{color:#666} .num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem} th,td{border:1px solid #ddd;padding:.25rem .5rem}
th{background:#f0f4f8;text-align:left} .figure{overflow-x:auto;margin:.5rem 0} img{border:1px solid #eee}
details{margin:.3rem 0} summary{cursor:pointer} ul.subs{columns:4;font-size:.85rem;margin:.2rem 0 .6rem}
.lists>div{scroll-margin-top:1rem} .lists>div:target{background:#fff7d6}
.sides{display:grid;grid-template-columns:1fr 1fr;gap:.8rem} .sides>div{min-width:0}
pre{background:#f7f7f7;padding:.5rem;overflow-x:auto;font-size:.75rem;max-height:32rem}
mark{background:#ffd54f} .pair{border-top:1px solid #ccc;margin-top:1rem} tr:target{background:#fff7d6}
.status-ok{color:#2e7d32} .status-bad{color:#c0504d;font-weight:600}
"""


def write_class_report(out: Path, *, known: Path | None = None, similarity: bool = True) -> Path:
    """Write OUT/report.html and its figures from the batch in `out`; return the page's path."""
    records = read_class(out)
    figures = out / FILES
    figures.mkdir(mode=0o700, exist_ok=True)
    anchor_of = {r.key: f"sub-{n}" for n, r in enumerate(records, 1)}
    sections = [("Statuses", _statuses(records, figures, anchor_of)),
                ("Scores", _scores(records, figures, anchor_of)),
                ("Tests", _tests(records, figures, anchor_of)),
                ("Named mistakes", _mistakes(records, figures, anchor_of)),
                ("Regrade changes", _changes(records, figures, anchor_of))]
    if similarity:
        sections.append(("Similar submissions", similarity_html(compare_class(records, known), anchor_of)))
    sections.append(("Submissions", _table(records, anchor_of)))
    ids = [name.lower().replace(" ", "-") for name, _ in sections]
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>Class report: {html.escape(out.name)}</title><style>{CSS}</style></head><body>",
            f"<h1>Class report: {html.escape(out.name)}</h1>",
            (f'<p class="muted">{len(records)} submissions · written {when} from grades.csv and each results.json. '
             "Click a bar to list the submissions behind it.</p>"),
            "<nav>" + "".join(f'<a href="#{i}">{n}</a>' for i, (n, _) in zip(ids, sections)) + "</nav>"]
    page += [f'<section id="{i}"><h2>{n}</h2>{body}</section>' for i, (n, body) in zip(ids, sections)]
    path = out / "report.html"
    path.write_text("\n".join(page + ["</body></html>"]), encoding="utf-8")
    return path


def _figure(name: str, areas: list[Area], alt: str, figures: Path, listed: str = "") -> str:
    """The PNG, at its own size (an image map needs it unscaled), and its clickable bars: those with a list in
    `listed` (the lists' HTML; an empty bin has none)."""
    areas = [a for a in areas if f'id="{a.anchor}"' in listed]
    from PIL import Image  # matplotlib's own dependency

    with Image.open(figures / name) as image:
        width, height = image.size
    spots = "".join(f'<area shape="rect" coords="{",".join(map(str, a.box))}" href="#{a.anchor}" '
                    f'title="{html.escape(a.title)}" alt="{html.escape(a.title)}">' for a in areas)
    return (f'<div class="figure"><img src="{FILES}/{name}" width="{width}" height="{height}" '
            f'alt="{html.escape(alt)}" usemap="#map-{name[:-4]}"><map name="map-{name[:-4]}">{spots}</map></div>')


def _lists(groups: list[tuple[str, str, list[str]]], anchor_of: dict[str, str]) -> str:
    """For each (anchor, title, submission keys): a folded list of links to the submissions."""
    blocks = []
    for anchor, title, keys in groups:
        links = "".join(f'<li><a href="#{anchor_of[k]}">{html.escape(k)}</a></li>' for k in keys)
        blocks.append(f'<div id="{anchor}"><details><summary>{html.escape(title)}: {len(keys)} '
                      f'submission{"s" * (len(keys) != 1)}</summary><ul class="subs">{links}</ul></details></div>')
    return f'<div class="lists">{"".join(blocks)}</div>'


def _statuses(records: list[SubmissionRecord], figures: Path, anchor_of: dict[str, str]) -> str:
    groups = {s: [r.key for r in records if r.status == s] for s in STATUS_ORDER[:-1]}
    groups["needs review"] = [r.key for r in records if r.needs_review]
    labels = [s for s in STATUS_ORDER if groups[s] or s in ("ok", "needs review")]
    areas = bar_chart(figures / "statuses.png", labels, [len(groups[s]) for s in labels],
                      [f"status-{s.replace(' ', '-')}" for s in labels], title="Statuses", value_label="submissions",
                      colors=["#3b6ea5" if s == "ok" else "#c0504d" for s in labels], width=6)
    note = ("<p><em>needs review</em>: not graded as ok (timed out, crashed, invalid), or a test the grader itself "
            "could not check; the student is never charged for it. See each one's results.json staff log.</p>")
    lists = _lists([(f"status-{s.replace(' ', '-')}", s, groups[s]) for s in labels], anchor_of)
    return note + _figure("statuses.png", areas, "submissions per status", figures, lists) + lists


def _scores(records: list[SubmissionRecord], figures: Path, anchor_of: dict[str, str]) -> str:
    parts = []
    for number, (title, members) in enumerate(_by_assignment(records).items(), 1):
        graded = [r for r in members if r.total is not None and r.status in ("ok", "invalid")]  # not a grader's crash
        if not graded:
            continue
        top = max(r.max_total or r.total or 0 for r in graded) or 1
        width = max(1, math.ceil(top / 20))  # at most about 20 bins of whole points; the last holds full marks
        count = max(1, math.ceil(top / width))
        keys: list[list[str]] = [[] for _ in range(count)]
        for record in graded:
            keys[min(count - 1, max(0, int((record.total or 0) // width)))].append(record.key)
        labels = [f"{n * width:g}" if width == 1 and n < count - 1 else f"{n * width:g}–{min(top, (n + 1) * width):g}"
                  for n in range(count)]
        anchors = [f"score-{number}-{n}" for n in range(count)]
        name = f"scores_{number}.png"
        areas = bar_chart(figures / name, labels, [len(k) for k in keys], anchors, value_label="submissions",
                          title=f"Total score: {title} (out of {top:g})")
        mean = sum(r.total or 0 for r in graded) / len(graded)
        lists = _lists([(a, f"total {lab}", k) for a, lab, k in zip(anchors, labels, keys) if k], anchor_of)
        parts.append(f"<h3>{html.escape(title)}</h3><p>{len(graded)} graded, mean {mean:.2f} / {top:g} (a grader's "
                     "timeout or crash is left out).</p>"
                     + _figure(name, areas, f"histogram of total scores, {title}", figures, lists) + lists)
    return "".join(parts) or "<p>No graded results.</p>"


def _tests(records: list[SubmissionRecord], figures: Path, anchor_of: dict[str, str]) -> str:
    parts = []
    for number, (title, members) in enumerate(_by_assignment(records).items(), 1):
        outcomes: dict[str, list] = {}
        for record in members:
            for test in record.tests.values():
                outcomes.setdefault(test.number, []).append((record.key, test))
        if not outcomes:
            continue
        numbers = sorted(outcomes, key=lambda n: tuple(int(p) if p.isdigit() else 0 for p in n.split(".")))
        rates = [100 * sum(t.passed for _, t in outcomes[n]) / len(outcomes[n]) for n in numbers]
        labels = [f"{n} {_short(outcomes[n][0][1].name)}" for n in numbers]
        anchors = [f"test-{number}-{n.replace('.', '-')}" for n in numbers]
        name = f"tests_{number}.png"
        areas = bar_chart(figures / name, labels, rates, anchors, horizontal=True, value_format="{:.0f} %",
                          value_label="% of submissions with full marks", title=f"Tests passed: {title}",
                          colors=["#3b6ea5" if r >= 50 else "#c0504d" for r in rates], width=9)
        failed = [(a, f"{lab}: not full marks", [k for k, t in outcomes[n] if not t.passed])
                  for a, lab, n in zip(anchors, labels, numbers)]
        lists = _lists([f for f in failed if f[2]], anchor_of)
        parts.append(f"<h3>{html.escape(title)}</h3>" + _figure(name, areas, f"pass rate per test, {title}", figures,
                                                                lists) + lists)
    return "".join(parts) or "<p>No test results.</p>"


def _mistakes(records: list[SubmissionRecord], figures: Path, anchor_of: dict[str, str]) -> str:
    students: dict[str, list[str]] = {}
    tests: dict[str, Counter] = {}
    for record in records:
        for label, numbers in record.mistakes.items():
            students.setdefault(label, []).append(record.key)
            tests.setdefault(label, Counter()).update(numbers)
    if not students:
        return "<p>No feedback named a likely mistake.</p>"
    labels = sorted(students, key=lambda m: (-len(students[m]), m))
    anchors = [f"mistake-{n}" for n in range(len(labels))]
    areas = bar_chart(figures / "mistakes.png", [_short(m, 60) for m in labels], [len(students[m]) for m in labels],
                      anchors, horizontal=True, value_label="students", title="Named mistakes", width=9)
    where = {m: ", ".join(sorted(tests[m], key=lambda n: tuple(int(p) if p.isdigit() else 0 for p in n.split("."))))
             for m in labels}
    lists = _lists([(a, f"{m} (tests {where[m]})", students[m]) for a, m in zip(anchors, labels)], anchor_of)
    return ("<p>The likely mistake the feedback named, and how many students it affected (each student once, "
            "whatever the number of tests that named it).</p>"
            + _figure("mistakes.png", areas, "students per named mistake", figures, lists) + lists)


def _changes(records: list[SubmissionRecord], figures: Path, anchor_of: dict[str, str]) -> str:
    known = [(r, r.recorded, r.total) for r in records if r.recorded is not None and r.total is not None]
    moved = [(r, recorded, total) for r, recorded, total in known if r.changed == "yes"]
    if not known:
        return "<p>The export recorded no Gradescope scores to compare with.</p>"
    scatter_changes(figures / "changes.png", [k[1] for k in known], [k[2] for k in known],
                    [k[0].changed == "yes" for k in known], title="Gradescope's score and the regrade's")
    rows = "".join(f'<tr><td><a href="#{anchor_of[r.key]}">{html.escape(r.key)}</a></td>'
                   f"<td>{html.escape(', '.join(r.names))}</td><td>{html.escape(r.status)}</td>"
                   f'<td class="num">{recorded:g}</td>'
                   f'<td class="num">{total:g}</td><td class="num">{total - recorded:+g}</td></tr>'
                   for r, recorded, total in sorted(moved, key=lambda m: (m[2] - m[1], m[0].key)))
    table = ("<table><thead><tr><th>submission</th><th>students</th><th>status</th><th>Gradescope</th><th>regrade</th>"
             f"<th>change</th></tr></thead><tbody>{rows}</tbody></table>") if moved else ""
    return (f"<p>{len(moved)} of {len(known)} grades changed (<code>changed = yes</code> in grades.csv). A change with "
            "a status other than ok is the grader's to review, not a new grade.</p>"
            f'<div class="figure"><a href="#changes-table"><img src="{FILES}/changes.png" width="460" height="400" '
            f'alt="Gradescope score against regrade score"></a></div><div id="changes-table">{table}</div>')


def _table(records: list[SubmissionRecord], anchor_of: dict[str, str]) -> str:
    rows = []
    for record in records:
        key = html.escape(record.key)
        status = f'<span class="status-{"ok" if record.status == "ok" else "bad"}">{html.escape(record.status)}'
        status += " (needs review)" * (record.needs_review and record.status == "ok") + "</span>"
        total = "" if record.total is None or not record.max_total else f"{record.total:g} / {record.max_total:g}"
        mistakes = html.escape("; ".join(record.mistakes))
        rows.append(f'<tr id="{anchor_of[record.key]}"><td>{key}</td><td>{html.escape(", ".join(record.names))}'
                    f'</td><td>{status}</td><td class="num">{total}</td><td>{html.escape(record.changed)}</td>'
                    f"<td>{mistakes}</td><td>{html.escape(record.detail)}</td>"
                    f'<td><a href="{html.escape(record.key)}/results.json">results</a></td></tr>')
    return ("<table><thead><tr><th>submission</th><th>students</th><th>status</th><th>total</th><th>changed</th>"
            f"<th>named mistakes</th><th>detail</th><th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _by_assignment(records: list[SubmissionRecord]) -> dict[str, list[SubmissionRecord]]:
    """Title -> its graded records. A record without a title (an invalid file scored 0) joins the batch's only
    assignment when there is one."""
    titles = {r.assignment for r in records if r.assignment}
    default = next(iter(titles)) if len(titles) == 1 else "unknown assignment"
    groups: dict[str, list[SubmissionRecord]] = {}
    for record in records:
        if record.tests or record.total is not None:
            groups.setdefault(record.assignment or default, []).append(record)
    return groups


def _short(text: str, limit: int = 55) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.staff.class_report",
                                     description="Write OUT/report.html for a graded batch folder.")
    parser.add_argument("out", type=Path, help="the batch's output folder (holds grades.csv)")
    parser.add_argument("--known", type=Path, help="a folder of known public solutions to compare with")
    args = parser.parse_args(argv)
    try:
        print(write_class_report(args.out, known=args.known))
    except ValueError as error:
        print(f"report failed: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
