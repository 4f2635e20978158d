"""The class report: OUT/report.html and its figures, from a batch folder as autograder/staff/batch.py writes it.

No sandbox: the batch folder is synthetic (tests/staff_fixtures.py builds it with the grader's and the batch's own
writers). The browser test opens the page in Debian's chromium, headless.
"""

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from autograder import cli
from autograder.staff import class_data
from autograder.staff.class_report import write_class_report
from autograder.staff.figures import BAR
from tests.staff_fixtures import ADAM_TESTS, Student, mistake_feedback, write_batch

EVIL = "<script>alert('pwned')</script>"


def _class() -> list[Student]:
    bias = {n: mistake_feedback("no_bias_correction") for n in ADAM_TESTS}  # 13 points, five tests name it
    return [Student("full_1", recorded=40.0, names=("Ada Lovelace",)),
            Student("full_2", recorded=40.0, names=("Alan Turing", "Grace Hopper")),  # a group: one submission
            Student("adam_1", failures=bias, recorded=40.0, names=(EVIL,)),  # 27: the regrade changed it
            Student("adam_2", failures=bias, recorded=27.0, names=("=HYPERLINK(\"x\")",)),
            Student("eps", failures={"4.4": mistake_feedback("eps_inside_sqrt"), "5.4": mistake_feedback(
                "eps_inside_sqrt")}, recorded=34.0),  # 34
            Student("plain_fail", failures={"2.3": ""}, recorded=38.0),  # 38, no named mistake
            Student("hang", status="timeout"), Student("boom", status="crashed", recorded=12.0),
            Student("junk", status="invalid", recorded=0.0)]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("batch") / "out"
    write_batch(out, _class())
    page = write_class_report(out, similarity=False)
    return out, page.read_text()


def _list(page: str, anchor: str) -> list[str]:
    """The submission keys listed under the element with id `anchor`."""
    block = re.search(rf'<div id="{re.escape(anchor)}">(.*?)</div>', page, re.DOTALL)
    assert block, f"no list {anchor}"
    return [html.unescape(k) for k in re.findall(r'<li><a href="#sub-\d+">([^<]*)</a></li>', block.group(1))]


def test_the_records_read_back_what_the_batch_wrote(report):
    out, _ = report
    records = {r.key: r for r in class_data.read_class(out)}
    assert records["full_2"].names == ["Alan Turing", "Grace Hopper"] and records["adam_2"].names == ['=HYPERLINK("x")']
    assert (records["adam_1"].total, records["adam_1"].changed, records["adam_2"].changed) == (27.0, "yes", "no")
    assert records["adam_1"].mistakes == {"Adam without bias correction": list(ADAM_TESTS)}
    assert records["plain_fail"].mistakes == {} and not records["plain_fail"].tests["2.3"].passed
    assert [records[k].status for k in ("hang", "boom", "junk")] == ["timeout", "crashed", "invalid"]
    assert all(records[k].needs_review for k in ("hang", "boom", "junk")) and not records["full_1"].needs_review


def test_each_figure_lists_the_submissions_behind_it(report):
    _, page = report
    # totals: 40, 40, 27, 27, 34, 38 and the invalid file's 0, in bins of 2 points (the last holds 40); the
    # grader's crash (its 0 is not the student's) is left out
    assert _list(page, "score-1-0") == ["junk"] and _list(page, "score-1-13") == ["adam_1", "adam_2"]
    assert _list(page, "score-1-17") == ["eps"] and _list(page, "score-1-19") == ["full_1", "full_2", "plain_fail"]
    assert _list(page, "test-1-5-4") == ["adam_1", "adam_2", "eps"] and _list(page, "test-1-2-3") == ["plain_fail"]
    assert 'id="score-1-1"' not in page and 'href="#score-1-1"' not in page  # an empty bin: no list, no link
    assert _list(page, "mistake-0") == ["adam_1", "adam_2"] and _list(page, "mistake-1") == ["eps"]
    assert "Adam without bias correction (tests 5.1, 5.3, 5.4, 5.5, 5.6): 2 submissions" in page
    assert _list(page, "status-timeout") == ["hang"] and _list(page, "status-crashed") == ["boom"]
    assert _list(page, "status-needs-review") == ["hang", "boom", "junk"]
    changed = re.search(r'<div id="changes-table">(.*?)</div>', page, re.DOTALL).group(1)
    assert re.findall(r'<a href="#sub-\d+">([^<]*)</a>', changed) == ["adam_1", "boom"]  # -13 and -12


def test_every_bar_is_a_link_to_its_list_and_sits_on_the_bar(report):
    out, page = report
    ids = set(re.findall(r'id="([^"]+)"', page))
    for image, mapping in re.findall(r'<img src="(report_files/[^"]+)"[^>]*usemap="#([^"]+)"', page):
        areas = re.findall(r'<area shape="rect" coords="(\d+),(\d+),(\d+),(\d+)" href="#([^"]+)"',
                           re.search(rf'<map name="{mapping}">(.*?)</map>', page, re.DOTALL).group(1))
        assert areas and all(anchor in ids for *_, anchor in areas), image
        if "mistakes" in image:  # horizontal bars start at the left of their row: the row's left end is the bar
            with Image.open(out / image) as png:
                for left, top, _right, bottom, _ in areas:
                    pixel = png.convert("RGB").getpixel((int(left) + 3, (int(top) + int(bottom)) // 2))
                    assert "#{:02x}{:02x}{:02x}".format(*pixel) == BAR


def test_the_page_is_offline_and_escapes_student_text(report):
    out, page = report
    assert "<script" not in page.replace(html.escape(EVIL), "") and "&lt;script&gt;" in page
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<link" not in page
    for source in re.findall(r'src="([^"]+)"', page):
        assert (out / source).is_file() and not source.startswith("/")
    assert '=HYPERLINK(&quot;x&quot;)' in page  # grades.csv's protective quote is not shown


def test_a_folder_that_is_no_batch_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no grades.csv"):
        write_class_report(tmp_path)


def test_the_standalone_command_writes_the_report(tmp_path, capsys):
    from autograder.staff.class_report import main
    write_batch(tmp_path / "out", _class()[:3])
    assert main([str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "report.html").is_file() and "report.html" in capsys.readouterr().out
    assert main([str(tmp_path / "nothing")]) == 2
    with pytest.raises(SystemExit):
        cli.main(["--submission", "x.ipynb", "--known", str(tmp_path)])  # --known is for a batch


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CONSOLE = re.compile(r":CONSOLE(?::\d+)?\]")  # how chromium's --enable-logging prints a page's console message


def _open(page: Path, shot: Path, size: str = "1200,2400") -> str:
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", f"--window-size={size}",
                           page.resolve().as_uri()], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_a_real_browser_shows_the_report_without_console_errors(report, tmp_path):
    out, _ = report
    bad = tmp_path / "bad.html"  # the check itself must see an error when there is one
    bad.write_text("<!DOCTYPE html><html><body><p>x</p><script>undefined_function()</script></body></html>")
    assert CONSOLE.search(_open(bad, tmp_path / "bad.png", "400,300"))
    log = _open(out / "report.html", tmp_path / "report.png")
    assert not CONSOLE.search(log), [line for line in log.splitlines() if CONSOLE.search(line)]
    with Image.open(tmp_path / "report.png") as shot:
        assert shot.size == (1200, 2400)
        colours = shot.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours and len(colours) > 50  # text and figures, not a blank page
        assert any(abs(r - 0x3b) < 8 and abs(g - 0x6e) < 8 and abs(b - 0xa5) < 8 for _, (r, g, b) in colours)
