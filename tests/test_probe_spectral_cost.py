"""Regression: clustered singular values must not make the spectral tracker crawl.

A chrono-initialised LSTM keeps forget gates near 1, so the c-block's top singular values
stay clustered (σ_7/σ_1 ~ 0.98) for hundreds of lags. Block power iteration then needed tens
of iterations at every lag plus an SVD fallback per sequence (n = 64, 200 lags: ~35 batched
iterations per lag; one loaded run took 189 s). The tracker now sends such sequences to a
batched Gram eigensolver and lets them skip the iteration for a while. Asserted on the
tracker's own counters, not wall time, and the curves are checked against dense products.
"""
import numpy as np

from diagnostics.cells import make_cell
from diagnostics.cells.unroll import unroll
from diagnostics.probing.core import probe
from diagnostics.probing.matnorms import SpectralTracker

LOG10_REL = 1e-10 / np.log(10)


def test_chrono_lstm_clustered_spectrum_stays_cheap_and_exact():
    n, B, K = 48, 4, 200
    cell = make_cell("lstm", input_size=8, hidden=n, chrono=200.0)
    params = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).standard_normal((K, B, 8))
    res = probe(cell, params, xs, paths=("a", "c"), norms=("spectral",))
    iterations, fallbacks = res.stats[K]["a+c"]
    # before the fix: 5,900-6,900 batched iterations here (~30 per lag); now ~11 per lag
    assert iterations <= 15 * K, res.stats
    # 2 B K sequence-lags (a and c blocks); measured 377 of 1,600 go to the eigensolver. A
    # tracker whose iteration stopped settling them (no warm start, no filter) sends nearly all
    assert fallbacks <= B * K, res.stats
    # the numbers stay true: dense float64 products of the step Jacobians, every 10th lag
    caches = unroll(cell, params, xs).caches
    P = np.broadcast_to(np.eye(2 * n), (B, 2 * n, 2 * n)).copy()
    for k in range(1, K + 1):
        P = P @ cell.jacobian(params, caches[K - k])
        if k % 10 == 0 or k <= 3:
            for path, sl in cell.blocks.items():
                ref = np.log10(np.linalg.norm(P[:, sl, sl], 2, axis=(1, 2)))
                np.testing.assert_allclose(res.log10[(path, "spectral")][0, :, k - 1], ref,
                                           rtol=0, atol=LOG10_REL, err_msg=f"{path} k={k}")


def test_tracker_on_a_cluster_wider_than_its_block_is_exact():
    # ten singular values within 1e-4 of each other at the top, six tracking vectors
    rng = np.random.default_rng(0)
    r, c, B = 40, 30, 3
    Q1, _ = np.linalg.qr(rng.normal(size=(r, r)))
    Q2, _ = np.linalg.qr(rng.normal(size=(c, c)))
    tr = SpectralTracker(B, r, c)
    for k in range(30):
        s = np.concatenate([1.0 - 1e-5 * rng.random(10), np.linspace(0.5, 0.1, c - 10)])
        m = np.stack([(Q1[:, :c] * (s * (1 + 0.1 * b))) @ Q2.T for b in range(B)])
        np.testing.assert_allclose(tr(m), np.linalg.norm(m, 2, axis=(1, 2)), rtol=1e-12)
    assert tr.fallbacks > 0 and tr.iterations <= 30 * 12


def test_diagonal_chain_whose_top_direction_changes():
    # an LSTM without recurrent weights: the c-block is Π diag(Γ_f), diagonal at every lag,
    # and with varying input the largest product moves from one unit to another. Its singular
    # vectors are coordinate axes, so a warm start converged on the old top axes is an exact
    # invariant subspace (zero residual); the tracker must still see the new top (it once
    # reported a norm 42% low on a chain like this)
    n, B, K = 12, 3, 150
    cell = make_cell("lstm", input_size=3, hidden=n, recurrent_init="zeros", forget_bias=2.0)
    params = cell.init(np.random.default_rng(0))
    xs = 2.0 * np.random.default_rng(1).standard_normal((K, B, 3))
    res = probe(cell, params, xs, paths=("c", "c_direct"), norms=("spectral",))
    np.testing.assert_allclose(res.log10[("c", "spectral")], res.log10[("c_direct", "spectral")],
                               rtol=0, atol=LOG10_REL)


def test_chebyshev_filter_settles_a_moderate_gap_without_the_eigensolver(monkeypatch):
    """σ_7/σ_1 = 0.75 and a top vector that turns anywhere between calls (no warm start):
    power steps need ~25 products with A per call and fall back to the eigensolver; the
    degree-2 filter gains ~4x more per two products and settles within the budget."""
    import diagnostics.probing.matnorms as mn

    def run():
        rng = np.random.default_rng(7)
        r, B, K = 60, 4, 6
        s = np.concatenate([[1.0, 0.9, 0.85, 0.8, 0.78, 0.75], np.linspace(0.75, 0.05, r - 6)])
        V, _ = np.linalg.qr(rng.normal(size=(r, r)))
        tr = SpectralTracker(B, r, r)
        for _ in range(K):
            U = np.stack([np.linalg.qr(rng.normal(size=(r, r)))[0] for _ in range(B)])
            np.testing.assert_allclose(tr((U * s) @ V.T), 1.0, rtol=1e-12)
        return tr.fallbacks

    filtered = run()
    monkeypatch.setattr(mn, "DEGREE", 1)   # one (shifted) power step between Rayleigh-Ritz steps
    plain = run()
    assert filtered <= 4 < 20 <= plain, (filtered, plain)
