"""The probe's diagonal fast path (diagnostics/probing/diagonal.py) against the dense chain and dense
products, its replay from checkpoints against the cached pass, and its log-sum-exp."""
import numpy as np
import pytest
from scipy.special import logsumexp

from diagnostics.cells import make_cell
from diagnostics.cells.unroll import unroll
from diagnostics.probing.core import probe, probe_workers
from diagnostics.probing.diagonal import (
    KahanSum,
    Replay,
    declared_paths,
    half_log_sum_exp2,
)
from diagnostics.probing.parallel import available_cores, can_fork

DIAGONAL = [
    ("indrnn", {"activation": "relu", "recurrent_min": -1.2, "recurrent_max": 1.2}),
    ("indrnn", {"activation": "tanh", "recurrent_min": 0.5, "recurrent_max": 1.5}),
    ("indrnn", {"activation": "linear", "recurrent_min": -1.05, "recurrent_max": 1.05}),
    ("lru", {}), ("lru", {"normalize": False, "r_min": 0.3, "r_max": 0.95, "max_phase": 1.0}),
    ("mingru", {}), ("mingru", {"update_bias": -3.0}),
    ("minlstm", {}), ("minlstm", {"forget_bias": 4.0}),
]


def _setup(kind, opts, n=6, d=2, B=4, T=70, seed=0):
    cell = make_cell(kind, input_size=d, hidden=n, **opts)
    params = cell.init(np.random.default_rng(seed))
    rng = np.random.default_rng(50 + seed)
    # inputs of moderate size (saturated gates and tanh: tests/test_saturated_gates.py)
    xs = 0.5 * rng.normal(size=(T, B, d))
    h0 = 0.5 * rng.normal(size=(B, cell.state_size))
    return cell, params, xs, h0


@pytest.mark.parametrize("kind,opts", DIAGONAL, ids=[f"{k}-{o}" for k, o in DIAGONAL])
@pytest.mark.parametrize("seed", [0, 1])
def test_fast_path_equals_dense_chain(kind, opts, seed):
    cell, params, xs, h0 = _setup(kind, opts, seed=seed)
    assert set(cell.paths) <= declared_paths(cell, params, xs[0], h0)   # chosen automatically
    anchors, K = [40, 70], 40
    fast = probe(cell, params, xs, lags=K, anchors=anchors, h0=h0, workers=1)
    dense = probe(cell, params, xs, lags=K, anchors=anchors, h0=h0, workers=1, diagonal=False)
    assert fast.stats == {} and set(dense.stats) == set(anchors)         # which route ran
    worst = 0.0
    for key, v in dense.log10.items():
        got = fast.log10[key]
        assert got.shape == (2, 4, K)
        assert np.array_equal(np.isneginf(got), np.isneginf(v)), key    # exact zeros agree
        ok = np.isfinite(v)
        worst = max(worst, float(np.abs(got[ok] - v[ok]).max()))
    assert worst <= 1e-12, worst


@pytest.mark.parametrize("kind,opts", DIAGONAL[:4], ids=[f"{k}-{o}" for k, o in DIAGONAL[:4]])
def test_fast_path_equals_dense_products(kind, opts):
    """Independent of the probe's chain: products of cell.jacobian and their SVDs."""
    cell, params, xs, h0 = _setup(kind, opts, T=30)
    res = probe(cell, params, xs, h0=h0, workers=1)
    caches = unroll(cell, params, xs, h0).caches
    P = np.broadcast_to(np.eye(cell.state_size), (4, cell.state_size, cell.state_size)).copy()
    for k in range(1, 31):
        P = P @ cell.jacobian(params, caches[30 - k])
        with np.errstate(divide="ignore"):
            ref = {"spectral": np.log10(np.linalg.norm(P, 2, axis=(1, 2))),
                   "frobenius": np.log10(np.linalg.norm(P, axis=(1, 2)))}
        for norm, r in ref.items():
            got = res.log10[(cell.paths[0], norm)][0, :, k - 1]
            fin = np.isfinite(r)
            assert np.array_equal(np.isneginf(got), np.isneginf(r))
            np.testing.assert_allclose(got[fin], r[fin], rtol=0, atol=1e-12)


def _svd_curve(cell, params, xs, K):
    """log10 σ_max of d a<T>/d a<T-k>, k = 1..K, from dense products of cell.jacobian."""
    caches = unroll(cell, params, xs).caches
    T, B, S = len(caches), xs.shape[1], cell.state_size
    P, out = np.broadcast_to(np.eye(S), (B, S, S)).copy(), []
    for k in range(1, K + 1):
        P = P @ cell.jacobian(params, caches[T - k])
        out.append(np.log10(np.linalg.norm(P, 2, axis=(1, 2))))
    return np.array(out).T                                   # (B, K)


def _wide_mingru():
    cell = make_cell("mingru", input_size=2, hidden=32)
    params = cell.init(np.random.default_rng(0))
    return cell, params, np.random.default_rng(1).normal(size=(120, 4, 2))


def test_fast_path_is_exact_where_the_leading_unit_changes():
    # n = 32 > the tracker's 6 vectors: the leading unit of the diagonal product changes
    # often (input-driven gates), and the fast path follows it exactly
    cell, params, xs = _wide_mingru()
    fast = probe(cell, params, xs, norms=["spectral"], workers=1)
    np.testing.assert_allclose(fast.log10[("a", "spectral")][0], _svd_curve(cell, params, xs, 120),
                               rtol=0, atol=1e-12)


