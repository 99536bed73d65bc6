"""The probe's sketch (diagnostics/probing/estimator.py): estimated Frobenius norms against the
exact chain (calibration of the interval, the fitted decay), closed forms, the spectral lower
bound, determinism across worker counts, and the cells' jvp against the complex step."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import chdtri

from diagnostics.cells import make_cell
from diagnostics.cells.rnn import RNN
from diagnostics.cells.unroll import unroll
from diagnostics.documents import Curves
from diagnostics.probing import estimator as est
from diagnostics.probing.core import probe, probe_request, sketch_start
from diagnostics.probing.metrics import fit_decay
from diagnostics.regression.comparison import compare
from diagnostics.report import figures_decay as fd
from diagnostics.report.data import RunData
from diagnostics.report.figures import select_decay, select_norms
from diagnostics.report.narrative import opening
from diagnostics.run.runner import compute, run_to_folder
from diagnostics.run.spec import resolve
from diagnostics.tolerances import Tolerances

ROUNDING = 1e-10   # decades: the lower bound may exceed the exact value by rounding alone


def _setup(kind, n, T, B, seed=0, **opts):
    cell = make_cell(kind, input_size=4, hidden=n, **opts)
    params = cell.init(np.random.default_rng(seed))
    xs = np.random.default_rng(100 + seed).normal(size=(T, B, 4))
    return cell, params, xs


def _sketched(res):
    return sorted({p for p, _ in res.estimated})


# n = 64, T = K + 20, K = 60, 6 sequences, 8 seeds, r = 32. The calibration (n = 256,
# T = 500, r = 16..128) is benchmarks/bench_estimator.py's.
@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_exact_frobenius_inside_the_interval_at_90_percent_of_seed_lag_pairs(kind):
    cell, params, xs = _setup(kind, 64, 80, 6)
    exact = probe(cell, params, xs, lags=60, workers=1)
    inside = total = 0
    for seed in range(8):
        res = probe(cell, params, xs, lags=60, workers=1, estimator="sketch", rows=32, seed=seed)
        assert _sketched(res) == [p for p in cell.paths if p != "c_direct"]
        for p in _sketched(res):
            e, iv = exact.log10[(p, "frobenius")], res.interval[(p, "frobenius")]
            f = res.log10[(p, "frobenius")]
            assert np.all(iv[..., 0] <= f) and np.all(f <= iv[..., 1])
            inside += int(((iv[..., 0] <= e) & (e <= iv[..., 1])).sum())
            total += e.size
    assert inside / total >= 0.90, f"{kind}: exact value inside the {est.LEVEL:.0%} interval at {inside / total:.3f}"


def test_exact_frobenius_inside_the_interval_at_90_percent_of_each_sequences_lags_once_rank_one():
    """Over 319 lags the product of an RNN becomes nearly rank one: the forward pass's
    directions read all of it, the residual is rounding alone and, but for the interval's
    rounding floor (estimator.FLOOR), lo = hi = the estimate, with the exact value 1e-13..3e-11
    decades outside (coverage 0.59-0.97 per sequence without the floor)."""
    cell, params, xs = _setup("rnn", 64, 320, 4)
    exact = probe(cell, params, xs, lags=319, workers=1, paths=("a",), norms="frobenius")
    e = exact.log10[("a", "frobenius")][0]
    for seed in range(3):
        res = probe(cell, params, xs, lags=319, workers=1, paths=("a",), norms="frobenius",
                    estimator="sketch", rows=32, seed=seed)
        iv = res.interval[("a", "frobenius")][0]
        assert np.all(iv[..., 1] - iv[..., 0] >= 2 * est.FLOOR - 1e-12)   # log10 of ~1e-54: rounding 1e-14
        coverage = ((iv[..., 0] <= e) & (e <= iv[..., 1])).mean(axis=1)
        assert coverage.min() >= 0.9, (seed, coverage)


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_fitted_decay_factor_of_the_estimate_within_2_percent_of_the_exact(kind):
    cell, params, xs = _setup(kind, 64, 100, 2)
    exact = probe(cell, params, xs, lags=80, workers=1, norms="frobenius")
    res = probe(cell, params, xs, lags=80, workers=1, norms="frobenius", estimator="sketch", rows=32)
    for p in _sketched(res):
        for b in range(xs.shape[1]):
            f_exact = fit_decay(exact.lags, exact.log10[(p, "frobenius")][0, b])["factor"]
            f_est = fit_decay(res.lags, res.log10[(p, "frobenius")][0, b])["factor"]
            assert abs(f_est / f_exact - 1) < 0.02, (p, b, f_exact, f_est)


def _scaled_orthogonal_rnn(n, rho, seed=0):
    cell = RNN(input_size=1, hidden=n, activation="linear")
    params = cell.init(np.random.default_rng(seed))
    q, _ = np.linalg.qr(np.random.default_rng(seed + 1).normal(size=(n, n)))
    return cell, {**params, "W_a": rho * q}


@pytest.mark.parametrize("rho", [1.0, 0.9, 1.05])
def test_scaled_orthogonal_closed_forms_within_the_stated_error(rho):
    """W = rho Q: spectral k log10 rho exactly (the sketch's rows are orthonormal, so the lower
    bound is attained), Frobenius k log10 rho + log10 sqrt(n) inside the interval."""
    n, K = 96, 300
    cell, params = _scaled_orthogonal_rnn(n, rho)
    xs = np.zeros((K, 4, 1))
    res = probe(cell, params, xs, lags=K, workers=1, estimator="sketch", rows=32)
    k = np.arange(1, K + 1)
    np.testing.assert_allclose(res.log10[("a", "spectral")][0], np.broadcast_to(k * np.log10(rho), (4, K)), atol=1e-9)
    frob = k * np.log10(rho) + 0.5 * np.log10(n)
    iv = res.interval[("a", "frobenius")][0]
    inside = (iv[..., 0] <= frob) & (frob <= iv[..., 1])
    assert inside.mean() >= 0.9
    # the error's closed form: M = rho^k Q^k, so the REFINE forward directions read p rho^2k
    # exactly and row i's residual is rho^2k ||(I - P) ω_i||^2 ~ rho^2k χ²_(n-p): the estimate is
    # rho^2k (p + χ²_(r(n-p)) / r), one draw per sequence, the same at every lag (one Ω serves
    # them all), within that chi-square's 99.9 % two-sided quantiles
    err = res.log10[("a", "frobenius")][0] - frob
    assert np.all(np.ptp(err, axis=1) < 1e-9), np.ptp(err, axis=1)
    p, r = est.REFINE, 32
    lo, hi = (0.5 * np.log10((p + chdtri(r * (n - p), tail) / r) / n) for tail in (0.9995, 0.0005))
    assert np.all((lo <= err) & (err <= hi)), (lo, hi, err[:, 0])


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(["rnn", "gru", "lstm"]), n=st.integers(8 + est.REFINE + 1, 40), rows=st.integers(2, 8),
       seed=st.integers(0, 2 ** 16), gain=st.floats(0.3, 2.5))
def test_spectral_lower_bound_is_never_above_the_exact_value(kind, n, rows, seed, gain):
    cell, params, xs = _setup(kind, n, 30, 2, seed, recurrent_init={"kind": "gaussian", "gain": gain})
    exact = probe(cell, params, xs, lags=25, workers=1, norms="spectral")
    res = probe(cell, params, xs, lags=25, workers=1, norms="spectral", estimator="sketch", rows=rows, seed=seed)
    assert _sketched(res)      # n > rows + REFINE: every dense path is estimated, none passes by being exact
    for p in _sketched(res):
        assert res.estimated[(p, "spectral")]["value"] == "lower_bound"
        e, lb = exact.log10[(p, "spectral")], res.log10[(p, "spectral")]
        assert np.all(lb <= e + ROUNDING), float(np.max(lb - e))


def test_rows_come_from_the_seed_and_sequence_alone_whatever_the_worker_count():
    cell, params, xs = _setup("lstm", 48, 40, 5)
    whole = probe_request(cell, params, xs, lags=30, estimator="sketch", rows=8, seed=3)
    caches = unroll(cell, params, xs).caches
    full = sketch_start(whole, caches, 40)
    part = whole.part(slice(2, 5))
    part_caches = unroll(cell, params, xs[:, 2:5]).caches
    for p, (z, L) in sketch_start(part, part_caches, 40).items():
        assert np.array_equal(z, full[p][0][2:5]) and np.array_equal(L, full[p][1][2:5])
    one = probe(cell, params, xs, lags=30, workers=1, estimator="sketch", rows=8, seed=3)
    two = probe(cell, params, xs, lags=30, workers=2, estimator="sketch", rows=8, seed=3)
    for key in one.log10:
        np.testing.assert_allclose(two.log10[key], one.log10[key], rtol=0, atol=1e-12)
    for key in one.interval:
        np.testing.assert_allclose(two.interval[key], one.interval[key], rtol=0, atol=1e-12)
    other = probe(cell, params, xs, lags=30, workers=1, estimator="sketch", rows=8, seed=4)
    assert not np.array_equal(other.log10[("a", "frobenius")], one.log10[("a", "frobenius")])


def test_exact_default_and_paths_no_wider_than_the_sketch_stay_exact():
    cell, params, xs = _setup("lstm", 30, 20, 2)
    paths = ("a", "c", "c_direct")   # blocks 30 wide: 30 <= 32 + REFINE rows
    exact = probe(cell, params, xs, lags=10, workers=1, paths=paths)
    res = probe(cell, params, xs, lags=10, workers=1, paths=paths, estimator="sketch", rows=32)
    assert res.estimated == {} and exact.estimated == {}
    for key in exact.log10:
        np.testing.assert_array_equal(res.log10[key], exact.log10[key])


def test_auto_sketches_only_from_the_stated_width():
    assert not est.estimator("auto").sketches(est.AUTO_WIDTH - 1)
    assert est.estimator("auto").sketches(est.AUTO_WIDTH)
    assert not est.estimator("exact").sketches(10 ** 6)


@pytest.mark.parametrize("n, how", [(256, {"estimator": "auto"}), (30, {"estimator": "sketch", "rows": 32})])
def test_a_block_inside_the_exact_rows_is_read_exactly_not_sketched(n, how):
    """An LSTM whose a and c stay exact (auto below AUTO_WIDTH; no wider than q) carries every
    row of its state: the state path is read from them, not estimated from q more rows."""
    cell, params, xs = _setup("lstm", n, 4, 1)
    req = probe_request(cell, params, xs, lags=2, paths=("a", "c", "state"), **how)
    assert req.sketched == () and req.chain_rows == 2 * n
    if n <= 64:
        exact = probe(cell, params, xs, lags=2, workers=1, paths=("a", "c", "state"))
        res = probe(cell, params, xs, lags=2, workers=1, paths=("a", "c", "state"), **how)
        assert res.estimated == {}
        for key in exact.log10:
            np.testing.assert_array_equal(res.log10[key], exact.log10[key])


@pytest.mark.parametrize("kwargs, needle", [
    ({"estimator": "guess"}, "estimator: must be one of exact, sketch, auto, got 'guess'"),
    ({"estimator": "sketch", "rows": 1}, "rows: must be an integer >= 2"),
    ({"estimator": "sketch", "rows": 4.5}, "rows: must be an integer >= 2"),
    ({"estimator": "sketch", "seed": -1}, "seed: must be a non-negative integer, got -1"),
])
def test_bad_estimator_arguments_name_the_argument(kwargs, needle):
    cell, params, xs = _setup("rnn", 8, 5, 1)
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        probe(cell, params, xs, **kwargs)


JVP_CELLS = [("rnn", {"activation": "tanh"}), ("rnn", {"activation": "linear"}),
             ("gru", {}), ("gru", {"reset_gate": False}), ("gru", {"reset_after": True}),
             ("lstm", {}), ("lstm", {"forget_gate": False}), ("lstm", {"output_tanh": False})]


@pytest.mark.parametrize("kind, opts", JVP_CELLS)
def test_jvp_matches_the_complex_step_of_step(kind, opts):
    """J v = Im step(state + i h v) / h, column by column (h = 1e-20: no truncation error)."""
    cell = make_cell(kind, input_size=3, hidden=6, **opts)
    params = cell.init(np.random.default_rng(0))
    rng = np.random.default_rng(1)
    B, S, p, h = 2, cell.state_size, 3, 1e-20
    state, x, v = rng.normal(size=(B, S)), rng.normal(size=(B, 3)), rng.normal(size=(B, S, p))
    _, cache = cell.step(params, state, x)
    got = cell.jvp(params, cache, v)
    want = np.stack([cell.step(params, state + 1j * h * v[:, :, j], x)[0].imag / h for j in range(p)], axis=2)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def _case(**estimator):
    probe = {"lags": 20, "sequences": 3, "norms": ["spectral", "frobenius"], "lyapunov": 0, "tk_map": {"anchors": 0}}
    if estimator:
        probe["estimator"] = estimator
    return {"name": "sketched", "seed": 5, "task": {"kind": "adding", "length": 30},
            "cells": [{"kind": "rnn", "hidden": 48}, {"kind": "lstm", "hidden": 48}], "probe": probe}


def test_curves_json_records_the_estimator_rows_and_seed_and_reads_back_byte_for_byte():
    curves = compute(resolve(_case(kind="sketch", rows=8)), show=False).curves
    text = curves.to_json()
    assert Curves.from_json(text).to_json() == text
    by_key = {(s.cell, s.path, s.norm): s for s in curves.series}
    frob, spec = by_key[("rnn", "a", "frobenius")], by_key[("rnn", "a", "spectral")]
    assert (frob.estimated.kind, frob.estimated.rows, frob.estimated.seed) == ("sketch", 8, 5)   # the case seed
    assert frob.estimated.value == "hutchinson" and spec.estimated.value == "lower_bound"
    iv = frob.estimated.interval
    assert iv.level == est.LEVEL and len(iv.lo) == len(iv.hi) == len(iv.rel_stderr) == 20
    assert all(lo <= hi for lo, hi in zip(iv.lo, iv.hi))
    assert spec.estimated.interval is None
    assert by_key[("lstm", "c_direct", "frobenius")].estimated is None     # exact: the diagonal path
    exact = compute(resolve(_case()), show=False).curves
    assert all(s.estimated is None for s in exact.series) and '"estimated"' not in exact.to_json()


def test_the_report_opening_says_the_curves_are_estimated_and_from_how_many_rows():
    res = compute(resolve(_case(kind="sketch", rows=8)), show=False)
    text = " ".join(opening(res.curves, res.summary))
    assert "(spectral norm, median over sequences; estimated from 8 rows: a lower bound on the norm)" in text
    res = compute(resolve({**_case(kind="sketch", rows=8), "probe": {**_case(kind="sketch", rows=8)["probe"],
                                                                    "norms": ["frobenius"]}}), show=False)
    assert "estimated from 8 rows: the 95 % interval is drawn" in " ".join(opening(res.curves, res.summary))
    exact = compute(resolve(_case()), show=False)
    assert "estimated" not in " ".join(opening(exact.curves, exact.summary))


def _legend(fig) -> list[str]:
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()]


def test_the_norms_and_decay_figures_mark_estimated_curves_in_their_legends(tmp_path):
    out = run_to_folder(resolve(_case(kind="sketch", rows=8)), tmp_path / "o", report=False, show=False)
    d = RunData(out.result.curves, out.run)
    norms = _legend(fd.norm_comparison(**select_norms(d)))
    assert "rnn: spectral $\\|\\cdot\\|_2$   [estimated, 8 rows: a lower bound]" in norms
    assert "rnn: Frobenius $\\|\\cdot\\|_F$   [estimated, 8 rows]" in norms
    frob = _case(kind="sketch", rows=8)
    frob["probe"]["norms"] = ["frobenius"]     # the decay figure draws the primary norm
    out = run_to_folder(resolve(frob), tmp_path / "f", report=False, show=False)
    decay = _legend(fd.decay_curves(**select_decay(RunData(out.result.curves, out.run))))
    assert "95 % interval of the estimate (each end the median over pairs)" in decay
    assert not any("median pair)" in t for t in decay)


def test_the_regression_refuses_an_exact_baseline_against_an_estimated_run_unless_asked():
    exact = compute(resolve(_case()), show=False).curves
    sketch = compute(resolve(_case(kind="sketch", rows=8)), show=False).curves
    cmp = compare(sketch, exact)
    refused = [r for r in cmp.rows if r.what == "estimator"]
    assert not cmp.ok and refused and all(not r.ok for r in refused)
    assert {(r.baseline, r.current) for r in refused} == {("exact", "sketch rows=8 seed=5")}
    assert {r.key[1:] for r in refused} == {(c, 0, p, n) for c, p in [("rnn", "a"), ("lstm", "a"), ("lstm", "c"),
                                                                      ("lstm", "state")]
                                            for n in ("spectral", "frobenius")}
    asked = compare(sketch, exact, Tolerances(mixed_estimators=True))
    assert not [r for r in asked.rows if r.what == "estimator"]
    assert compare(sketch, sketch).ok      # the same rows and seed: the same bits


def test_an_estimated_curve_is_compared_within_a_stated_widening():
    one = compute(resolve(_case(kind="sketch", rows=8, seed=1)), show=False).curves
    two = compute(resolve(_case(kind="sketch", rows=8, seed=2)), show=False).curves
    tol = Tolerances(decades=0.0, mixed_estimators=True)
    cmp = compare(two, one, tol)
    widened = [r for r in cmp.rows if "widened by the estimate's interval" in r.series]
    frob = {r.key for r in widened}
    assert frob and all(k[-1] == "frobenius" for k in frob)
    assert all(r.tolerance > 0 for r in widened)                 # stated in the row, never silent
    within = total = 0
    for s1 in one.series:
        s2 = next(x for x in two.series if x.key == s1.key)
        if s1.estimated is None or s1.estimated.interval is None:
            continue
        for m1, m2, a1, b1, a2, b2 in zip(s1.log10.median, s2.log10.median, s1.estimated.interval.lo,
                                          s1.estimated.interval.hi, s2.estimated.interval.lo, s2.estimated.interval.hi):
            widen = (b1 - a1) / 2 + (b2 - a2) / 2
            within += abs(m2 - m1) <= widen
            total += 1
    assert within / total >= 0.9, within / total
    # the widening is the intervals' and no more: a decade's shift still fails
    moved = Curves.of(two.to_data(), "moved")
    s = next(s for s in moved.series if s.key == ("rnn", 0, "a", "frobenius"))
    s.log10.median = [v + 1.0 for v in s.log10.median]
    assert any(not r.ok and r.key[1:] == ("rnn", 0, "a", "frobenius") for r in compare(moved, one, tol).rows)
