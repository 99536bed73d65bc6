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

    with replacing(final) as stage:   # refuses a folder that is not this tool's (ForeignFolder)
        ...                           # write the run into stage; it is swapped in at the end

Whose folder it is. The user's files are theirs: a folder is replaced (a run, a sweep's point)
or written into (a sweep) only when it is absent, empty, this tool's own -- its run.json,
sweep-run.json or sweep.json names its format -- or holds nothing but the hidden leftovers of
this tool's writers (and, for a sweep killed before its sweep.json, points/ of such folders).
Anything else, a regular file or a symbolic link of that name included, is refused with one
line and not touched (`refusal`, `claim`); so is a new folder straight in the file system's
root or the home folder (`--out /` wrote /<case name>).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import re
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:          # Windows: no flock, no clean-up of killed runs' folders
    fcntl = None

from .documents import RUN, SWEEP, SWEEP_RUN, SweepRun, names_format, peek
from .errors import DiagnosticsError
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


@contextmanager
def replacing(final: Path, kind: str = "run", *, keep: bool = False, clean: bool = True):
    """Write the `kind` folder at `final` whole: yields a staging folder, swapped in when the
    block ends without an error. If the block raises, or `final` is not this tool's to
    replace (ForeignFolder, checked before and again at the end), `final` is as it was and
    nothing is left beside it. keep=True: the stage starts as a copy of `final` (a page drawn
    again beside the saved numbers); clean as for staging_dir."""
    claim(final, kind)
    stage = staging_dir(final, clean)
    try:
        if keep:
            shutil.copytree(final, stage, symlinks=True, dirs_exist_ok=True, copy_function=_link_or_copy)
        yield stage
        claim(final, kind)   # the block may have run long enough for someone to write there
        swap_in(stage, final)
    finally:
        discard(stage)   # a no-op after the swap; the unfinished folder otherwise


def _link_or_copy(src, dst) -> None:
    """The stage shares the files it keeps: every writer replaces a file whole (io.py renames
    a new one over it), never changes it in place, so a hard link costs no space (a full
    disk) and keeps the file's times."""
    try:
        os.link(src, dst)
    except OSError:   # a file system without hard links
        shutil.copy2(src, dst)


# --- whose folder it is (see the module docstring) ----------------------------------------------

POINTS = "points"   # a sweep's point folders: OUT/<sweep>/points/<id>/ (sweep/engine.py)
# what `kind` of folder may be replaced by (or written into as) what
_ACCEPTS = {"run": ("run",), "point": ("run", "failed point"), "sweep": ("sweep",)}
_OWN_FILE = {"run": "run.json", "point": "run.json or error.json", "sweep": "sweep-run.json"}
# the hidden names this module's and io.py's writers use: .<name>.new-<hex>, .<name>.staging-<hex>,
# .<name>.old-<pid>-<hex> (staging folders) and .<name>.<hex>.tmp (atomic writes)
_LEFTOVER = re.compile(r"\..+\.(?:(?:new|staging)-[0-9a-f]{12}|old-\d+-[0-9a-f]{8}|[0-9a-f]{12}\.tmp)")


class ForeignFolder(DiagnosticsError):
    """A folder this tool will not replace or write into; the message is one line."""


def what_it_is(folder: Path) -> str | None:
    """What this tool's own document in `folder` says the folder is: "run" (run.json), "sweep"
    (sweep-run.json, or sweep.json, written just before it), "failed point" (a sweep point's
    error.json), or None. Only the format is read (documents.peek): a folder of another version's
    files is this tool's too."""
    folder = Path(folder)
    if names_format(peek(folder / "run.json"), RUN):
        return "run"
    sweep_run = peek(folder / "sweep-run.json")
    if SweepRun.looks_legacy(sweep_run) or names_format(sweep_run, SWEEP_RUN) \
            or names_format(peek(folder / "sweep.json"), SWEEP):
        return "sweep"
    err = peek(folder / "error.json")
    if err is not None and isinstance(err.get("type"), str) and isinstance(err.get("message"), str):
        return "failed point"
    return None


def _root_or_home(folder: Path) -> str | None:
    try:
        real = Path(folder).resolve()
        if real == Path(real.anchor):
            return "the file system's root"
        return "your home folder" if real == Path.home().resolve() else None
    except (OSError, RuntimeError, KeyError):   # no home folder known: nothing to protect
        return None


def _not_ours(folder: Path, kind: str) -> str | None:
    """Why `folder` is not this tool's `kind` folder to write, or None."""
    if folder.is_symlink():
        return "is a symbolic link; left untouched"
    if not folder.exists():
        return None
    if not folder.is_dir():
        return "exists and is not a folder; left untouched"
    found = what_it_is(folder)
    if found in _ACCEPTS[kind]:
        return None
    if found is not None:
        return f"holds a {found} written by diag, not a {kind}; left untouched (choose another --out)"
    try:
        theirs = [p for p in sorted(folder.iterdir())
                  if not _LEFTOVER.fullmatch(p.name) and not (kind == "sweep" and p.name == POINTS and _points(p))]
    except OSError as e:   # not ours to list
        return f"cannot be read ({e.strerror}); left untouched"
    if not theirs:
        return None
    named = ", ".join(p.name + "/" * p.is_dir() for p in theirs[:3]) + (
        f" and {len(theirs) - 3} more" if len(theirs) > 3 else "")
    return (f"holds {named}, not written by diag (no {_OWN_FILE[kind]} naming its format); left untouched "
            "(move them away or choose another --out)")


def _points(folder: Path) -> bool:
    """A sweep killed before its sweep.json left only points/: each entry a point folder of
    its own (a run, an error.json, or only leftovers) or a leftover."""
    return (folder.is_dir() and not folder.is_symlink()
            and all(_LEFTOVER.fullmatch(p.name) or (p.is_dir() and _not_ours(p, "point") is None)
                    for p in folder.iterdir()))


def refusal(final: Path, kind: str = "run") -> str | None:
    """Why this tool may not write the `kind` folder at `final` ("run" and "point" folders are
    replaced whole, a "sweep" folder is written into), as one line naming the folder, or None
    when it may (see the module docstring)."""
    final = Path(final)
    why = _not_ours(final, kind)
    if why:
        return f"{final}: {why}"
    place = _root_or_home(final.parent) if what_it_is(final) is None else None
    if place:   # a new folder, never straight into / or ~ (`--out /` wrote /<case name>)
        return (f"{final.parent}: is {place}; refusing to write {final.name}/ into it "
                "(give the reports a folder of their own, e.g. --out reports)")
    return None


def claim(final: Path, kind: str = "run") -> None:
    """Raise ForeignFolder (one line) unless this tool may write the `kind` folder at `final`."""
    why = refusal(final, kind)
    if why:
        raise ForeignFolder(why)
