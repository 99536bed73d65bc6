"""Numbers from a run that diverged must not read as numbers: a forward pass that overflowed
(inf or NaN in its states or caches) is counted and left out, never shown as "exactly zero".
Each test failed on the code before the fix."""
from __future__ import annotations

import json
import warnings

import numpy as np

from diagnostics.cells import make_cell
from diagnostics.lyapunov import lyapunov_run
from diagnostics.probing import probe
from diagnostics.sensitivity import state_sensitivity


def test_the_diagonal_fast_path_finds_the_same_divergence_in_the_caches():
    """An inf input saturates tanh: the states stay finite, only the caches (x, z) hold inf.
    The replayed fast path, the cached one and the dense chain leave out the same pairs."""
    xs = np.random.default_rng(1).normal(size=(120, 5, 1))
    xs[50, 3] = np.inf                                        # step 51 of sequence 3
    anchors = [40, 51, 120]
    cell = make_cell("indrnn", input_size=1, hidden=6, activation="tanh")
    params = cell.init(np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                        # nothing leaks to the terminal
        fast = probe(cell, params, xs, lags=40, anchors=anchors)                    # replayed logs
        dense = probe(cell, params, xs, lags=40, anchors=anchors, diagonal=False)   # the chain
        lstm = make_cell("lstm", input_size=1, hidden=4)
        lp = lstm.init(np.random.default_rng(0))
        replayed = probe(lstm, lp, xs, lags=40, anchors=anchors, paths=["c_direct"])
        cached = probe(lstm, lp, xs, lags=40, anchors=anchors, paths=["a", "c_direct"])
    expect = np.zeros((3, 5), dtype=bool)
    expect[1:, 3] = True                                      # anchors 51 and 120 read step 51
    for r in (fast, dense, replayed, cached):
        assert (r.diverged == expect).all()
        for v in r.log10.values():
            assert np.isnan(v[expect]).all() and not np.isnan(v[~expect]).any()
    np.testing.assert_allclose(fast.log10[("a", "spectral")][~expect], dense.log10[("a", "spectral")][~expect],
                               rtol=0, atol=1e-10)


def test_inputs_of_1e308_overflow_the_forward_pass_and_say_so():
    cell = make_cell("rnn", input_size=1, hidden=8, activation="relu")
    params = cell.init(np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = probe(cell, params, np.full((30, 3, 1), 1e308), lags=20)
    assert res.diverged.all() and np.isnan(res.log10[("a", "spectral")]).all()


def test_lyapunov_exponents_leave_out_a_diverged_trajectory():
    cell = make_cell("rnn", input_size=1, hidden=6, activation="tanh")
    params = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(80, 4, 1))
    xs[30, 2] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ly = lyapunov_run(cell, params, xs, m=3, warmup=10)
        others = lyapunov_run(cell, params, xs[:, [0, 1, 3]], m=3, warmup=10)   # the reference
    assert ly.diverged == 1 and others.diverged == 0
    np.testing.assert_allclose(ly.exponents, others.exponents, rtol=1e-12, atol=0)
    relu = make_cell("rnn", input_size=1, hidden=6, activation="relu", recurrent_init={"kind": "gaussian", "gain": 40})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gone = lyapunov_run(relu, relu.init(np.random.default_rng(0)), np.zeros((400, 2, 1)) + 0.1, m=2)
    assert gone.diverged == 2 and np.isnan(gone.exponents).all()


def test_the_sensitivity_of_a_diverged_pair_is_not_a_number():
    cell = make_cell("rnn", input_size=1, hidden=4, activation="tanh")
    params = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(20, 3, 1))
    xs[5, 1] = np.inf                                         # step 6 of sequence 1: tanh saturates
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = state_sensitivity(cell, params, xs, lags=4, anchors=[5, 20])
        ref = state_sensitivity(cell, params, xs[:, [0, 2]], lags=4, anchors=[5, 20])
    lag, tot = res.log10_lag["W_a"], res.log10_total["W_a"]
    assert np.isnan(lag[1, 1]).all() and np.isnan(tot[1, 1]) and np.isnan(res.log10_state[1, 1])
    assert np.isnan(res.total["W_a"][1, 1]).all()
    assert np.isfinite(lag[0]).all()                          # anchor 5 does not reach step 6
    np.testing.assert_array_equal(lag[:, [0, 2]], ref.log10_lag["W_a"])
    np.testing.assert_array_equal(tot[:, [0, 2]], ref.log10_total["W_a"])


def test_the_regression_check_counts_diverged_lyapunov_sequences():
    from diagnostics.regression.comparison import compare
    base = {"format": "diag-curves/1", "lags": [1], "series": [], "lyapunov": [
        {"cell": "rnn", "checkpoint": 0, "path": "a", "exponents": [-0.5, -0.7], "fixed_point": False}]}
    cur = json.loads(json.dumps(base))
    cur["lyapunov"][0]["forward_diverged"] = {"sequences": 1, "of": 4}   # the other 3 give the same mean
    bad = compare(cur, base).failing
    assert [(r.what, r.baseline, r.current) for r in bad] == [("nonfinite", 0, 1)]
    assert compare(cur, cur).ok
