"""Numbers from a run that diverged must not read as numbers: a forward pass that overflowed
(inf or NaN in its states or caches) is counted and said, never shown as "exactly zero"; a
training that diverged is said in the terminal, not only on the page. Each test failed on the
code before the fix."""
from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from diagnostics.cells import make_cell
from diagnostics.cli.main import main
from diagnostics.documents import SummaryRow
from diagnostics.probing.core import probe
from diagnostics.probing.lyapunov import lyapunov_run
from diagnostics.report.data import RunData
from diagnostics.report.figures import select_decay
from diagnostics.report.narrative import opening
from diagnostics.sensitivity import state_sensitivity

K, SEQ = 60, 8
# the case: recurrent gain 40 over 400 steps overflows to inf, then NaN (inf - inf); a relu's
# mask of NaN is 0, so every Jacobian after it is a finite zero matrix. Beside it, a relu RNN whose
# weights are all zero: z = 0, relu'(0) = 0, finite states and an honest exact zero from lag 1
OVERFLOW = {"name": "overflow", "seed": 0, "task": {"kind": "adding", "length": 400},
            "cells": [{"kind": "rnn", "label": "relu RNN", "hidden": 16, "activation": "relu",
                       "recurrent_init": {"kind": "gaussian", "gain": 40}},
                      {"kind": "rnn", "label": "dead relu", "hidden": 8, "activation": "relu",
                       "recurrent_init": "zeros", "input_init": "zeros"}],
            "probe": {"lags": K, "sequences": SEQ, "lyapunov": 2, "lyapunov_steps": 400, "tk_map": {"anchors": 0}}}
# the other case: SGD at lr 1e30 leaves the finite numbers at step 5
SGD = {"name": "sgd", "seed": 0, "task": {"kind": "adding", "length": 30},
       "cells": [{"kind": "rnn", "label": "tanh RNN", "hidden": 16}, {"kind": "lstm", "label": "LSTM", "hidden": 16}],
       "train": {"steps": 20, "batch": 16, "optimizer": {"kind": "sgd", "lr": 1.0e30}, "checkpoints": [0, 10, 20]},
       "probe": {"lags": 20, "sequences": 4, "lyapunov": 2, "lyapunov_steps": 60, "tk_map": {"anchors": 0}}}


def write(tmp_path, case):
    p = tmp_path / f"{case['name']}.yaml"
    p.write_text(yaml.safe_dump(case, sort_keys=False))
    return p


def series(curves, cell, norm="spectral"):
    return next(s for s in curves["series"] if (s["cell"], s["path"], s["norm"]) == (cell, "a", norm))


@pytest.fixture(scope="module")
def overflow_run(tmp_path_factory):
    """`diag run` of the overflow case in a subprocess: what a terminal shows; the run folder."""
    tmp = tmp_path_factory.mktemp("overflow")
    p = subprocess.run([sys.executable, "-m", "diagnostics.cli", "run", str(write(tmp, OVERFLOW)),
                        "--out", str(tmp / "o"), "--no-report"], capture_output=True, text=True)
    return p, json.loads((tmp / "o" / "overflow" / "curves.json").read_text()), tmp / "o" / "overflow"


def test_an_overflowing_forward_pass_is_said_not_shown_as_exactly_zero(overflow_run):
    p, _, _ = overflow_run
    assert p.returncode == 0, p.stderr
    assert f"The forward pass diverged for the relu RNN (a state or cached value overflowed to inf or NaN) " \
           f"in {SEQ} of {SEQ} (sequence, anchor) pairs: no gradient curve is read for it." in p.stdout
    assert "for the relu RNN" not in p.stdout.split("Over 60 lags")[1].split(".")[0]   # no decay statement
    assert "exactly zero from lag 1 for the relu RNN" not in p.stdout
    # a cell that truly dies (finite states) still says so
    assert "is exactly zero from lag 1 for the dead relu" in p.stdout
    row = next(line for line in p.stdout.splitlines() if line.startswith("relu RNN"))
    assert row.split()[3] == "diverged" and row.split()[6] == "diverged"     # factor and top exponent
    assert "RuntimeWarning" not in p.stderr and "encountered" not in p.stderr


def test_diverged_pairs_are_counted_at_every_lag_and_the_file_stays_in_contract(overflow_run):
    _, c, _ = overflow_run
    for norm in ("spectral", "frobenius"):
        s = series(c, "relu RNN", norm)
        assert s["nonfinite"] == [SEQ] * K and s["forward_diverged"] == {"pairs": SEQ, "of": SEQ}
        assert all(v is None for q in s["log10"].values() for v in q)
        assert s["fit"]["factor"] is None and s["fit"]["horizon"] is None
        dead = series(c, "dead relu", norm)
        assert dead["nonfinite"] == [0] * K and "forward_diverged" not in dead
        assert all(v is None for v in dead["log10"]["median"])                 # null here is an exact zero
    ly = {x["cell"]: x for x in c["lyapunov"]}
    assert ly["relu RNN"]["forward_diverged"] == {"sequences": SEQ, "of": SEQ}
    assert ly["relu RNN"]["exponents"] == [None, None]
    assert "forward_diverged" not in ly["dead relu"]                               # -inf, an exactly singular step


