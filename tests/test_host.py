"""The host side of the fallback sandbox: removing what a run left, however it is shaped, and locking the tree."""

import os
import stat
from pathlib import Path

import pytest

from autograder.supervisor.host import lock_down, remove_tree


def test_a_deep_tree_with_links_and_read_only_parts_is_removed_without_following_a_link(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not the run's")
    scratch = tmp_path / "scratch"
    folder = scratch
    for _ in range(1500):  # deeper than Python's recursion limit: shutil.rmtree raised RecursionError here
        folder = folder / "d"
        folder.mkdir(parents=True)
    (folder / "up").symlink_to(outside)
    (folder / "read_only.txt").write_text("x")
    (folder / "read_only.txt").chmod(0o400)
    (scratch / "root_link").symlink_to("/")
    folder.chmod(0o500)
    scratch.chmod(0o500)
    remove_tree(scratch)
    assert not scratch.exists()
    assert (outside / "keep.txt").read_text() == "not the run's"


def test_a_link_given_as_the_tree_is_removed_not_followed(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "file").write_text("x")
    link = tmp_path / "link"
    link.symlink_to(target)
    remove_tree(link)
    assert not link.exists() and (target / "file").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the lock-down is for root's fallback")
def test_lock_down_leaves_others_only_the_kept_paths_and_the_way_to_them(tmp_path):
    root = tmp_path / "checkout"
    for path in ("solution/part1.py", "autograder/inside/zygote.py", "autograder/grade.py", ".venv/bin/python",
                 "dist/hw4_part1_autograder.zip"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("x")
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)

    def other(path: str) -> int:
        return stat.S_IMODE((root / path).stat().st_mode) & 0o007

    assert other("solution") == other("dist") == 0o005 and other("autograder/grade.py") == 0o004  # the control
    lock_down(root, [root / ".venv", root / "autograder" / "inside"], [])
    assert other("solution") == 0 and other("dist") == 0 and other("autograder/grade.py") == 0
    assert other("autograder") == 0o001 and other(".") == 0o001  # traverse only, no listing
    assert other(".venv") == 0o005 and other("autograder/inside") == 0o005 and other("autograder/inside/zygote.py") == 0o004


@pytest.mark.skipif(os.geteuid() != 0, reason="files of another user")
def test_leftovers_of_the_runs_user_are_removed_and_nobody_elses():
    import pwd
    from autograder.supervisor.host import remove_leftovers
    user = pwd.getpwnam("nobody")
    theirs, ours = Path("/dev/shm/ag-test-leftover-theirs"), Path("/tmp/ag-test-leftover-ours")
    for path in (theirs, ours):
        path.write_text("x")
    os.chown(theirs, user.pw_uid, user.pw_gid)
    try:
        removed = remove_leftovers(user.pw_uid)
        assert str(theirs) in removed and not theirs.exists()
        assert ours.exists()
    finally:
        ours.unlink(missing_ok=True)
        theirs.unlink(missing_ok=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another uid needs root")
def test_a_fork_chain_of_a_runs_fresh_uid_is_killed_at_once_by_kill_minus_one_as_that_uid():
    import subprocess
    import sys
    import time

    from autograder.supervisor import host, runusers
    host.let_user_run_python(Path(sys.executable), [])  # as the grader does before a fallback run (a venv under /root)
    first, second = runusers.fresh_user(), runusers.fresh_user()
    assert first.pw_uid != second.pw_uid and min(first.pw_uid, second.pw_uid) >= runusers.FIRST_UID
    chain = "import os\nos.setsid()\nwhile True:\n    if os.fork():\n        os._exit(0)\n"

    def become():
        os.setgroups([])
        os.setresgid(first.pw_gid, first.pw_gid, first.pw_gid)
        os.setresuid(first.pw_uid, first.pw_uid, first.pw_uid)

    subprocess.Popen([sys.executable, "-c", chain], preexec_fn=become)
    try:
        time.sleep(1)  # the chain is now a new process every few microseconds, none of them listed for long
        assert runusers.kill_everything_of(first.pw_uid) >= 1
        time.sleep(0.5)
        assert runusers._live_processes(first.pw_uid) == []  # zombies waiting for init are all that may remain
    finally:  # an interrupted test must not leave the chain running (it would fail later leak checks)
        runusers.kill_everything_of(first.pw_uid)
    with pytest.raises(ValueError):
        runusers.kill_everything_of(0)
