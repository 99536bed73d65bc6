"""The probe's batch split over workers (forked processes, or threads where forking is not safe):
the same numbers whatever the count; workers forked only from a quiet process (no other thread,
no OpenMP runtime), an error in a worker raised in the caller as itself, no lock held across a
fork, workers that die with their parent; and the forked path's tests in a fresh interpreter."""
import multiprocessing.context
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from diagnostics.cells import make_cell
from diagnostics.cells.rnn import RNN
from diagnostics.probing import parallel
from diagnostics.probing.core import probe
from diagnostics.probing.parallel import chunks, resolve_workers, single_threaded_blas

probe_module = sys.modules["diagnostics.probing.core"]


def _max_diff(r1, r2) -> float:
    """Largest |difference| of two probes' log10 curves; inf when their keys or the places of
    non-finite values (-inf for exact zeros, NaN) differ."""
    if r1.log10.keys() != r2.log10.keys():
        return np.inf
    worst = 0.0
    for key in r1.log10:
        a, b = r1.log10[key], r2.log10[key]
        fin = np.isfinite(a)
        if not np.array_equal(fin, np.isfinite(b)) or not np.array_equal(a[~fin], b[~fin], equal_nan=True):
            return np.inf
        worst = max(worst, float(np.abs(a[fin] - b[fin]).max(initial=0.0)))
    return worst


@pytest.mark.parametrize("kind, options", [("lstm", {}), ("lstm", {"chrono": 50.0}), ("gru", {}),
                                           ("rnn", {"recurrent_init": {"kind": "gaussian", "gain": 1.5}})])
@pytest.mark.slow
def test_worker_count_changes_rounding_at_most(kind, options, mode):
    cell = make_cell(kind, input_size=3, hidden=10, **options)
    params = cell.init(np.random.default_rng(0))
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((40, 7, 3))
    h0 = 0.3 * rng.standard_normal((7, cell.state_size))
    kw = dict(lags=25, anchors=[30, 40], h0=h0)
    with single_threaded_blas():   # the reference with the BLAS the workers use
        ref = probe(cell, params, xs, workers=1, **kw)
    # chunks see other product shapes, so BLAS may round differently: 1e-13 in log10 is a few
    # ulps of the log of a product of 40 Jacobians; a wrong chunk join would be off by O(1)
    for workers in (2, 3, 50):   # 50: capped at batch // 2 = 3
        assert _max_diff(ref, probe(cell, params, xs, workers=workers, **kw)) <= 1e-13, workers
    # and a fixed worker count repeats itself bit for bit
    assert _max_diff(probe(cell, params, xs, workers=2, **kw), probe(cell, params, xs, workers=2, **kw)) == 0.0


def test_counters_combine_across_workers(mode):
    cell = make_cell("lstm", input_size=2, hidden=8)
    params = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).standard_normal((30, 6, 2))
    parts = [probe(cell, params, xs[:, s], paths=("a", "c"), norms=("spectral",), workers=1).stats[30]["a+c"]
             for s in chunks(6, 2)]
    its, fbs = probe(cell, params, xs, paths=("a", "c"), norms=("spectral",), workers=2).stats[30]["a+c"]
    assert its == max(i for i, _ in parts) and fbs == sum(f for _, f in parts)


class Recording(RNN):
    """Appends the process and thread that ran each vjp to a file (a forked worker's memory
    is its own: only a file shows where the work ran)."""
    log = None

    def vjp(self, params, cache, m):
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()} {threading.get_ident()}\n")
        return super().vjp(params, cache, m)


def _where(tmp_path, cell, xs, **kw):
    log = tmp_path / "log.txt"
    log.unlink(missing_ok=True)
    Recording.log = str(log)
    probe(cell, cell.init(np.random.default_rng(0)), xs, **kw)
    return {tuple(map(int, line.split())) for line in log.read_text().split("\n") if line}


@pytest.fixture(params=["processes", "threads", "busy"])
def mode(request, monkeypatch):
    if request.param == "threads":   # what a platform that cannot fork safely gets
        monkeypatch.setattr(parallel, "can_fork", lambda: False)
        monkeypatch.setattr(probe_module, "can_fork", lambda: False)
    elif request.param == "busy":    # a process running other threads: worker threads, no fork
        monkeypatch.setattr(parallel, "_quiet", lambda: False)
    elif not parallel.can_fork():
        pytest.skip("this platform does not fork workers")
    elif not parallel.fork_allowed():
        pytest.skip("this process runs other threads, so it does not fork")
    return request.param


