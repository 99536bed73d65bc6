"""Replace a run folder as a whole: build the new one in a staging folder, then swap it in.

A run writes curves.json, run.json, figures/*.png and index.html. Replacing them one file at a
time would let a run killed between two writes leave a new curves.json beside an old
index.html. So everything is written into a staging folder and swapped in at the end: on Linux
with renameat2(RENAME_EXCHANGE), one atomic step; elsewhere with two renames (old aside, new
in), leaving a window of microseconds in which the folder is absent, but never mixed. If the
second rename fails, the first is undone, so a failed swap leaves the previous folder as it was.

The staging folder is a hidden ".<name>.staging-*" beside the run folder, never in the system
temp folder: a rename between two folders can fail (EXDEV) even where both report the same
st_dev (two bind mounts of one file system), and one inside a single folder cannot. Any
failure but a kill removes it (`discard`). A run that is killed (SIGKILL, power loss) leaves
it behind, so the writer holds an flock on it for as long as it lives (the kernel drops the
lock with the process), and the next staging_dir for the same name removes every sibling it
can lock: those nobody is writing. A folder is locked before it takes the ".staging-" name
(it is made as ".<name>.new-*" and renamed), so a live one is never seen unlocked. Without
fcntl (Windows) nothing is removed.

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

try:
    import fcntl
except ImportError:          # Windows: no flock, no clean-up of killed runs' folders
    fcntl = None

from .io import create_unique

RENAME_EXCHANGE = 2   # linux/fs.h
AT_FDCWD = -100


_LOCKS: dict[str, int] = {}   # staging folder -> the open descriptor that holds its flock


def _lock(folder: Path) -> int | None:
    """An open descriptor of `folder` holding an exclusive flock on it, or None if another
    process holds one (or the platform has no flock)."""
    if fcntl is None:
        return None
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except OSError:
        os.close(fd)
        return None


def _unlock(stage: Path) -> None:
    fd = _LOCKS.pop(str(stage), None)
    if fd is not None:
        os.close(fd)


def remove_abandoned(folder: Path, name: str = "*") -> list[Path]:
    """Remove the staging folders in `folder` (of the run folder `name`, or of any) that no
    living process writes (killed runs'); returns them."""
    gone = []
    for p in Path(folder).glob(f".{name}.staging-*"):
        if str(p) in _LOCKS:     # this process's own
            continue
        try:
            fd = _lock(p)
        except OSError:          # gone meanwhile, not a folder, or not ours to open
            continue
        if fd is None:           # a living writer holds it (or no flock here)
            continue
        try:
            shutil.rmtree(p, ignore_errors=True)
            gone.append(p)
        finally:
            os.close(fd)
    return gone


def staging_dir(final: Path, clean: bool = True) -> Path:
    """A new, empty staging folder beside `final`, locked for as long as this process lives
    or until swap_in / discard; abandoned ones of the same name are removed first (clean=False:
    the caller has cleaned the whole folder once, as a sweep does before writing its points)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if clean:
        remove_abandoned(final.parent, final.name)
    # mode 0777 less the umask, as a plain mkdir would give (mkdtemp's would be 0700)
    new, _ = create_unique(final.parent, f".{final.name}.new-", "", lambda p: os.mkdir(p, 0o777))
    fd = _lock(new)
    stage = new.with_name(new.name.replace(".new-", ".staging-", 1))
    try:
        os.rename(new, stage)    # the lock goes with the folder: a ".staging-" name is never unlocked
    except BaseException:
        if fd is not None:
            os.close(fd)
        shutil.rmtree(new, ignore_errors=True)
        raise
    if fd is not None:
        _LOCKS[str(stage)] = fd
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
        _unlock(stage)
        return
    if _exchange(stage, final):
        shutil.rmtree(stage, ignore_errors=True)    # `stage` now holds the old folder
        _unlock(stage)
        return
    old = final.with_name(f".{final.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
    os.rename(final, old)
    try:
        os.rename(stage, final)
    except BaseException:
        os.rename(old, final)    # put the previous report back before reporting the failure
        raise
    _unlock(stage)
    shutil.rmtree(old, ignore_errors=True)


def discard(stage: Path) -> None:
    shutil.rmtree(stage, ignore_errors=True)
    _unlock(stage)
