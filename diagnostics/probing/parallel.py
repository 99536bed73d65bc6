"""Run independent pieces of a batch on several cores, with BLAS kept to one thread each.

The probe's sequences never interact: each has its own Jacobian chain, renormalisation and
power iteration. So the batch splits into contiguous chunks, each probed with single-threaded
BLAS by its own worker. At the probe's sizes (n <= a few hundred) this beats one thread
calling multi-threaded BLAS: OpenBLAS splits a (256 x 256) x (256 x 128) product poorly, and
the work between products (renormalisation, gate diagonals, the small eigenproblems of the
spectral tracker) does not thread at all.

Workers are forked processes on Linux when the process is quiet, else threads. Threads share
the GIL, and the spectral tracker makes many small numpy calls that hold it, so two trackers in
two threads take nearly as long as one after the other, where two processes run side by side.
The forked children inherit the job (cell, parameters, inputs) instead of receiving it
pickled, and send back only the curves.

Why only when quiet. Forking copies only the calling thread: a lock another thread holds at
that moment (a Jupyter kernel's, a threaded server's, an OpenMP runtime's) stays locked for
ever in the child. So the probe forks only when this is the only Python thread (tqdm's monitor
aside) and the only thread pools loaded are OpenBLAS's, which park themselves around fork (see
_quiet); otherwise its workers are threads. The other start methods were measured and
rejected: they pickle the job and re-import the caller's __main__ in every worker (or in the
fork server), which reruns an unguarded script -- the README's own API example is one --,
fixes multiprocessing's global start method, and costs seconds to start where a fork costs
tens of milliseconds. No lock is held while children start. An error
raised in a worker reaches the caller as that error; only a failure to start the workers
(no semaphores, no fork) falls back to threads. A worker dies with the process that forked
it, even one killed with SIGKILL (_die_with).

Each sequence's arithmetic is its own, so a given worker count gives the same bits on every
run, and different counts agree to rounding (BLAS may pick another kernel for another chunk
shape; identical bits for chunks of 2 or more sequences, tested). A chunk never holds a
single sequence: numpy would send its one-row products to gemv, whose rounding differs.

Progress. A `Tally` counts the work each part has done in memory shared with forked workers,
and only the caller's thread reports it (map_chunks polls it while the parts run elsewhere):
a worker never writes to a progress bar, whose lock a fork may have copied held.
"""
from __future__ import annotations

import ctypes
import mmap
import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, wait
from contextlib import contextmanager

import numpy as np
from threadpoolctl import ThreadpoolController

PR_SET_PDEATHSIG = 1       # linux/prctl.h
REPORT_EVERY = 0.2         # s between progress reports (a Tally's), and between looks at the parts


class _ProcessState:
    """What this module keeps for the life of one process (`_PROCESS`), and why:

    lock        one threaded section at a time: BLAS thread limits are process-wide, so two
                sections at once would undo each other's. Never held while this module forks;
                a forked child gets a fresh one (os.register_at_fork), so a fork made by some
                other thread while a probe held it does not leave the child's locked for ever.
    controller  threadpoolctl's view of the loaded thread pools, and `scanned_at`, how many
                modules were imported when it was taken (see _controller): discovery costs
                milliseconds, so it is kept until an import may have loaded a runtime.
    job         in a forked worker only: its (fn, parts), from the arguments it inherited with
                the parent's memory (see _forked); None in every other process. The parent
                keeps no job, so nothing of one probe outlives it in the caller.
    """

    def __init__(self):
        self.lock, self.job = threading.Lock(), None
        self.reset()

    def reset(self) -> None:
        """Forget the view of the thread pools: the next look rescans (for a test that must
        not trust what earlier tests loaded). The lock stays: replacing it while a section
        runs would let a second one in."""
        self.controller, self.scanned_at = None, -1

    def _after_fork_in_child(self) -> None:
        self.lock = threading.Lock()


