"""Sweeps on real Dask clusters: an embedded LocalCluster (one and two worker processes) and a
separately started `dask scheduler` + `dask worker` pair on 127.0.0.1, a sweep killed with
SIGKILL and resumed, a point that raises. Each compares files byte for byte."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import sweep_helpers
import yaml
from sweep_helpers import RegisterFlaky, tiny_case, write_sweep

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def diag(*args, check=True, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "diagnostics.cli", *map(str, args)], env=ENV, capture_output=True,
                         text=True, timeout=600, **kw)
    if check:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """One sweep of four quick points, run on an embedded cluster of two worker processes."""
    root = tmp_path_factory.mktemp("sweep")
    path = write_sweep(root / "files")
    diag("sweep", path, "--out", root / "two", "--workers", 2, "--no-report")
    return root, path


def _points(folder: Path) -> dict[str, bytes]:
    return {p.name: (p / "curves.json").read_bytes() for p in sorted((folder / "points").iterdir())}


@pytest.mark.slow
def test_scheduler_and_worker_pair_gives_the_same_sweep_json(swept):
    root, path = swept
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--nthreads", "1",
                                       "--nworkers", "1", "--no-dashboard"], env=ENV,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        res = diag("sweep", path, "--out", root / "remote", "--scheduler", address, "--no-report")
        assert "4 run now, 0 failed" in res.stdout
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    two = root / "two" / "tiny-sweep"
    remote = root / "remote" / "tiny-sweep"
    assert (remote / "sweep.json").read_bytes() == (two / "sweep.json").read_bytes()
    assert _points(remote) == _points(two)


@pytest.mark.slow
def test_a_point_is_the_same_bytes_from_diag_run_one_worker_and_two(swept, tmp_path):
    root, path = swept
    diag("sweep", path, "--out", tmp_path / "one", "--workers", 1, "--no-report")
    one, two = _points(tmp_path / "one" / "tiny-sweep"), _points(root / "two" / "tiny-sweep")
    assert one == two and len(one) == 4
    pid = sorted(one)[0]
    run = json.loads((root / "two" / "tiny-sweep" / "points" / pid / "run.json").read_text())
    case_file = tmp_path / "point.yaml"
    case_file.write_text(yaml.safe_dump(run["case"], sort_keys=False))
    diag("run", case_file, "--out", tmp_path / "alone", "--no-report", check=False)
    assert (tmp_path / "alone" / "tiny" / "curves.json").read_bytes() == one[pid]


@pytest.mark.slow
def test_sigkill_mid_sweep_then_rerun_matches_an_uninterrupted_sweep(swept, tmp_path):
    root, _ = swept
    path = write_sweep(tmp_path / "files", base=tiny_case(steps=150), name="killed",
                       vary={"task.p": [5, 6, 7], "seed": {"range": [0, 2]}})
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "diagnostics.cli", "sweep", path, "--out", str(out), "--workers", "1", "--no-report"]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    points = out / "killed" / "points"
    deadline = time.monotonic() + 300
    while len(list(points.glob("*/run.json"))) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    children = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, f"workers outlived the killed sweep: {alive}"
    done = {p.parent.name: p.stat().st_mtime_ns for p in points.glob("*/run.json")}
    assert 2 <= len(done) < 6, done
    res = diag("sweep", path, "--out", out, "--workers", 1, "--no-report")
    m = re.search(r"points: 6 in the grid, (\d+) already finished, (\d+) run now, 0 failed", res.stdout)
    assert m and int(m.group(1)) == len(done) and int(m.group(2)) == 6 - len(done), res.stdout
    assert {k: (points / k / "run.json").stat().st_mtime_ns for k in done} == done   # not rewritten
    assert json.loads((out / "killed" / "sweep-run.json").read_text())["ran"] == 6 - len(done)
    diag("sweep", path, "--out", tmp_path / "whole", "--workers", 2, "--no-report")
    assert (out / "killed" / "sweep.json").read_bytes() == (tmp_path / "whole" / "killed" / "sweep.json").read_bytes()


@pytest.mark.slow
def test_a_point_that_raises_is_recorded_and_the_report_still_written(tmp_path):
    from diagnostics.cells import register_cell, unregister_cell
    from diagnostics.sweep.grid import load_sweep
    from diagnostics.sweep.run import run_sweep
    # the plugin travels by reference: spawned workers start with this process's sys.path,
    # tests/ included, and import sweep_helpers themselves
    register_cell("flaky", sweep_helpers.Flaky)
    try:
        base = tiny_case()
        base["cells"][0]["kind"] = "flaky"
        sweep = load_sweep(write_sweep(tmp_path / "files", base=base, vary={"cells[0].hidden": [6, 7]}))
        res = run_sweep(sweep, tmp_path / "out", workers=1, show=False, plugins=[RegisterFlaky()])
    finally:
        unregister_cell("flaky")
    doc = res.doc.to_data()
    assert doc["counts"] == {"points": 2, "finished": 1, "failed": 1, "missing": 0,
                             "reasons": {"RuntimeError": 1}, "diverged": 0}
    bad = doc["points"][1]
    assert bad["status"] == "failed" and bad["error"] == "RuntimeError: deliberate failure at hidden 7"
    err = json.loads((res.folder / "points" / bad["id"] / "error.json").read_text())
    assert "deliberate failure" in err["traceback"] and err["values"] == {"cells[0].hidden": 7}
    failed_group = doc["groups"][1]["cells"][0]
    assert (failed_group["trials"], failed_group["failed"], failed_group["wilson95"]) == (0, 1, [0.0, 1.0])
    assert doc["groups"][0]["cells"][0]["trials"] == 1
    page = (res.folder / "index.html").read_text()
    assert res.report_error is None and "deliberate failure at hidden 7" in page and "1 of 2 points failed" in page
    assert res.exit_code == 1


def _worker_environ(keys):
    return {k: os.environ.get(k) for k in keys}


@pytest.mark.slow
def test_embedded_workers_pin_blas_and_keep_glibcs_malloc_defaults():
    """Dask's default MALLOC_TRIM_THRESHOLD_=65536 also fixes glibc's mmap threshold, so each
    array over 128 KiB is mapped and faulted in afresh (measured: 14x the minor faults of the
    same points in process); the embedded workers leave glibc's defaults alone."""
    from diagnostics.sweep.cluster import open_client
    blas = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    malloc = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")
    with open_client(1) as client:
        (env,) = client.run(_worker_environ, [*blas, *malloc]).values()
    assert {k: env[k] for k in blas} == blas
    assert {k: env[k] for k in malloc} == dict.fromkeys(malloc), env