@pytest.mark.slow
def test_a_users_cell_runs_in_the_caller_unless_it_opts_in(tmp_path, mode):
    here = (os.getpid(), threading.get_ident())
    xs = np.random.default_rng(1).standard_normal((60, 8, 2))
    cell = Recording(input_size=2, hidden=5)     # a subclass of a built-in: parallel_safe
    ran = _where(tmp_path, cell, xs, workers=2)
    assert ran and here not in ran
    if mode == "processes":
        assert os.getpid() not in {pid for pid, _ in ran} and len({pid for pid, _ in ran}) == 2
    assert _where(tmp_path, cell, xs[:5]) == {here}   # default: a small probe stays home

    big = Recording(input_size=2, hidden=150)
    if resolve_workers(None, 8) > 1:   # a machine with more than one core
        assert here not in _where(tmp_path, big, xs, lags=20)
    object.__setattr__(big, "parallel_safe", False)   # what a cell that is not pure declares
    assert _where(tmp_path, big, xs, lags=20) == {here}


def test_errors_in_a_worker_reach_the_caller(mode):
    class Broken(RNN):
        def vjp(self, params, cache, m):
            raise RuntimeError("boom")

    cell = Broken(input_size=1, hidden=3)
    xs = np.zeros((5, 4, 1))
    with pytest.raises(RuntimeError, match="boom"):
        probe(cell, cell.init(np.random.default_rng(0)), xs, workers=2)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_worker_counts_name_the_argument(bad):
    with pytest.raises(ValueError, match=r"workers: must be a positive integer or None, got"):
        resolve_workers(bad, 4)


def test_every_chunk_holds_two_sequences_or_more():
    assert [resolve_workers(50, b) for b in (1, 2, 3, 4, 7)] == [1, 1, 1, 2, 3]
    assert resolve_workers(None, 16, allowed=False) == 1


def test_chunks_cover_the_batch_once():
    for batch in (1, 2, 5, 16, 17):
        for workers in range(1, batch + 1):
            parts = chunks(batch, workers)
            assert len(parts) == workers
            assert np.array_equal(np.concatenate([np.arange(batch)[s] for s in parts]), np.arange(batch))


def test_a_machine_that_cannot_start_processes_gets_threads(monkeypatch):
    tried = []

    class NoProcesses:   # what a container without /dev/shm semaphores raises
        def __init__(self, *a, **k):
            tried.append(1)
            raise OSError(38, "Function not implemented")

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", NoProcesses)
    cell = make_cell("lstm", input_size=2, hidden=6)
    params = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).standard_normal((20, 6, 2))
    with single_threaded_blas():
        ref = probe(cell, params, xs, workers=1)
    got = probe(cell, params, xs, workers=2)
    assert tried == ([1] if parallel.fork_allowed() else [])   # tried where they apply
    assert _max_diff(ref, got) <= 1e-13


_FORKS_AND_WAITS = """
import os, sys, time
from pathlib import Path
from diagnostics.probing import parallel

def work(part):
    if part.start:   # one worker sleeps in its part; the other, done at once, waits on the task pipe
        Path(sys.argv[1]).write_text(str(os.getpid()))
        time.sleep(120)
    return part.start

assert parallel.fork_allowed()
parallel.map_chunks(work, parallel.chunks(4, 2), processes=True)
"""


@pytest.mark.skipif(not parallel.can_fork(), reason="no forked workers here")
def test_forked_workers_die_with_a_parent_killed_by_sigkill(tmp_path):
    """A parent killed with SIGKILL runs no clean-up: its workers lived on, adopted by init,
    blocked on their task pipe (in the issue, 103 MB each, one pair for 7+ minutes). Now
    both, the busy one and the idle one, die with it."""
    import signal
    import subprocess
    import time

    import psutil
    started = tmp_path / "started"
    parent = subprocess.Popen([sys.executable, "-c", _FORKS_AND_WAITS, str(started)])
    workers = []
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and parent.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the workers did not start"
        workers = psutil.Process(parent.pid).children()
        assert len(workers) >= 2
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        _, alive = psutil.wait_procs(workers, timeout=10)
        alive = [p for p in alive if _running(p)]
        assert not alive, f"workers outlived their killed parent: {alive}"
    finally:
        for p in workers:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def _running(p) -> bool:
    """Not gone, nor a zombie left for a PID 1 that does not reap."""
    import psutil
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.skipif(not parallel.can_fork(), reason="no forked workers here")
def test_a_worker_whose_parent_died_before_it_asked_exits_at_once():
    """The parent may die between the fork and the worker's request to die with it; the
    worker then finds itself adopted (another parent) and exits."""
    import multiprocessing
    worker = multiprocessing.get_context("fork").Process(target=parallel._die_with, args=(os.getppid(),))
    worker.start()
    worker.join(10)
    assert worker.exitcode == 1


