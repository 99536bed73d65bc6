"""Replace a run folder as a whole: build the new one in a staging folder, then swap it in.

A run writes curves.json, run.json, figures/*.png and index.html. Replacing them one file at a
time would let a run killed between two writes leave a new curves.json beside an old
index.html. So everything is written into a staging folder and swapped in at the end: on Linux
with renameat2(RENAME_EXCHANGE), one atomic step; elsewhere with two renames (old aside, new
in), leaving a window of microseconds in which the folder is absent, but never mixed. If the
second rename fails, the first is undone, so a failed swap leaves the previous folder as it was.

The staging folder is a hidden ".<name>.staging-*" beside the run folder, never in the system
temp folder: a rename between two folders can fail (EXDEV) even where both report the same
st_dev (two bind mounts of one file system), and one inside a single folder cannot. A run that
is killed (SIGKILL, power loss) leaves that hidden folder behind; any other failure removes it
(`discard`).

    stage = staging_dir(final)     # write the run into stage
    try:
        swap_in(stage, final)      # stage becomes final; the previous final is removed
    finally:
        discard(stage)             # a no-op after a swap; the unfinished run otherwise
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import secrets
import shutil
from pathlib import Path

from .io import create_unique

RENAME_EXCHANGE = 2   # linux/fs.h
AT_FDCWD = -100


def staging_dir(final: Path) -> Path:
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    # mode 0777 less the umask, as a plain mkdir would give (mkdtemp's would be 0700)
    stage, _ = create_unique(final.parent, f".{final.name}.staging-", "", lambda p: os.mkdir(p, 0o777))
    return stage


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2): True when done, False where the system or
    the file system does not offer it; any other failure raises OSError."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    e = ctypes.get_errno()
    if e in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):   # old kernel or file system
        return False
    raise OSError(e, f"cannot swap {a} and {b}: {os.strerror(e)}")


def swap_in(stage: Path, final: Path) -> None:
    """Make `stage` the folder at `final`; the previous folder (if any) is removed afterwards.
    If this raises, `final` is what it was before (and `stage` is left for `discard`)."""
    stage, final = Path(stage), Path(final)
    if not final.exists():
        os.rename(stage, final)
        return
    if _exchange(stage, final):
        shutil.rmtree(stage, ignore_errors=True)    # `stage` now holds the old folder
        return
    old = final.with_name(f".{final.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
    os.rename(final, old)
    try:
        os.rename(stage, final)
    except BaseException:
        os.rename(old, final)    # put the previous report back before reporting the failure
        raise
    shutil.rmtree(old, ignore_errors=True)


def discard(stage: Path) -> None:
    shutil.rmtree(stage, ignore_errors=True)
