"""diagnostics/publish.py: a run folder is built in a hidden staging folder beside it and
swapped in whole; a failed swap leaves the previous folder as it was; a killed run's stage is
removed by the next run, a live one's never; folders get the mode of a plain mkdir, and the
umask is never changed. (Which folders the commands may replace: test_output_folders.py.)"""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from diagnostics import publish


def _tree(folder: Path) -> dict:
    """Every file's bytes and every folder, by relative path."""
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def _report(final: Path, text: str) -> None:
    (final / "figures").mkdir(parents=True)
    (final / "curves.json").write_text(text)
    (final / "figures" / "decay.png").write_bytes(text.encode() * 3)


def test_staging_folder_is_hidden_beside_the_run_folder(tmp_path):
    """Renames stay inside one folder, so they can never cross file systems (two bind mounts of
    one file system share st_dev, yet a rename between them fails with EXDEV)."""
    final = tmp_path / "out" / "case"
    stage = publish.staging_dir(final)
    try:
        assert stage.parent == final.parent and stage.name.startswith(".case.staging-")
    finally:
        publish.discard(stage)
    assert not stage.exists()


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_a_failed_swap_leaves_the_previous_report_as_it_was(tmp_path, monkeypatch, exchange):
    """The rename that would put the new folder in place fails (EXDEV, as between two bind
    mounts): the previous report is still at its path, byte for byte, and once the caller
    discards the stage nothing hidden is left beside it."""
    final = tmp_path / "out" / "case"
    _report(final, "old")
    before = _tree(final)
    stage = publish.staging_dir(final)
    _report(stage, "new")
    renames = []
    real_rename = os.rename

    def rename(src, dst, *a, **k):
        renames.append((Path(src), Path(dst)))
        if len(renames) == 2:          # the second step: the new folder into place
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_rename(src, dst, *a, **k)

    def failing_exchange(a, b):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(publish, "_exchange", failing_exchange if exchange else (lambda a, b: False))
    with pytest.raises(OSError, match="cross-device"):
        publish.swap_in(stage, final)
    publish.discard(stage)
    assert _tree(final) == before
    assert sorted(p.name for p in final.parent.iterdir()) == ["case"]
    # every rename stays inside the run folder's parent
    assert all(s.parent == final.parent and d.parent == final.parent for s, d in renames)


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_a_swap_replaces_the_folder_whole(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(publish, "_exchange", lambda a, b: False)
    final = tmp_path / "case"
    _report(final, "old")
    (final / "stale.txt").write_text("from the previous run")
    stage = publish.staging_dir(final)
    _report(stage, "new")
    expected = _tree(stage)
    publish.swap_in(stage, final)
    publish.discard(stage)
    assert _tree(final) == expected
    assert [p.name for p in tmp_path.iterdir()] == ["case"]


_WRITER = """
import sys, time
from diagnostics import publish
stage = publish.staging_dir(sys.argv[1])
(stage / "curves.json").write_text("half a run")
print(stage, flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(publish.fcntl is None, reason="no flock on this platform")
def test_a_killed_runs_staging_folder_is_removed_by_the_next_run_and_a_live_one_is_not(tmp_path):
    """A run killed with SIGKILL cannot remove its staging folder; the next run of the same
    case does, but never the folder of a run still writing."""
    import signal
    import subprocess
    import sys
    final = tmp_path / "case"
    _report(final, "old")
    before = _tree(final)
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(final)], stdout=subprocess.PIPE, text=True)
    try:
        abandoned = Path(writer.stdout.readline().strip())
        assert abandoned.parent == tmp_path and abandoned.name.startswith(".case.staging-")
        mine = publish.staging_dir(final)          # the writer lives: its folder stays
        assert abandoned.is_dir() and (abandoned / "curves.json").is_file()
        publish.discard(mine)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
    assert abandoned.is_dir()                      # killed: nothing removed it
    stage = publish.staging_dir(final)             # the next run of the case
    assert not abandoned.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["case", stage.name])
    publish.discard(stage)
    assert _tree(final) == before
    assert [p.name for p in tmp_path.iterdir()] == ["case"]


@pytest.mark.skipif(publish.fcntl is None, reason="no flock on this platform")
def test_a_sweep_cleans_its_points_folder_once_and_keeps_its_own_stages(tmp_path):
    """remove_abandoned(folder) takes every run name's abandoned stage at once (a sweep calls
    it before writing points, then stages with clean=False); a stage this process holds stays."""
    for name in ("p1", "p2"):
        (tmp_path / f".{name}.staging-0123").mkdir()
    mine = publish.staging_dir(tmp_path / "p3", clean=False)
    gone = publish.remove_abandoned(tmp_path)
    assert sorted(p.name for p in gone) == [".p1.staging-0123", ".p2.staging-0123"]
    assert [p.name for p in tmp_path.iterdir()] == [mine.name]
    publish.discard(mine)


# --- folder modes follow the umask, which is never changed ----------------------------------

def test_a_swapped_in_run_folder_gets_the_mode_of_a_plain_mkdir(tmp_path, umask, forbid_umask):
    plain = tmp_path / "plain"
    plain.mkdir()
    forbid_umask()
    for final in (tmp_path / "new", plain):           # a first run, and one replacing a folder
        stage = publish.staging_dir(final)
        assert stage.stat().st_mode & 0o777 == 0o777 & ~umask
        publish.swap_in(stage, final)
        publish.discard(stage)
        assert final.stat().st_mode & 0o777 == 0o777 & ~umask