def _probe_small_lstm():
    """A probe that runs in the caller with one BLAS thread (a small built-in cell), so under
    the module's lock for threaded sections."""
    cell = make_cell("lstm", input_size=1, hidden=4)
    probe(cell, cell.init(np.random.default_rng(0)), np.ones((5, 2, 1)))


@pytest.mark.skipif(not parallel.can_fork(), reason="no fork here")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_process_forked_while_another_thread_probes_can_probe():
    """BLAS limits are process-wide, so a section with one BLAS thread holds a lock. A process
    forked by one thread while another thread was in such a section (a user's own fork or
    multiprocessing pool) inherited the lock held, and its first such probe waited for ever.
    A forked child now gets a fresh lock."""
    import multiprocessing
    inside, leave = threading.Event(), threading.Event()

    def hold():
        parallel.map_chunks(lambda s: (inside.set(), leave.wait(60)), [slice(0, 2)], one_blas_thread=True)
    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert inside.wait(30)
        child = multiprocessing.get_context("fork").Process(target=_probe_small_lstm)
        child.start()
        child.join(60)
        stuck = child.is_alive()
        if stuck:
            child.kill()
            child.join()
        assert not stuck and child.exitcode == 0
    finally:
        leave.set()
        holder.join()


# --- which workers: forked only from a quiet process ----------------------------------------

@dataclass(frozen=True)
class WhereRan(RNN):
    """Appends 'pid thread' of each vjp to the file `log` (a forked worker's memory is its own);
    raises `error` where it runs outside the caller's thread, if given."""
    log: str = ""
    error: str = ""
    caller: tuple = ()

    def vjp(self, params, cache, m):
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()} {threading.get_ident()}\n")
        if self.error and (os.getpid(), threading.get_ident()) != self.caller:
            raise {"ValueError": ValueError, "FileNotFoundError": FileNotFoundError}[self.error](
                f"{self.error} raised in a worker")
        return super().vjp(params, cache, m)


def _ran(log: Path) -> set[int]:
    """The processes that ran a vjp."""
    return {int(line.split()[0]) for line in log.read_text().splitlines()}


needs_fork = pytest.mark.skipif(not parallel.can_fork(), reason="no forked workers here")


XS = np.random.default_rng(1).standard_normal((30, 6, 1))


@pytest.fixture
def another_thread():
    """A second Python thread, holding a lock until the test ends: what a forked child would
    inherit locked for ever."""
    held, done = threading.Lock(), threading.Event()
    took = threading.Event()

    def hold():
        with held:
            took.set()
            done.wait(60)

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    took.wait(10)
    yield t
    done.set()
    t.join(10)


class _OpenMP:   # what threadpoolctl reports for an OpenMP runtime (libgomp, libiomp)
    internal_api, threading_layer, num_threads = "openmp", "openmp", 2