_PROCESS = _ProcessState()
if hasattr(os, "register_at_fork"):   # POSIX
    os.register_at_fork(after_in_child=_PROCESS._after_fork_in_child)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))   # respects taskset / container CPU sets
    except AttributeError:                    # macOS, Windows
        return os.cpu_count() or 1


def resolve_workers(workers, batch: int, allowed: bool = True) -> int:
    """workers: None (as many as cores, if `allowed`) or a positive int; at most batch // 2,
    so that every chunk holds two sequences or more (see the module docstring)."""
    if workers is None:
        workers = available_cores() if allowed else 1
    elif isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers: must be a positive integer or None, got {workers!r}")
    return max(1, min(int(workers), batch // 2))


def chunks(batch: int, workers: int) -> list[slice]:
    """Contiguous, near-equal slices of range(batch)."""
    edges = np.linspace(0, batch, workers + 1).round().astype(int)
    return [slice(int(lo), int(hi)) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]


@contextmanager
def single_threaded_blas():
    """BLAS limited to one thread for the duration (a no-op for a BLAS threadpoolctl does
    not know)."""
    with _controller().limit(limits=1, user_api="blas"):
        yield


def can_fork() -> bool:
    """Forked workers: Linux only (macOS frameworks are not fork-safe), and not from a
    daemonic process (which may not have children). Whether a given probe forks also depends
    on the threads running at the time (see _quiet)."""
    return (sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()
            and not multiprocessing.current_process().daemon)


def fork_allowed() -> bool:
    """Would workers be forked processes right now: a platform that forks safely and a
    quiet process."""
    return can_fork() and _quiet()


def _quiet() -> bool:
    """Is forking safe: no other Python thread (but _harmless ones), and every thread pool
    threadpoolctl knows OpenBLAS's (pthreads), which parks itself around fork (pthread_atfork)?
    An OpenMP runtime (libgomp hangs in a child forked after its pool ran), MKL or BLIS
    promises nothing. Native
    threads of other C libraries are not seen: the kernel's count cannot tell them from
    OpenBLAS's, whose pools shrink and grow (measured here: 0 to 3 threads in numpy's and
    scipy's two pools, parked by a fork, restarted by the next call)."""
    me = threading.current_thread()
    if any(t is not me and not _harmless(t) for t in threading.enumerate()):
        return False
    return all(lc.internal_api == "openblas" and getattr(lc, "threading_layer", None) in ("pthreads", "disabled")
               for lc in _controller().lib_controllers)


def _harmless(thread: threading.Thread) -> bool:
    """tqdm's monitor, started by the first progress bar (diag run's training has one): it
    sleeps on an Event and every 10 s may refresh a stalled bar on stderr under tqdm's lock.
    A worker takes neither lock; it could hang only by writing to stderr after a fork that
    landed mid-refresh."""
    return type(thread).__name__ == "TMonitor" and type(thread).__module__.partition(".")[0] == "tqdm"


def _controller():
    """threadpoolctl's view of the loaded thread pools. Rescanned when modules were imported
    since the last scan: an import can load a runtime (torch brings libgomp), and a stale view
    would call a process quiet that is not. Discovery costs milliseconds; imports are rare."""
    state = _PROCESS
    if state.controller is None or state.scanned_at != len(sys.modules):
        state.controller, state.scanned_at = ThreadpoolController(), len(sys.modules)
    return state.controller


def _start_worker(parent: int, fn, parts: list[slice]) -> None:
    """A forked worker's initializer: die with the caller (_die_with), then keep its job, which
    came with the memory the fork copied (the pool's initargs are not pickled under fork)."""
    _die_with(parent)
    _PROCESS.job = (fn, parts)


def _die_with(parent: int) -> None:
    """A forked worker's first act: have the kernel SIGKILL it when the thread that forked it
    (the caller: the only Python thread, see _quiet) dies. A parent killed with SIGKILL runs
    no clean-up, and its workers lived on, adopted by init: each holds its own copy of the
    task pipe's write end, so it never reads end-of-file, and a copy of the job (103 MB each
    in the issue's run). If the parent died before this request, the worker exits at once."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):   # no prctl: not Linux, where nothing forks (can_fork)
        pass
    if os.getppid() != parent:
        os._exit(1)


class Tally:
    """Units of work done by the parts of one map_chunks, reported as report(done, total), done
    being the slowest part's count, at most every REPORT_EVERY s and only in the caller's
    thread. Each part adds to its own count in an anonymous shared mapping, which forked
    workers write into as well; a single part runs in the caller and reports as it goes,
    several are polled by map_chunks (`poll`)."""

    def __init__(self, parts: int, total: int, report):
        self._counts = np.frombuffer(mmap.mmap(-1, 8 * parts), dtype=np.int64)
        self._inline = parts == 1
        self.total, self._report, self._next = total, report, 0.0

    def adder(self, part: int):
        """add(n): part `part` has done n more units."""
        counts = self._counts

        def add(n: int) -> None:
            counts[part] += n
            if self._inline and time.monotonic() >= self._next:
                self.poll()
        return add

    def poll(self) -> None:
        self._next = time.monotonic() + REPORT_EVERY
        self._report(int(self._counts.min()), self.total)


def _gather(futures, poll=None) -> list:
    """The futures' results in order (a part's error raised as itself), calling poll() every
    REPORT_EVERY s until all are done."""
    if poll is not None:
        while wait(futures, timeout=REPORT_EVERY).not_done:
            poll()
    return [f.result() for f in futures]


def _run_part(i: int):
    """Part i of the job this forked worker inherited (only the index travels, pickled)."""
    fn, parts = _PROCESS.job
    with single_threaded_blas():
        return fn(parts[i])


def _forked(fn, parts: list[slice], poll=None):
    """[fn(part) for part in parts] in forked workers; None if they could not be started.
    fn and parts reach the workers as the initializer's arguments, which a forked process
    inherits with the caller's memory: the job (cell, parameters, inputs) is never pickled."""
    try:
        pool = ProcessPoolExecutor(len(parts), mp_context=multiprocessing.get_context("fork"),
                                   initializer=_start_worker, initargs=(os.getpid(), fn, parts))
    except (OSError, NotImplementedError):   # no semaphores (a locked-down container)
        return None
    with pool:
        try:
            with warnings.catch_warnings():
                # Python >= 3.12 warns on fork from a process with threads; _quiet() found
                # only OpenBLAS's pools, which its atfork handlers park
                warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
                futures = [pool.submit(_run_part, i) for i in range(len(parts))]   # forks them all
        except OSError:   # fork failed (process or memory limits)
            return None
        return _gather(futures, poll)   # a worker's error is raised here as itself


def map_chunks(fn, parts: list[slice], one_blas_thread: bool = False, processes: bool | None = None,
               poll=None) -> list:
    """[fn(part) for part in parts]: in forked processes (or threads where forking is not safe,
    see the module docstring, or processes=False) when there is more than one part, each with
    one BLAS thread; a single part runs in the caller, with one BLAS thread if asked (small
    products lose more to BLAS threading than they gain). fn's results must pickle when
    processes are used. `poll` (a Tally's) is called in the caller while several parts run."""
    if len(parts) == 1:
        if not one_blas_thread:
            return [fn(parts[0])]
        with _PROCESS.lock, single_threaded_blas():
            return [fn(parts[0])]
    if processes is None:
        processes = can_fork()
    if processes and _quiet():
        results = _forked(fn, parts, poll)
        if results is not None:
            return results
    with _PROCESS.lock, single_threaded_blas(), ThreadPoolExecutor(len(parts)) as pool:
        return _gather([pool.submit(fn, p) for p in parts], poll)
