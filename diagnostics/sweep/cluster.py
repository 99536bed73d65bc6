"""The Dask side of a sweep: a client on an embedded LocalCluster or an existing scheduler.

    with open_client(workers=None, scheduler=None) as client: ...

Embedded (the default): worker processes with one thread each, as many as cores, each with
BLAS pinned to one thread (the nanny sets OMP/OPENBLAS/MKL_NUM_THREADS before it spawns the
worker, and every point also runs under threadpoolctl's limit, so a worker started by hand
behaves the same): the parallelism is across points, and two BLAS pools per core would only
fight. No dashboard, quiet logs. The command starts and stops it; a command killed with
SIGKILL cannot, but distributed's worker processes exit when the process that started them
is gone (their parent pipe closes), so no orphan finishes points nobody will collect
(tests/test_sweep_cluster.py checks it).

`--scheduler tcp://HOST:PORT`: the same points go to an existing cluster (`dask scheduler`,
`dask worker ADDRESS --nthreads 1`); its workers need this package installed; the results
come back to the command, which writes them, so the workers need no shared file system.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager

import dask
from distributed import Client, LocalCluster

from ..probing import parallel

BLAS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CONNECT_TIMEOUT = "20s"
# Dask gives its workers MALLOC_TRIM_THRESHOLD_=65536 so that they hand freed memory back to
# the OS. Setting it also fixes glibc's mmap threshold at 128 KiB, so every larger array of a
# point is a fresh mmap whose pages fault in again: measured on 5 points, 300k minor faults
# and 0.4-0.7 s of system time against 21k and 0.06 s in process, the points' compute 5-20%
# slower. A point's arrays are reused step after step, so glibc's defaults stay.
GLIBC_MALLOC = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")


def default_workers() -> int:
    return parallel.available_cores()   # through the module: tests set the core count there


def worker_count(workers: int | None, points: int) -> int:
    """Processes of the embedded cluster: --workers (default one per core), never more than
    the points to run (500 idle workers on a 4-point sweep only fight over the cores)."""
    return max(1, min(workers or default_workers(), points))


def address_problem(address: str) -> str | None:
    """Why `address` is not a scheduler address distributed can connect to, or None. Said
    before connecting: distributed's own answer to 'banana' is a bare ValueError."""
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends
    scheme, loc = parse_address(address, strict=False)   # no scheme: tcp
    if scheme not in backends:
        return f"unknown protocol {scheme!r}; distributed knows {', '.join(sorted(backends))}"
    if scheme in ("inproc", "ucx"):
        return None
    try:
        host, port = parse_host_port(loc)
    except ValueError:
        return "no port" if ":" not in loc else f"port {loc.rpartition(':')[2]!r} is not a number"
    if not host:
        return "no host"
    if not 0 < port < 65536:
        return f"port {port} is not in 1..65535"
    return None


@contextmanager
def open_client(workers: int | None = None, scheduler: str | None = None):
    if scheduler is not None:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        try:
            yield client
        finally:
            client.close()
        return
    n = workers or default_workers()
    environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
               if k not in GLIBC_MALLOC}
    environ.update(BLAS_ENV)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                               silence_logs=logging.ERROR, host="127.0.0.1")
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()