@needs_fork
@pytest.mark.slow
def test_a_fresh_process_forks_and_one_that_loaded_openmp_does_not():
    """Whatever this test process has loaded, a fresh one is quiet and forks its workers; after
    `import torch` (libgomp) it is not, and the probe's workers are threads, with the same bits."""
    code = ("import os, sys, numpy as np\n"
            "import diagnostics.probing.parallel as par\n"
            "from diagnostics.cells import make_cell\n"
            "from diagnostics.probing import probe\n"
            "cell = make_cell('rnn', input_size=1, hidden=4); p = cell.init(np.random.default_rng(0))\n"
            "xs = np.random.default_rng(1).standard_normal((30, 6, 1))\n"
            "a = probe(cell, p, xs, workers=2).log10[('a', 'spectral')]\n"
            "print(par.fork_allowed())\n"
            "if len(sys.argv) > 1:\n"
            "    import torch; torch.ones(2) @ torch.ones(2)\n"
            "    print(par.fork_allowed()); b = probe(cell, p, xs, workers=2).log10[('a', 'spectral')]\n"
            "    print(np.array_equal(a, b))\n")
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert fresh.stdout.split() == ["True"]
    import importlib.util
    if importlib.util.find_spec("torch") is None:   # (never imported here: this process must stay quiet)
        return
    loaded = subprocess.run([sys.executable, "-c", code, "torch"], capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == ["True", "False", "True"]


@needs_fork
@pytest.mark.parametrize("busy", ["python thread", "OpenMP runtime"])
def test_a_process_running_other_threads_is_not_forked(tmp_path, monkeypatch, request, busy, quiet_process):
    """Forking copies only the calling thread; whatever another thread holds stays locked in the
    child. With a second Python thread, or an OpenMP runtime loaded, the workers are threads of
    this process, and give the same bits as forked ones."""
    log = tmp_path / "log.txt"
    cell = WhereRan(input_size=1, hidden=4, log=str(log))
    params = cell.init(np.random.default_rng(0))
    quiet = probe(cell, params, XS, workers=2)
    assert len(_ran(log)) == 2 and os.getpid() not in _ran(log)      # forked while quiet
    log.unlink()
    if busy == "python thread":
        request.getfixturevalue("another_thread")
    else:
        libs = parallel._controller().lib_controllers + [_OpenMP()]
        fake = type("Controller", (), {"lib_controllers": libs, "limit": parallel._controller().limit})()
        monkeypatch.setattr(parallel, "_controller", lambda: fake)
    busy_run = probe(cell, params, XS, workers=2)
    assert _ran(log) == {os.getpid()}
    for key in quiet.log10:
        assert np.array_equal(quiet.log10[key], busy_run.log10[key])


@needs_fork
def test_tqdms_monitor_thread_does_not_stop_forking(tmp_path, quiet_process):
    """diag run's training bar starts tqdm's monitor thread, which sleeps nearly always and
    never holds a lock a worker needs: the probes after training still fork."""
    from tqdm import tqdm
    with open(os.devnull, "w") as sink, tqdm(total=1, disable=False, file=sink):
        monitor = tqdm.monitor
    assert monitor is not None and monitor.is_alive()
    log = tmp_path / "log.txt"
    cell = WhereRan(input_size=1, hidden=4, log=str(log))
    probe(cell, cell.init(np.random.default_rng(0)), XS, workers=2)
    assert len(_ran(log)) == 2 and os.getpid() not in _ran(log)


@needs_fork
@pytest.mark.parametrize("error", [ValueError, FileNotFoundError], ids=["ValueError", "OSError"])
def test_an_error_in_a_worker_reaches_the_caller_as_itself(tmp_path, error, quiet_process):
    """Not swallowed: an OSError was, and the whole probe silently ran again in threads."""
    log = tmp_path / "log.txt"
    cell = WhereRan(input_size=1, hidden=4, log=str(log), error=error.__name__,
                    caller=(os.getpid(), threading.get_ident()))
    with pytest.raises(error, match=f"^{error.__name__} raised in a worker$"):
        probe(cell, cell.init(np.random.default_rng(0)), XS, workers=2)
    assert os.getpid() not in _ran(log)       # and nothing ran again here


@needs_fork
def test_no_lock_is_held_while_workers_are_forked(monkeypatch, quiet_process):
    held = []

    def start(self, _start=multiprocessing.context.ForkProcess.start):
        held.append(parallel._PROCESS.lock.locked())
        return _start(self)

    monkeypatch.setattr(multiprocessing.context.ForkProcess, "start", start)
    cell = RNN(input_size=1, hidden=4)
    probe(cell, cell.init(np.random.default_rng(0)), XS, workers=2)
    assert held == [False, False]


@needs_fork
@pytest.mark.skipif(os.environ.get("DIAG_FRESH_PROCESS") == "1", reason="already the fresh process")
@pytest.mark.slow
def test_fork_path_tests_pass_in_a_fresh_process():
    """Every test of the forked path, in an interpreter where no other test ran: none may skip.
    They live in this file and in test_progress.py."""
    root = Path(__file__).resolve().parent
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                          str(root / "test_probe_parallel.py"), str(root / "test_progress.py")],
                         capture_output=True, text=True, env={**os.environ, "DIAG_FRESH_PROCESS": "1"})
    tail = out.stdout.strip().splitlines()[-1]
    assert out.returncode == 0 and "skipped" not in tail.replace("1 skipped", ""), out.stdout[-3000:]
