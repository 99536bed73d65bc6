"""Run independent pieces of a batch on several cores, with BLAS kept to one thread each.

The probe's sequences never interact: each has its own Jacobian chain, renormalisation and
power iteration. So the batch splits into contiguous chunks, each probed with single-threaded
BLAS by its own worker. At the probe's sizes (n <= a few hundred) this beats one thread
calling multi-threaded BLAS: OpenBLAS splits a (256 x 256) x (256 x 128) product poorly, and
the work between products (renormalisation, gate diagonals, the small eigenproblems of the
spectral tracker) does not thread at all.

Workers are forked processes where the platform forks safely (Linux), else threads. Threads
share the GIL, and the spectral tracker makes many small numpy calls that hold it: two
trackers in two threads took 1.57 s where each alone took 0.95 s, and in two processes 0.89 s
(LSTM n = 128, 300 lags). The forked children inherit the job (cell, parameters, inputs)
instead of receiving it pickled, and send back only the curves.

Each sequence's arithmetic is its own, so a given worker count gives the same bits on every
run, and different counts agree to rounding (BLAS may pick another kernel for another chunk
shape; measured: identical bits here for chunks of 2 or more sequences). A chunk never holds a
single sequence: numpy would send its one-row products to gemv, whose rounding differs.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

_LOCK = threading.Lock()   # one parallel section at a time: BLAS limits are process-wide
_CONTROLLER = None
_JOB = None                # (fn, parts) while forked workers run: inherited, never pickled


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
    global _CONTROLLER
    from threadpoolctl import ThreadpoolController
    if _CONTROLLER is None:   # library discovery costs milliseconds: once per process
        _CONTROLLER = ThreadpoolController()
    with _CONTROLLER.limit(limits=1, user_api="blas"):
        yield


def can_fork() -> bool:
    """Forked workers: Linux only (macOS frameworks are not fork-safe), and not from a
    daemonic process (which may not have children)."""
    return (sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()
            and not multiprocessing.current_process().daemon)


def _run_part(i: int):
    fn, parts = _JOB
    with single_threaded_blas():
        return fn(parts[i])


def map_chunks(fn, parts: list[slice], one_blas_thread: bool = False, processes: bool | None = None) -> list:
    """[fn(part) for part in parts]: in forked processes (or threads where forking is not
    safe, or processes=False) when there is more than one part, each with one BLAS thread; a
    single part runs in the caller, with one BLAS thread if asked (small products lose more
    to BLAS threading than they gain). fn's results must pickle when processes are used."""
    global _JOB
    if len(parts) == 1:
        if not one_blas_thread:
            return [fn(parts[0])]
        with _LOCK, single_threaded_blas():
            return [fn(parts[0])]
    if processes is None:
        processes = can_fork()
    with _LOCK:
        if processes:
            _JOB = (fn, parts)
            try:
                with warnings.catch_warnings():
                    # Python >= 3.12 warns on fork from a process with threads (BLAS's own
                    # are enough); the children run only numpy on inherited arrays, and
                    # OpenBLAS resets its thread pool across fork
                    warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
                    with ProcessPoolExecutor(len(parts), mp_context=multiprocessing.get_context("fork")) as pool:
                        return list(pool.map(_run_part, range(len(parts))))
            except (OSError, NotImplementedError):
                pass   # no semaphores or no fork here (a locked-down container): threads then
            finally:
                _JOB = None
        with single_threaded_blas(), ThreadPoolExecutor(len(parts)) as pool:
            return list(pool.map(fn, parts))