def test_dense_chain_tracker_on_a_wide_diagonal_chain():
    """A chain whose product is diagonal and wider than the tracker's 6-vector block: its warm
    start is an exactly invariant subspace, and when a unit outside it takes the lead the
    residual test alone accepted the old top (up to 0.61 decades low on 16 of 2,400
    sequence-lags); the row-norm certificate sends those to the eigensolver."""
    cell, params, xs = _wide_mingru()
    dense = probe(cell, params, xs, norms=["spectral"], workers=1, diagonal=False)
    np.testing.assert_allclose(dense.log10[("a", "spectral")][0], _svd_curve(cell, params, xs, 120),
                               rtol=0, atol=1e-10)


def test_replay_is_bit_for_bit_the_cached_pass():
    # LSTM: c_direct alone replays from checkpoints; with the a-path the caches exist and
    # the same sums are read from them. Anchors off the segment grid (L = 8 for 57 steps).
    cell = make_cell("lstm", input_size=2, hidden=5)
    params = cell.init(np.random.default_rng(2))
    xs = np.random.default_rng(3).normal(size=(60, 4, 2))
    kw = dict(lags=33, anchors=[33, 41, 57], workers=1)
    alone = probe(cell, params, xs, paths=["c_direct"], **kw)
    mixed = probe(cell, params, xs, paths=["a", "c_direct"], **kw)
    for norm in ("spectral", "frobenius"):
        assert np.array_equal(alone.log10[("c_direct", norm)], mixed.log10[("c_direct", norm)])
    # and both equal an explicit sum of the cached logs over the lags
    caches = unroll(cell, params, xs).caches
    for a_i, t in enumerate(kw["anchors"]):
        run = np.zeros((4, 5))
        for k in range(1, 34):
            run = run + cell.direct_memory_log(params, caches[t - k])
            np.testing.assert_allclose(alone.log10[("c_direct", "spectral")][a_i, :, k - 1],
                                       run.max(axis=1) / np.log(10), rtol=0, atol=1e-14)


@pytest.mark.parametrize("T,t,K", [(1, 1, 1), (9, 9, 9), (10, 10, 3), (50, 17, 17), (50, 49, 30)])
def test_replay_yields_every_lag_once_in_order(T, t, K):
    cell = make_cell("mingru", input_size=1, hidden=3)
    params = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(T, 2, 1))
    caches = unroll(cell, params, xs).caches
    got = list(Replay(cell, params, xs, None, t, ("a",)).logs(t, K))
    assert len(got) == K
    for k, lg in enumerate(got, 1):
        assert np.array_equal(lg["a"], cell.log_diagonal(params, caches[t - k])["a"])


def test_zero_entries_stay_minus_inf_and_nan_stays_nan():
    # relu IndRNN with a huge negative input at step 10: every unit dead there
    cell = make_cell("indrnn", input_size=1, hidden=4, recurrent_min=0.5, recurrent_max=0.9)
    params = dict(cell.init(np.random.default_rng(0)), U_a=np.ones((4, 1)))
    xs = np.abs(np.random.default_rng(1).normal(size=(20, 3, 1))) + 1.0
    xs[9] = -1e6
    res = probe(cell, params, xs)
    for norm in ("spectral", "frobenius"):
        v = res.log10[("a", norm)][0]
        assert np.isfinite(v[:, :10]).all() and np.isneginf(v[:, 10:]).all()
    s = KahanSum(np.array([[0.0, -np.inf, 1.0]]))
    for _ in range(3):
        r = s.add(np.array([[np.nan, 0.5, -0.1]]))
    assert np.isnan(r[0, 0]) and np.isneginf(r[0, 1]) and abs(r[0, 2] - 0.7) < 1e-15


def test_half_log_sum_exp2_against_scipy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 33)) * 300             # exp(2a) alone would overflow
    a[1, 3] = a[1, 8] = a[1].max() + 2.0            # a tie at the maximum
    a[2], a[3, :20], a[4, 5], a[5] = -np.inf, -np.inf, np.nan, 7.0
    with np.errstate(all="ignore"):
        ref = 0.5 * logsumexp(2.0 * a, axis=1)
    got = half_log_sum_exp2(a, a.max(axis=1), np.empty_like(a))
    assert np.isneginf(got[2]) and np.isnan(got[4]) and np.isneginf(ref[2])
    ok = np.isfinite(ref)
    np.testing.assert_allclose(got[ok], ref[ok], rtol=1e-15, atol=0)
    assert got[5] == pytest.approx(7.0 + 0.5 * np.log(33), rel=1e-15)


def test_diagonal_only_probe_splits_over_workers_and_agrees():
    big = make_cell("indrnn", input_size=1, hidden=1024)
    assert probe_workers(big, 8, 300, 1, diagonal_only=True) == 1                   # 2.5e6: small
    assert probe_workers(big, 16, 10_000, 1, diagonal_only=True) == (min(available_cores(), 8) if can_fork() else 1)
    cell = make_cell("indrnn", input_size=1, hidden=64, activation="tanh")
    params = cell.init(np.random.default_rng(0))
    xs = 0.5 * np.random.default_rng(1).normal(size=(300, 8, 1))
    one = probe(cell, params, xs, workers=1)
    two = probe(cell, params, xs, workers=2)
    for key in one.log10:
        assert np.array_equal(one.log10[key], two.log10[key])   # sequences never interact


def test_diagonal_flag_is_checked():
    cell = make_cell("mingru", input_size=1, hidden=2)
    with pytest.raises(ValueError, match="^diagonal: must be true or false"):
        probe(cell, cell.init(np.random.default_rng(0)), np.zeros((3, 2, 1)), diagonal="no")


def test_fast_path_repeats_bit_for_bit():
    cell, params, xs, h0 = _setup("lru", {}, T=200)
    runs = [probe(cell, params, xs, h0=h0, anchors=[150, 200], lags=150) for _ in range(2)]
    for key in runs[0].log10:
        assert np.array_equal(runs[0].log10[key], runs[1].log10[key])
