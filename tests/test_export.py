"""Reading Gradescope's "Export Submissions": submission_metadata.yml (Ruby-flavoured YAML) and the folder layout."""

import pytest
import yaml

from autograder.staff import export
from autograder.staff.export import Submitter as S

# Shaped like a real export's submission_metadata.yml: Ruby symbols as keys, a group submission, scores written
# as BigDecimal, as a plain float, cleared (null) or absent, the results Gradescope stored (a Ruby-tagged hash whose
# text mimics submitter fields), the history of earlier submissions with their own scores, and timestamps.
METADATA = """\
---
submission_101:
  :submitters:
  - :name: Ada Lovelace
    :sid: '1815'
    :email: ada@example.edu
  :created_at: 2026-11-20 23:58:01.123456789 -05:00
  :score: !ruby/object:BigDecimal 18:0.4e2
  :status: processed
  :results: !ruby/hash:ActiveSupport::HashWithIndifferentAccess
    score: 40.0
    tests:
    - name: ':name: not a submitter'
      output: "- :email: mallory@example.edu"
      score: !ruby/object:BigDecimal 18:0.2e1
  :history:
  - :id: 9001
    :created_at: 2026-11-19 10:00:00.000000000 -05:00
    :score: !ruby/object:BigDecimal 18:0.12e2
submission_102:
  :submitters:
  - :name: "O'Brien, Pat"
    :sid: 2001
    :email: pat@example.edu
  - :name: 'Chris ''CJ'' Jones'
    :email: cj@example.edu
  :created_at: !ruby/object:ActiveSupport::TimeWithZone
    utc: 2026-11-21 04:00:00.000000000 Z
    zone: !ruby/object:ActiveSupport::TimeZone
      name: America/New_York
  :score: 33.0
submission_103:
  :submitters: []
  :score:
submission_104:
  :submitters:
  - :name: Grace Hopper
    :email: grace@example.edu
  :score: !ruby/object:BigDecimal 27:-0.6935E2
submission_105:
  :submitters:
  - :name: Never Graded
  :score: !ruby/object:BigDecimal 18:NaN
"""


def test_the_metadata_gives_submitters_and_the_recorded_score(tmp_path):
    (tmp_path / "m.yml").write_text(METADATA)
    found = export.read_metadata(tmp_path / "m.yml")
    assert found == {
        "submission_101": export.Exported((S("Ada Lovelace", "ada@example.edu", "1815"),), 40.0),
        "submission_102": export.Exported((S("O'Brien, Pat", "pat@example.edu", "2001"),
                                           S("Chris 'CJ' Jones", "cj@example.edu")), 33.0),
        "submission_103": export.Exported((), None),
        "submission_104": export.Exported((S("Grace Hopper", "grace@example.edu"),), -69.35),
        "submission_105": export.Exported((S("Never Graded"),), None),  # NaN is no score
    }


def test_ruby_tags_read_as_plain_data_through_a_safe_loader():
    assert issubclass(export.GradescopeLoader, yaml.SafeLoader)
    data = yaml.load(METADATA, Loader=export.GradescopeLoader)
    assert data["submission_101"][":results"]["tests"][0]["score"] == 2.0  # BigDecimal inside a tagged hash
    assert data["submission_102"][":created_at"]["zone"] == {"name": "America/New_York"}
    assert data["submission_101"][":history"][0][":score"] == 12.0
    assert yaml.load("- !ruby/sym done\n- :plain\n", Loader=export.GradescopeLoader) == [":done", ":plain"]
    assert yaml.load("!ruby/hash-with-ivars\nelements: {a: 1}\nivars: {'@x': 2}\n",
                     Loader=export.GradescopeLoader) == {"a": 1}
    # The plain SafeLoader refuses these tags: the constructors are what reads them.
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.safe_load(METADATA)


def test_a_tag_that_would_build_an_object_is_refused(tmp_path):
    (tmp_path / "m.yml").write_text("submission_1:\n  :submitters: !!python/object/apply:os.system ['touch x']\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        export.read_metadata(tmp_path / "m.yml")
    assert not (tmp_path / "x").exists()
    (tmp_path / "m.yml").write_text("- a list\n- not a mapping\n")
    with pytest.raises(ValueError, match="does not map submission ids"):
        export.read_metadata(tmp_path / "m.yml")


def test_discover_reads_both_layouts(tmp_path):
    plain = tmp_path / "plain"
    for name in ("zoe.ipynb", "a.ipynb", "a/work.ipynb", ".hidden.ipynb", "notes.txt", "__pycache__/x.ipynb"):
        (plain / name).parent.mkdir(parents=True, exist_ok=True)
        (plain / name).write_text("{}")
    assert [(e.key, e.path.name, e.recorded_score) for e in export.discover(plain)] == [
        ("a", "a", None), ("a.ipynb", "a.ipynb", None), ("zoe", "zoe.ipynb", None)]
    folder = tmp_path / "export"
    (folder / "submission_101").mkdir(parents=True)
    (folder / "submission_999").mkdir()
    (folder / export.METADATA).write_text(METADATA)
    entries = {e.key: e for e in export.discover(folder)}
    assert sorted(entries) == ["submission_101", "submission_102", "submission_103", "submission_104",
                               "submission_105", "submission_999"]
    assert (entries["submission_101"].submitters[0].email, entries["submission_101"].recorded_score) == (
        "ada@example.edu", 40.0)
    assert not entries["submission_102"].path.exists()  # listed, not exported: graded as an empty submission
    assert len(entries["submission_102"].submitters) == 2 and entries["submission_102"].recorded_score == 33.0
    assert (entries["submission_999"].submitters, entries["submission_999"].recorded_score) == ((), None)
    with pytest.raises(ValueError, match="no submissions"):
        export.discover((tmp_path / "empty").mkdir() or tmp_path / "empty")
