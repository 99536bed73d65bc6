"""Replace a run folder as a whole: build the new one in a staging folder, then swap it in.

A run writes curves.json, run.json, figures/*.png and index.html. Replacing them one file at a
time would let a run killed between two writes leave a new curves.json beside an old
index.html. So everything is written into a staging folder and swapped in at the end: on Linux
with renameat2(RENAME_EXCHANGE), one atomic step; elsewhere with two renames (old aside, new
in), leaving a window of microseconds in which the folder is absent, but never mixed.

The staging folder lives in the system temp folder when that is on the same file system as the
output (renames cannot cross file systems), so a killed run leaves nothing under the output
folder; otherwise it is a hidden folder beside the run folder (".<name>.staging-*").
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import tempfile
from pathlib import Path

RENAME_EXCHANGE = 2   # linux/fs.h
AT_FDCWD = -100


def staging_dir(final: Path) -> Path:
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.gettempdir()
    same_fs = os.stat(tmp).st_dev == os.stat(final.parent).st_dev
    if same_fs:
        stage = Path(tempfile.mkdtemp(prefix=f"diag-{final.name}-"))
    else:
        stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.staging-", dir=final.parent))
    os.chmod(stage, 0o755)  # mkdtemp makes it private; a report folder is an ordinary folder
    return stage


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where unavailable."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0


def swap_in(stage: Path, final: Path) -> None:
    """Make `stage` the folder at `final`; the previous folder (if any) is removed afterwards."""
    stage, final = Path(stage), Path(final)
    if not final.exists():
        os.rename(stage, final)
        return
    if _exchange(stage, final):
        shutil.rmtree(stage, ignore_errors=True)    # `stage` now holds the old folder
        return
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    os.rename(final, old)
    os.rename(stage, final)
    shutil.rmtree(old, ignore_errors=True)


def discard(stage: Path) -> None:
    shutil.rmtree(stage, ignore_errors=True)
