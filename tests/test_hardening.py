"""Issue 12, hardening: folder swaps that fail, file modes and the umask, hostile YAML, YAML 1.2
numbers, the parallel probe's workers, the LSTM's scratch memory."""
from __future__ import annotations

import errno
import multiprocessing.context
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from diagnostics import publish
from diagnostics.cells.rnn import RNN
from diagnostics.probing import parallel
from diagnostics.probing.core import probe

# --- 1. replacing a run folder ---------------------------------------------------------------

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


# --- 2. file and folder modes follow the umask, which is never changed --------------------

@pytest.fixture(params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask(request):
    set_umask = os.umask            # the tests below replace os.umask by a trap
    old = set_umask(request.param)
    yield request.param
    set_umask(old)


def _no_umask_changes(monkeypatch):
    """os.umask both reads and sets the process-wide mask: setting it, even for a moment, races
    with every other thread creating files."""
    def refuse(mask):
        raise AssertionError(f"os.umask({mask:#o}) called")
    monkeypatch.setattr(os, "umask", refuse)


def test_atomic_writes_get_the_mode_of_a_plain_open(tmp_path, monkeypatch, umask):
    from diagnostics.io import atomic_write_bytes
    plain = tmp_path / "plain.json"
    plain.write_bytes(b"{}")
    _no_umask_changes(monkeypatch)
    atomic_write_bytes(tmp_path / "atomic.json", b"{}")
    mode = (tmp_path / "atomic.json").stat().st_mode & 0o777
    assert mode == plain.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atomic.json", "plain.json"]


def test_a_swapped_in_run_folder_gets_the_mode_of_a_plain_mkdir(tmp_path, monkeypatch, umask):
    plain = tmp_path / "plain"
    plain.mkdir()
    _no_umask_changes(monkeypatch)
    for final in (tmp_path / "new", plain):           # a first run, and one replacing a folder
        stage = publish.staging_dir(final)
        assert stage.stat().st_mode & 0o777 == 0o777 & ~umask
        publish.swap_in(stage, final)
        publish.discard(stage)
        assert final.stat().st_mode & 0o777 == 0o777 & ~umask


# --- 3. hostile YAML is refused quickly, with one line ---------------------------------------

def _alias_bomb(levels: int) -> str:
    """~500 bytes at 7 levels: each level lists the previous one ten times, so a walk that does
    not notice shared nodes visits 10^7 of them (the old duplicate-key check took ~25 s)."""
    lines = ["name: bomb", "task: {kind: none}", "cells: [{kind: rnn}]", "l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def _read_in_time(path, budget=1.0):
    """read_yaml(path): the data, or the CaseError's lines; fails if it took `budget` s or more
    of CPU time (not wall time: other jobs on a shared machine must not make this flaky)."""
    import time

    from diagnostics.errors import CaseError
    from diagnostics.yamlfile import read_yaml
    t0 = time.process_time()
    try:
        out = read_yaml(path)
    except CaseError as e:
        out = e.lines
    took = time.process_time() - t0
    assert took < budget, f"{path.name}: {took:.2f} s"
    return out


def test_an_alias_bomb_is_refused_at_once(tmp_path):
    p = tmp_path / "bomb.yaml"
    p.write_text(_alias_bomb(7))
    assert p.stat().st_size < 600
    lines = _read_in_time(p)
    assert lines == [f"{p}: YAML error at line 5, column 10: aliases (*l0) are not supported in case files; "
                     "write the value out"]


@pytest.mark.parametrize("text", [
    "name: x\nnotes: &n hello\nother: *n\n",           # harmless, but no shipped case needs them
    "name: x\nl: &l [*l]\n",                            # a cycle
])
def test_every_alias_is_refused(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    lines = _read_in_time(p)
    assert len(lines) == 1 and "aliases" in lines[0] and "are not supported in case files" in lines[0]


@pytest.mark.parametrize("kind", ["dense list", "deep nesting", "over 1 MB"])
def test_any_file_reads_or_is_refused_within_a_second(tmp_path, kind):
    """Dense scalars cost the YAML reader the most per byte: the largest file accepted must still
    read in well under a second; anything larger, or nested absurdly deep, is one line."""
    from diagnostics.yamlfile import MAX_BYTES
    p = tmp_path / "c.yaml"
    if kind == "dense list":
        head = "name: x\nanchors: ["
        p.write_text(head + ", ".join(["0"] * ((MAX_BYTES - len(head) - 2) // 3)) + "]\n")
        assert MAX_BYTES - 4 <= p.stat().st_size <= MAX_BYTES
        data = _read_in_time(p)
        assert data["name"] == "x" and set(data["anchors"]) == {0}
    elif kind == "deep nesting":
        p.write_text("name: " + "[" * 5000 + "]" * 5000 + "\n")
        lines = _read_in_time(p)       # libyaml's scanner may meet its own limit (1000) first
        assert len(lines) == 1 and re.search("nested too deeply|exceeded maximum nesting depth", lines[0]), lines
        p.write_text("name:\n" + "".join(" " * i + "- \n" for i in range(1, 40)))
        assert _read_in_time(p) == [f"{p}: YAML error at line 33, column 33: nested too deeply (more than 32 levels)"]
    else:
        p.write_text("name: x\nnotes: '" + "a" * 1_100_000 + "'\n")
        assert _read_in_time(p) == [f"{p}: {p.stat().st_size} bytes; a case file holds at most "
                                    f"{MAX_BYTES // 1024} KiB"]



@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_case_file_that_is_a_fifo_is_one_line_not_a_wait(tmp_path):
    """A FIFO with no writer blocked `diag validate` forever in open() (weight files already
    refused FIFOs). Run in a child process, so that a hang fails the test instead of the run."""
    import subprocess
    import sys
    os.mkfifo(tmp_path / "case.yaml")
    root = Path(__file__).resolve().parents[1]
    try:
        res = subprocess.run([sys.executable, "-m", "diagnostics.cli", "validate", str(tmp_path / "case.yaml")],
                             capture_output=True, text=True, timeout=30, cwd=root,
                             env={**os.environ, "PYTHONPATH": str(root)})
    except subprocess.TimeoutExpired:
        pytest.fail("diag validate waited on the FIFO")
    assert res.returncode == 2, res.stderr
    assert res.stderr == (f"error: {tmp_path / 'case.yaml'}: not a regular file (a pipe or a device); "
                          "a case file must be a file\n")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_documents_that_are_fifos_are_one_line_not_a_wait(tmp_path):
    """The other files a command reads: a baseline (diag check), a run folder's documents (diag
    report), and a run.json in an output folder that `diag run` asks whose it is. Each child
    process would hang on the FIFO before."""
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[1]
    os.mkfifo(tmp_path / "base.json")
    (tmp_path / "run").mkdir()
    os.mkfifo(tmp_path / "run" / "curves.json")
    out = tmp_path / "out"
    (out / "quickstart.quick").mkdir(parents=True)
    os.mkfifo(out / "quickstart.quick" / "run.json")
    for args, words in ((["check", str(root / "cases" / "baselines" / "quickstart.quick.json"),
                          str(tmp_path / "base.json")], "base.json: not a regular file"),
                        (["report", str(tmp_path / "run")], "curves.json: not a regular file"),
                        (["run", str(root / "cases" / "quickstart.yaml"), "--quick", "--out", str(out)],
                         "not written by diag")):
        try:
            res = subprocess.run([sys.executable, "-m", "diagnostics.cli", *args], capture_output=True, text=True,
                                 timeout=60, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
        except subprocess.TimeoutExpired:
            pytest.fail(f"diag {args[0]} waited on a FIFO")
        assert res.returncode == 2 and words in res.stderr and res.stderr.count("\n") == 1, (args[0], res.stderr)

# --- 4. YAML 1.2 numbers ---------------------------------------------------------------------

def test_exponent_notation_reads_as_a_number(tmp_path):
    """PyYAML follows YAML 1.1, where a float needs a dot and a signed exponent: 1e-3 was the
    string '1e-3' (and 'lr: must be a number'). YAML 1.2 reads all of these as floats."""
    from diagnostics.yamlfile import read_yaml
    p = tmp_path / "c.yaml"
    p.write_text("a: 1e-3\nb: 1e6\nc: 5E-4\nd: -2.5e+3\ne: +1.5e3\nf: .5e-2\ng: 2.e1\n"
                 "h: 1.0\ni: 1\nj: 1_000\nk: .inf\nl: 1.0e-3\n")
    got = read_yaml(p)
    assert got == {"a": 1e-3, "b": 1e6, "c": 5e-4, "d": -2.5e3, "e": 1.5e3, "f": 0.5e-2, "g": 20.0,
                   "h": 1.0, "i": 1, "j": 1000, "k": float("inf"), "l": 1e-3}
    assert [type(got[k]) for k in "abcdefghijkl"] == [float] * 7 + [float, int, int, float, float]


def test_only_exponent_numbers_become_numbers(tmp_path):
    from diagnostics.yamlfile import read_yaml
    p = tmp_path / "c.yaml"
    p.write_text("name: 1e5abc\nq: '1e-3'\nqq: \"1e6\"\ne: e5\nf: 1e\ng: 1e+\nh: 1.5e3.2\n"
                 "i: 1e-3 m\nj: 0x1e3\n1e3x: key\n")
    got = read_yaml(p)
    assert got == {"name": "1e5abc", "q": "1e-3", "qq": "1e6", "e": "e5", "f": "1e", "g": "1e+",
                   "h": "1.5e3.2", "i": "1e-3 m", "j": 0x1e3, "1e3x": "key"}


def test_a_case_with_lr_1e_3_validates(tmp_path):
    from diagnostics.run.spec import resolve
    p = tmp_path / "c.yaml"
    p.write_text("name: c\ntask: {kind: copy}\ncells: [{kind: rnn, hidden: 4}]\n"
                 "train: {steps: 2, optimizer: {kind: adam, lr: 1e-3}}\n")
    assert resolve(p).case.train.optimizer.lr == 1e-3


# --- 5. the parallel probe's workers ---------------------------------------------------------

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


@pytest.fixture
def quiet_process():
    """These tests need a process that forks its workers. One that an earlier test made busy
    (torch's OpenMP runtime, loaded by the PyTorch tests, stays for the session) cannot;
    test_fork_path_tests_pass_in_a_fresh_process runs them where nothing else has run."""
    parallel._PROCESS.reset()   # a fresh look at the thread pools, not a view kept from earlier tests
    if not parallel._quiet():
        pytest.skip("this test process is not quiet (an earlier test loaded a thread runtime)")
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
def test_a_fresh_process_forks_and_one_that_loaded_openmp_does_not():
    """Whatever this test process has loaded, a fresh one is quiet and forks its workers; after
    `import torch` (libgomp) it is not, and the probe's workers are threads, with the same bits."""
    import subprocess
    import sys
    code = ("import os, sys, numpy as np\n"
            "import diagnostics.probing.parallel as par\n"
            "from diagnostics.cells import make_cell\n"
            "from diagnostics.probing import probe\n"
            "cell = make_cell('rnn', input_size=1, hidden=4); p = cell.init(np.random.default_rng(0))\n"
            "xs = np.random.default_rng(1).standard_normal((30, 6, 1))\n"
            "a = probe(cell, p, xs, workers=2).log10[('a', 'spectral')]\n"
            "print(par._quiet())\n"
            "if len(sys.argv) > 1:\n"
            "    import torch; torch.ones(2) @ torch.ones(2)\n"
            "    print(par._quiet()); b = probe(cell, p, xs, workers=2).log10[('a', 'spectral')]\n"
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


# --- 6. the LSTM's scratch memory --------------------------------------------------------------

def test_the_lstm_keeps_at_most_its_scratch_budget_after_a_probe():
    """The vjp's scratch arrays are kept per thread between calls; at n = 512, B = 64 the
    folded step matrices alone are 268 MB. Here n = 256, B = 32: 34 MB of them."""
    from diagnostics.cells import lstm, make_cell
    lstm.SCRATCH.clear()   # whatever earlier tests left in this thread's scratch
    cell = make_cell("lstm", input_size=1, hidden=256)
    params = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).standard_normal((2, 32, 1))
    probe(cell, params, xs, lags=1, paths=("a",), norms=("frobenius",), workers=1)
    assert lstm.SCRATCH.nbytes() <= lstm.SCRATCH_BYTES
    # a small probe's scratch is still kept, and reused from call to call
    small = make_cell("lstm", input_size=1, hidden=16)
    probe(small, small.init(np.random.default_rng(0)), xs[:, :8], lags=2, workers=1)
    kept = lstm.SCRATCH.held()
    assert kept and lstm.SCRATCH.nbytes() <= lstm.SCRATCH_BYTES
    probe(small, small.init(np.random.default_rng(0)), xs[:, :8], lags=2, workers=1)
    assert all(lstm.SCRATCH.held().get(k) is a for k, a in kept.items())


@needs_fork
@pytest.mark.skipif(os.environ.get("DIAG_FRESH_PROCESS") == "1", reason="already the fresh process")
def test_fork_path_tests_pass_in_a_fresh_process():
    """Every test of the forked path, in an interpreter where no other test ran: none may skip."""
    import subprocess
    import sys
    root = Path(__file__).resolve().parent
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                          str(root / "test_hardening.py"), str(root / "test_probe_parallel.py"),
                          str(root / "test_progress.py")],
                         capture_output=True, text=True, env={**os.environ, "DIAG_FRESH_PROCESS": "1"})
    tail = out.stdout.strip().splitlines()[-1]
    assert out.returncode == 0 and "skipped" not in tail.replace("1 skipped", ""), out.stdout[-3000:]
