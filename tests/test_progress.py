"""Progress of the long phases of a run (the probe stream, the probe's forward pass and lags,
the Lyapunov spectrum, the (t, k) map, the sensitivity, training): a probe with
`probe.anchors: [1000000]` ran 90 s with no output. The loops report progress(done, total) in
the caller's thread, from forked workers too, without changing a number; `diag run` draws a
bar per phase on a terminal, and none elsewhere."""
from __future__ import annotations

import io

import numpy as np
import pytest

from diagnostics.cells import make_cell
from diagnostics.probing import parallel
from diagnostics.probing.core import probe
from diagnostics.probing.lyapunov import lyapunov_run
from diagnostics.sensitivity import state_sensitivity


@pytest.fixture
def every_report(monkeypatch):
    """Report (and poll the workers) every 5 ms, not every 0.2 s: short runs show steps. (Not 0:
    the caller would then poll without pause, and threaded workers wait for its GIL: 68 s.)"""
    monkeypatch.setattr(parallel, "REPORT_EVERY", 0.005)


def _recorder():
    calls = []
    return calls, lambda done, total: calls.append((done, total))


def _check_calls(calls, total):
    assert calls and calls[-1] == (total, total), calls[-3:]
    done = [d for d, _ in calls]
    assert done == sorted(done) and {t for _, t in calls} == {total}
    assert any(0 < d < total for d in done), "no report before the work ended"


@pytest.mark.parametrize("how", ["in the caller", "threads", "forked workers"])
def test_the_probe_reports_its_forward_steps_and_lags_as_it_goes(monkeypatch, every_report, how):
    """Units: the forward pass's steps, then K lags per anchor; with several workers the slowest
    chunk's count, read by the caller while the workers run (forked ones write shared memory)."""
    if how == "forked workers" and not parallel.fork_allowed():
        pytest.skip("forked workers are not used in this process")
    if how == "threads":
        monkeypatch.setattr(parallel, "can_fork", lambda: False)
    cell = make_cell("lstm", input_size=2, hidden=24)
    params = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(400, 8, 2))
    workers = 1 if how == "in the caller" else 2
    kw = dict(lags=150, anchors=[300, 400], paths=["a", "c"], workers=workers)
    calls, report = _recorder()
    res = probe(cell, params, xs, progress=report, **kw)
    _check_calls(calls, 400 + 2 * 150)
    plain = probe(cell, params, xs, **kw)
    assert all(np.array_equal(res.log10[k], plain.log10[k], equal_nan=True) for k in plain.log10)


def test_the_diagonal_fast_path_reports_the_replay_and_its_lags(every_report):
    cell = make_cell("indrnn", input_size=2, hidden=8)
    params = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(500, 4, 2))
    calls, report = _recorder()
    res = probe(cell, params, xs, lags=100, anchors=[400], workers=1, progress=report)
    _check_calls(calls, 400 + 100)                  # the replay runs up to the last anchor
    plain = probe(cell, params, xs, lags=100, anchors=[400], workers=1)
    assert all(np.array_equal(res.log10[k], plain.log10[k]) for k in plain.log10)


def test_the_lyapunov_spectrum_and_the_sensitivity_report_their_steps(every_report):
    cell = make_cell("rnn", input_size=2, hidden=6)
    params = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(300, 3, 2))
    calls, report = _recorder()
    run = lyapunov_run(cell, params, xs, m=3, warmup=60, progress=report)
    _check_calls(calls, 300)
    plain = lyapunov_run(cell, params, xs, m=3, warmup=60)
    assert np.array_equal(run.exponents, plain.exponents) and run.fixed_point == plain.fixed_point
    assert np.array_equal(run.resolved, plain.resolved)
    calls, report = _recorder()
    res = state_sensitivity(cell, params, xs, lags=20, anchors=[100, 250], progress=report)
    _check_calls(calls, 250 + 100 + 250)            # the forward pass, then t lags per anchor t
    plain = state_sensitivity(cell, params, xs, lags=20, anchors=[100, 250])
    assert all(np.array_equal(res.log10_lag[k], plain.log10_lag[k]) for k in plain.log10_lag)


class Terminal(io.StringIO):
    """stderr as a terminal: tqdm's bars (disable=None) are drawn into it."""

    def isatty(self):
        return True


def test_diag_run_shows_each_phase_while_it_runs_and_nothing_off_a_terminal(tmp_path, monkeypatch, every_report):
    """Every phase's bar is on stderr before that phase ends (read from inside the phase), and
    with stderr not a terminal nothing is drawn and the loops count nothing."""
    from diagnostics.run import runner
    from diagnostics.run.spec import resolve
    monkeypatch.setattr(runner, "PHASE_DELAY", 0.0)
    case = {"name": "bars", "seed": 0, "task": {"kind": "adding", "length": 20},
            "cells": [{"kind": "rnn", "hidden": 4}],
            "train": {"steps": 3, "batch": 4, "checkpoints": [3]},
            "probe": {"lags": 10, "sequences": 4, "anchors": [600], "lyapunov": 2, "lyapunov_steps": 300,
                      "sensitivity": True, "tk_map": {"anchors": [40, 80]}}}
    spec = resolve(case, base_dir=tmp_path)
    err = Terminal()
    monkeypatch.setattr("sys.stderr", err)
    seen = {}

    def watching(name, fn):
        def run(*args, **kw):
            report = kw.get("progress")
            if report is not None:
                def spy(done, total):
                    report(done, total)
                    if done < total:        # the phase is still running
                        seen.setdefault(name, err.getvalue())
                kw["progress"] = spy
            return fn(*args, **kw)
        return run

    for name in ("probe", "lyapunov_run", "state_sensitivity", "probe_stream"):
        if name != "probe_stream":
            monkeypatch.setattr(runner, name, watching(name, getattr(runner, name)))
    runner.compute(spec)
    assert set(seen) == {"probe", "lyapunov_run", "state_sensitivity"}, set(seen)
    assert "probe stream" in seen["probe"] and "train rnn" in seen["probe"]       # before the probe
    assert "rnn @3: forward pass and lags" in seen["probe"]
    assert "rnn @3: Lyapunov spectrum" in seen["lyapunov_run"]
    assert "rnn @3: (t, k) map" in seen["state_sensitivity"]                      # the map came before
    assert "rnn @3: sensitivity" in seen["state_sensitivity"]
    # off a terminal: no bar, and no progress callback given to any loop
    quiet = io.StringIO()
    monkeypatch.setattr("sys.stderr", quiet)
    seen.clear()
    runner.compute(spec)
    assert quiet.getvalue() == "" and seen == {}