def test_the_page_says_it_too(overflow_run):
    _, _, folder = overflow_run
    assert CliRunner().invoke(main, ["report", str(folder)]).exit_code == 0
    html = (folder / "index.html").read_text(encoding="utf-8")
    assert "The forward pass diverged for the relu RNN" in html and "exactly zero from lag 1 for the relu RNN" not in html
    row = html[html.index('<td class="l">relu RNN</td>'):].split("</tr>")[0]
    assert row.count("<td>diverged</td>") == 2 and "&gt; 60" not in row        # factor, exponent; no horizon
    median = select_decay(RunData.load(folder))["curves"]["relu RNN"]["median"]
    assert np.isnan(median).all()          # no value at any lag, not -inf (the figure's "exactly zero")


def test_a_diverged_training_is_said_in_the_terminal(tmp_path):
    res = CliRunner().invoke(main, ["run", str(write(tmp_path, SGD)), "--out", str(tmp_path / "o"), "--no-report"])
    # exit 0: a diverged training is a finding of the run, not a failed run (the baseline gate
    # compares diverged_at and fails on a change)
    assert res.exit_code == 0, res.output
    rows = {c: line[len(c):].split() for line in res.output.splitlines() for c in ("tanh RNN", "LSTM")
            if line.startswith(c)}
    assert len(rows) == 2 and all(r[0] == "0" and " ".join(r[-5:]) == "training diverged at step 5"
                                  for r in rows.values())
    assert ("Training diverged at step 5 for the tanh RNN and LSTM (a loss or gradient was not a finite number), "
            "so they were probed only at checkpoint 0 (checkpoints 10 and 20 were not reached).") in res.output
    # their losses at checkpoint 0 are training-batch losses, not a held-out evaluation
    assert "held-out" not in res.output


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


def test_a_partly_diverged_cell_keeps_its_curve_and_says_how_many_pairs_are_out():
    y = [-0.5 * k for k in range(10)]
    doc = {"format": "diag-curves/1", "lags": list(range(1, 11)), "series": [
        {"cell": "GRU", "checkpoint": 0, "path": "a", "norm": "spectral", "log10": {"median": y},
         "nonfinite": [3] * 10, "forward_diverged": {"pairs": 3, "of": 8}}]}
    rows = [SummaryRow(cell="GRU", kind="gru", checkpoint=0, factor=0.79, tau=None, horizon=None, lyapunov_top=None,
                       final_loss=None, memoryless_loss=None, solved=None)]
    text = " ".join(opening(doc, rows))
    assert "The forward pass diverged for the GRU" in text and "in 3 of 8 (sequence, anchor) pairs: its medians " \
        "are over the other 5." in text
    assert "falls 4.5 decades for the GRU" in text


def test_the_regression_check_counts_diverged_lyapunov_sequences():
    from diagnostics.regression.comparison import compare
    base = {"format": "diag-curves/1", "lags": [1], "series": [], "lyapunov": [
        {"cell": "rnn", "checkpoint": 0, "path": "a", "exponents": [-0.5, -0.7], "fixed_point": False}]}
    cur = json.loads(json.dumps(base))
    cur["lyapunov"][0]["forward_diverged"] = {"sequences": 1, "of": 4}   # the other 3 give the same mean
    bad = compare(cur, base).failing
    assert [(r.what, r.baseline, r.current) for r in bad] == [("nonfinite", 0, 1)]
    assert compare(cur, cur).ok


def test_a_diverged_sequence_is_counted_per_lag_and_compared():
    from diagnostics.regression.adapt import curves_from_result
    from diagnostics.regression.comparison import compare
    cell = make_cell("rnn", input_size=2, hidden=4)
    params = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(12, 5, 2))
    good = curves_from_result(probe(cell, params, xs, lags=10))
    xs[6, 0, 0] = np.nan                    # sequence 0's state is NaN from step 7, so its chain is
    res = probe(cell, params, xs, lags=10)  # NaN at every lag of the anchor (step 12)
    bad = curves_from_result(res)
    s = next(x for x in bad["series"] if x["norm"] == "spectral")
    assert s["nonfinite"] == [1] * 10
    ref = np.median(res.log10[("a", "spectral")][0, 1:], axis=0)   # the four sequences that are numbers
    np.testing.assert_allclose(s["log10"]["median"], ref, rtol=0, atol=1e-15)
    assert all(v is not None for v in s["log10"]["median"])
    assert "nonfinite" in {r.what for r in compare(bad, good).failing}
