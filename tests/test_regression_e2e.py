"""End to end: `diag run` against baselines, perturbed cells, determinism, killed runs, check_case."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import diagnostics.regression.adapt  # noqa: F401
import diagnostics.regression.overlay  # noqa: F401

# pytester's in-process runs (test_plugin_check_case) restore sys.modules afterwards, and numpy/scipy
# C extensions cannot be imported twice in one process: import what the inner run needs first.
import diagnostics.run.plan  # noqa: F401
import diagnostics.run.runner  # noqa: F401
import diagnostics.run.spec  # noqa: F401
import diagnostics.training  # noqa: F401
from diagnostics.cli.main import main
from diagnostics.regression.baseline import load_curves

pytest_plugins = ["pytester"]

# Small enough to run in well under a second, big enough that every section of curves.json is there.
CASE = {"name": "small", "description": "tiny RNN against LSTM, for the regression tests", "seed": 3,
        "task": {"kind": "copy", "delay": 6, "symbols": 3, "alphabet": 4},
        "cells": [{"kind": "rnn", "hidden": 8, "recurrent_init": {"kind": "orthogonal", "gain": 1.0}},
                  {"kind": "lstm", "hidden": 8, "forget_bias": 1.0}],
        "train": {"steps": 10, "batch": 8, "optimizer": {"kind": "adam", "lr": 0.01}, "checkpoints": [0, 10]},
        "probe": {"lags": 12, "sequences": 4, "norms": ["spectral"], "lyapunov": 4, "lyapunov_steps": 50,
                  "tk_map": {"anchors": 0}}}


@pytest.fixture(scope="module", autouse=True)
def system_temp(tmp_path_factory):
    """A private system temp folder for this module's runs, in this process and in the ones it
    starts: whatever a run leaves there (a killed run's staging folder did, diag-small-*) fails
    the module, and other users of /tmp can neither hide nor cause a failure."""
    folder = tmp_path_factory.mktemp("system-temp")
    patch = pytest.MonkeyPatch()
    patch.setattr(tempfile, "tempdir", str(folder))
    patch.setenv("TMPDIR", str(folder))
    yield folder
    patch.undo()
    assert sorted(p.name for p in folder.iterdir()) == [], "left in the system temp folder"


def write_case(folder: Path, **changes) -> Path:
    case = yaml.safe_load(yaml.safe_dump(CASE))
    for cell_index, key, value in changes.get("cells", []):
        case["cells"][cell_index][key] = value
    for key, value in changes.items():
        if key != "cells":
            case[key] = value
    path = folder / "small.yaml"
    path.write_text(yaml.safe_dump(case, sort_keys=False))
    return path


def diag(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    return res.exit_code, res.output


@pytest.fixture
def with_baseline(tmp_path):
    case = write_case(tmp_path)
    code, out = diag("run", case, "--out", tmp_path / "out", "--no-report", "--update-baseline")
    assert code == 0, out
    assert (tmp_path / "baselines" / "small.json").exists() and "baseline written" in out
    return tmp_path


def test_missing_baseline_is_reported_not_created(tmp_path):
    case = write_case(tmp_path)
    code, out = diag("run", case, "--out", tmp_path / "out", "--no-report")
    assert code == 0 and "no baseline" in out and not (tmp_path / "baselines").exists()


def test_unperturbed_run_passes(with_baseline):
    case = write_case(with_baseline)
    code, out = diag("run", case, "--out", with_baseline / "again", "--no-report")
    assert code == 0, out
    assert "checks passed" in out


@pytest.mark.parametrize("change,moved", [
    ((1, "forget_bias", 1.5), "lstm ckpt=0 c_direct"),                              # forget bias + 0.5
    ((0, "recurrent_init", {"kind": "orthogonal", "gain": 1.05}), "rnn ckpt=0 a/"),  # recurrent gain + 5%
])
def test_perturbed_cell_fails_the_check(with_baseline, change, moved):
    from diagnostics.regression.comparison import compare

    case = write_case(with_baseline, cells=[change])
    code, out = diag("run", case, "--out", with_baseline / "moved", "--no-report")
    assert code == 1, out
    assert "REGRESSION" in out and moved in out
    assert list((with_baseline / "moved" / "small" / "regression").glob("*.png"))
    # only the perturbed cell is blamed: the other cell's numbers come from their own seed stream
    cmp = compare(load_curves(with_baseline / "moved" / "small"),
                  load_curves(with_baseline / "baselines" / "small.json"))
    assert {r.key[1] for r in cmp.failing} == {moved.split()[0]}
    # and `diag check` on the two run folders agrees, on its own
    code, out = diag("check", with_baseline / "moved" / "small", with_baseline / "baselines" / "small.json")
    assert code == 1 and moved in out


def test_float_noise_passes_with_default_tolerances(with_baseline, monkeypatch):
    """Cross-machine noise stand-in: every initial parameter moved by ~1e-12 relative (far more than
    a BLAS summation order changes), training included. The numbers move; the check passes by
    orders of magnitude, while the perturbations above (real changes) fail it."""
    from diagnostics.regression.comparison import compare
    from diagnostics.run.runner import compute
    from diagnostics.run.spec import resolve

    lc = resolve(with_baseline / "small.yaml")
    rng = np.random.default_rng(7)
    for cls in {type(c) for c in lc.cells}:
        def noisy(self, r, _orig=cls.init):
            return {k: v * (1 + 1e-12 * rng.standard_normal(v.shape)) for k, v in _orig(self, r).items()}
        monkeypatch.setattr(cls, "init", noisy)
    res = compute(lc, show=False)
    base = load_curves(with_baseline / "baselines" / "small.json")
    assert res.curves != base                                    # the noise reached the curves
    cmp = compare(res.curves, base)
    assert cmp.ok, cmp.table()
    points = [abs(r.difference) for r in cmp.rows if r.what == "point" and r.difference is not None]
    assert 0 < max(points) < 1e-6, max(points)


@pytest.mark.slow
def test_same_case_and_seed_give_byte_identical_curves(tmp_path):
    case = write_case(tmp_path)
    assert diag("run", case, "--out", tmp_path / "a", "--no-report")[0] == 0
    # a fresh process too: nothing may depend on hash seeds, import order or leftover state
    subprocess.run([sys.executable, "-m", "diagnostics.cli", "run", str(case), "--out", str(tmp_path / "b"),
                    "--no-report"], check=True, capture_output=True)
    a, b = (tmp_path / d / "small" / "curves.json" for d in ("a", "b"))
    assert a.read_bytes() == b.read_bytes()
    assert load_curves(a).series


@pytest.mark.slow
def test_other_blas_kernels_pass_the_check(tmp_path):
    """A real cross-machine difference: OpenBLAS (numpy's wheels, DYNAMIC_ARCH) made to use its
    oldest SSE kernels instead of this CPU's AVX ones sums in another order. The curves may differ
    in the last bits; the check passes by many orders of magnitude. (Without OpenBLAS the variable
    is ignored and the runs are simply identical.)"""
    from diagnostics.regression.comparison import compare

    case = write_case(tmp_path)
    assert diag("run", case, "--out", tmp_path / "here", "--no-report")[0] == 0
    env = {**os.environ, "OPENBLAS_CORETYPE": "Prescott", "OPENBLAS_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "diagnostics.cli", "run", str(case), "--out", str(tmp_path / "sse"),
                    "--no-report"], check=True, capture_output=True, env=env)
    here, sse = load_curves(tmp_path / "here" / "small"), load_curves(tmp_path / "sse" / "small")
    cmp = compare(sse, here)
    assert cmp.ok, cmp.table()
    assert max(abs(r.difference or 0.0) for r in cmp.rows) < 1e-9


KILLED_RUN = textwrap.dedent("""
    import os, sys, time
    stall_at, real_fsync, count = int(sys.argv[1]), os.fsync, [0]
    def counting_fsync(fd):                # stop inside the n-th atomic write (0: never), then get killed
        count[0] += 1
        if count[0] == stall_at:
            print("WRITING", file=sys.stderr, flush=True)
            time.sleep(60)
        real_fsync(fd)
    os.fsync = counting_fsync
    from diagnostics.cli import main
    main(sys.argv[2:])
""")


def _digest(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(".tmp")}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """A folder with a case, its baseline and a full previous report (HTML rendered once)."""
    folder = tmp_path_factory.mktemp("rendered")
    code, out = diag("run", write_case(folder), "--out", folder / "out", "--update-baseline")
    assert code == 0, out
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("stall_at", [pytest.param(0, id="computing"), pytest.param(1, id="inside-first-write"),
                                      pytest.param(2, id="between-files"), pytest.param(6, id="among-figures")])
def test_killed_run_leaves_previous_report_and_baseline_intact(rendered, tmp_path, stall_at):
    """Killed while computing (stall_at 0), or inside the n-th atomic write (temp file written, not
    renamed). Writes 2 and later come after curves.json is complete: the runner builds the whole
    run folder aside and swaps it in (publish.py), so the previous report is never mixed."""
    shutil.copytree(rendered, tmp_path, dirs_exist_ok=True)
    case = tmp_path / "small.yaml"
    before = _digest(tmp_path)
    assert "out/small/index.html" in before and "baselines/small.json" in before
    # the killed run has more to do (so "computing" is still computing) and would rewrite everything
    write_case(tmp_path, train={**CASE["train"], "steps": 400, "checkpoints": [0, 400]})
    p = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(stall_at), "run", str(case), "--out",
                          str(tmp_path / "out"), "--update-baseline"], stderr=subprocess.PIPE, text=True)
    wanted = "== small" if stall_at == 0 else "WRITING"
    line = p.stderr.readline()
    while wanted not in line:
        assert line, "the run ended before it could be killed"
        line = p.stderr.readline()
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    assert p.returncode == -signal.SIGKILL
    write_case(tmp_path)                                   # only the case file itself was changed by us
    # a killed run cannot clean up: its unfinished run stays in a hidden staging folder beside
    # the run folder (publish.py), never in the system temp folder, and nothing else changed
    after = _digest(tmp_path)
    assert {name.split("/")[1].split("-")[0] for name in after.keys() - before.keys()} <= {".small.staging"}
    assert {k: v for k, v in after.items() if not k.startswith("out/.small.staging-")} == before
    load_curves(tmp_path / "out" / "small")                # and it still parses


USER_TEST = '''
import os
def test_case(gradient_curves):
    gradient_curves.check_case(os.environ["DIAG_CASE"], quick=True)
'''


@pytest.mark.slow
def test_plugin_check_case(pytester, monkeypatch, tmp_path):
    pytester.makepyfile(test_case_user=USER_TEST)
    monkeypatch.setenv("DIAG_CASE", str(write_case(tmp_path)))
    pytester.runpytest("--diag-update").assert_outcomes(passed=1)
    assert (pytester.path / "test_case_user" / "test_case-small.quick.json").exists()
    pytester.runpytest().assert_outcomes(passed=1)
    write_case(tmp_path, cells=[(1, "forget_bias", 1.5)])
    res = pytester.runpytest()
    res.assert_outcomes(failed=1)
    res.stdout.fnmatch_lines(["*lstm ckpt=0 c_direct*FAIL*"])
