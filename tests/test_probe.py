"""The probe's curves against direct float64 products and closed forms (REFERENCES items 2, 4, 5);
its quantiles leave out what is not a number."""
import dataclasses

import numpy as np
import pytest
from scipy.special import expit

from diagnostics.cells import make_cell
from diagnostics.cells.lstm import LSTM
from diagnostics.cells.unroll import unroll
from diagnostics.probing.core import jacobian_products, probe, probe_request
from diagnostics.probing.metrics import pascanu_bound

LOG10_REL = 1e-10 / np.log(10)   # a relative error of 1e-10 in a norm, in log10 units

CELLS = [
    ("rnn", {"activation": "tanh"}),
    ("rnn", {"activation": "relu"}),
    ("rnn", {"activation": "linear", "recurrent_init": {"kind": "gaussian", "gain": 1.1}}),
    ("gru", {}),
    ("gru", {"reset_gate": False}),
    ("lstm", {}),
    ("lstm", {"forget_gate": False}),
    ("lstm", {"output_tanh": False, "recurrent_init": {"kind": "gaussian", "gain": 1.5}}),
    ("lstm", {"chrono": 20.0}),
    ("cornn", {}), ("cornn", {"dt": 0.5, "gamma": 0.0, "epsilon": 0.1, "recurrent_init": {"kind": "gaussian", "gain": 1.5}}),
    ("slstm", {}), ("slstm", {"forget": "exp", "forget_bias": -0.5}),
    # diagonal cells: the probe takes the log-space fast path for them (diagnostics/probing/diagonal.py)
    ("indrnn", {"activation": "tanh", "recurrent_max": 1.2}), ("lru", {}), ("mingru", {}), ("minlstm", {}),
]


def _direct_products(cell, params, xs, t, K, h0=None):
    """E d state<t>/d state<t-k>, k = 1..K, as dense float64 products of cell.jacobian."""
    caches = unroll(cell, params, xs, h0).caches
    S = cell.state_size
    P = np.broadcast_to(np.eye(S), (xs.shape[1], S, S)).copy()
    for k in range(1, K + 1):
        P = P @ cell.jacobian(params, caches[t - k])
        yield k, P


def _norms(m):
    return {"spectral": np.linalg.norm(m, 2, axis=(1, 2)), "frobenius": np.linalg.norm(m, axis=(1, 2))}


@pytest.mark.parametrize("kind,opts", CELLS)
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_direct_product(kind, opts, seed):
    n, d, B, T, K = 7, 3, 4, 34, 30
    cell = make_cell(kind, input_size=d, hidden=n, **opts)
    params = cell.init(np.random.default_rng(seed))
    rng = np.random.default_rng(100 + seed)
    xs = rng.normal(size=(T, B, d))
    h0 = 0.5 * rng.normal(size=(B, cell.state_size))
    if kind == "slstm":   # a reachable state: the normaliser is positive
        h0[:, cell.blocks["n"]] = np.abs(h0[:, cell.blocks["n"]]) + 0.2
    anchors = [30, 34]
    res = probe(cell, params, xs, lags=K, anchors=anchors, h0=h0)
    assert res.log10[(cell.paths[0], "spectral")].shape == (2, B, K)
    for a_i, t in enumerate(anchors):
        for k, P in _direct_products(cell, params, xs, t, K, h0):
            for path in cell.paths:
                if path == "c_direct":   # reference: product of the dense Jacobians' c-c blocks
                    continue
                sl = slice(None) if path == "state" else cell.blocks[path]
                for norm, ref in _norms(P[:, sl, sl]).items():
                    got = res.log10[(path, norm)][a_i, :, k - 1]
                    np.testing.assert_allclose(got, np.log10(ref), rtol=0, atol=LOG10_REL,
                                               err_msg=f"{kind} {opts} {path} {norm} t={t} k={k}")


@pytest.mark.parametrize("kind,opts", [("lstm", {}), ("lstm", {"forget_gate": False}), ("rnn", {}), ("gru", {})])
def test_the_chain_lag_by_lag_is_the_dense_product(kind, opts):
    """jacobian_products (the chain the probe's norms read; public for the benchmark): M
    10**scale is the product of cell.jacobian's rows, whether the cell's vjp renormalises on
    the fly (the LSTM) or the chain does (the RNN, the GRU)."""
    n, d, B, T = 6, 2, 3, 25
    cell = make_cell(kind, input_size=d, hidden=n, **opts)
    params = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(T, B, d))
    req = probe_request(cell, params, xs, paths=("a",))
    assert req.lags == T and req.anchors.tolist() == [T] and req.fast == ()
    caches = unroll(cell, params, xs).caches
    direct = _direct_products(cell, params, xs, T, T)
    for (k, P), (m, scale) in zip(direct, jacobian_products(req, caches, T), strict=True):
        want = P[:, req.rows, :]
        got = m * 10.0 ** scale[:, None, None]
        assert np.abs(got - want).max() <= 1e-12 * np.abs(want).max(), k
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.lags = 3


@dataclasses.dataclass(frozen=True)
class _FreshOut(LSTM):
    """An LSTM whose vjp declares `out` (and the on-the-fly renormalisation) but returns a
    fresh array: the chain must stop offering the buffer and keep renormalising through vjp."""

    def vjp(self, params, cache, m, out=None, scale=None, absmax=None):
        return super().vjp(params, cache, m, scale=scale, absmax=absmax)


def test_a_vjp_that_ignores_out_still_renormalises():
    """It read 2.3 decades off: after the first lag the chain called vjp without the scale."""
    cell, fresh = LSTM(input_size=2, hidden=5), _FreshOut(input_size=2, hidden=5)
    params = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(30, 3, 2))
    want = probe(cell, params, xs, paths=("a", "c"), workers=1).log10
    got = probe(fresh, params, xs, paths=("a", "c"), workers=1).log10
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=0, atol=1e-12)


@pytest.mark.parametrize("opts", [{}, {"forget_gate": False}, {"chrono": 50.0}])
def test_c_direct_matches_product_of_dense_cc_blocks(opts):
    n, B, T = 6, 3, 25
    cell = make_cell("lstm", input_size=2, hidden=n, **opts)
    params = cell.init(np.random.default_rng(3))
    xs = np.random.default_rng(4).normal(size=(T, B, 2))
    res = probe(cell, params, xs, paths=["c_direct"])
    caches = unroll(cell, params, xs).caches
    D = np.broadcast_to(np.eye(n), (B, n, n)).copy()
    for k in range(1, T + 1):
        # with a frozen a<t-1>, the c-c block of the step Jacobian is the direct path diag(Γ_f)
        D = D @ cell.jacobian(params, caches[T - k])[:, n:, n:]
        for norm, ref in _norms(D).items():
            np.testing.assert_allclose(res.log10[("c_direct", norm)][0, :, k - 1], np.log10(ref),
                                       rtol=0, atol=LOG10_REL)


def _linear_rnn(n, gain, seed=0):
    cell = make_cell("rnn", input_size=1, hidden=n, activation="linear",
                     recurrent_init={"kind": "orthogonal", "gain": gain})
    return cell, cell.init(np.random.default_rng(seed))


def test_orthogonal_linear_rnn_is_flat_at_1000_lags():
    n, K = 16, 1000
    cell, params = _linear_rnn(n, 1.0)
    res = probe(cell, params, np.random.default_rng(0).normal(size=(K, 3, 1)))
    assert np.abs(res.log10[("a", "spectral")]).max() < 1e-9
    assert np.abs(res.log10[("a", "frobenius")] - 0.5 * np.log10(n)).max() < 1e-9


@pytest.mark.parametrize("rho", [0.7, 1.3])
def test_scaled_orthogonal_gives_k_log10_rho(rho):
    cell, params = _linear_rnn(10, rho, seed=2)
    res = probe(cell, params, np.zeros((200, 2, 1)))
    k = res.lags
    np.testing.assert_allclose(res.log10[("a", "spectral")], np.broadcast_to(k * np.log10(rho), (1, 2, 200)),
                               rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.log10[("a", "frobenius")][0, 0], k * np.log10(rho) + 0.5, rtol=0, atol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("rho,expected", [(0.5, -3010.2999566398), (2.0, 3010.2999566398)])
def test_ten_thousand_lags_stay_finite(rho, expected):
    cell, params = _linear_rnn(4, rho)
    res = probe(cell, params, np.zeros((10_000, 2, 1)), norms=("spectral",))
    v = res.log10[("a", "spectral")]
    assert np.isfinite(v).all()
    np.testing.assert_allclose(v[0, :, -1], expected, rtol=0, atol=1e-8)
    np.testing.assert_allclose(v[0, 0], res.lags * np.log10(rho), rtol=0, atol=1e-8)


def test_exactly_zero_jacobian_is_minus_inf_and_stays():
    # relu RNN: a huge negative input at step 10 kills every unit, so d a<t>/d a<s> = 0 for s < 10
    cell = make_cell("rnn", input_size=1, hidden=5, activation="relu")
    params = dict(cell.init(np.random.default_rng(0)), U_a=np.ones((5, 1)))
    xs = np.abs(np.random.default_rng(1).normal(size=(20, 3, 1))) + 1.0
    xs[9] = -1e6   # step t = 10
    res = probe(cell, params, xs)
    for norm in ("spectral", "frobenius"):
        v = res.log10[("a", norm)][0]                 # anchor 20: lag k reaches step 20 - k
        assert np.isfinite(v[:, :10]).all()           # k <= 10: steps 11..20 only
        assert np.isneginf(v[:, 10:]).all()           # k >= 11 passes through the dead step 10
        s = res.summary("a", norm)
        for q in s.values():
            assert not np.isnan(q).any()
        assert np.isneginf(s["median"][10:]).all()


def test_lstm_zero_recurrent_weights_closed_form():
    # REFERENCES item 4: with W = 0, zero input weights and constant input, Γ_f = σ(b_f) at
    # every step, so c_direct = k log10 σ(b_f) exactly. With W = 0 nothing flows through a,
    # so the total c path reduces to the same product and the a path is exactly zero.
    n, b_f, K = 5, 0.7, 40
    cell = make_cell("lstm", input_size=2, hidden=n, recurrent_init="zeros", input_init="zeros",
                     forget_bias=b_f)
    params = cell.init(np.random.default_rng(0))
    res = probe(cell, params, np.full((K, 3, 2), 0.3))
    k = res.lags
    exact = k * np.log10(expit(b_f))
    for path in ("c_direct", "c"):
        np.testing.assert_allclose(res.log10[(path, "spectral")][0], np.broadcast_to(exact, (3, K)), rtol=0, atol=1e-12)
        np.testing.assert_allclose(res.log10[(path, "frobenius")][0],
                                   np.broadcast_to(exact + 0.5 * np.log10(n), (3, K)), rtol=0, atol=1e-12)
    assert np.isneginf(res.log10[("a", "spectral")]).all()


def test_lstm_zero_recurrent_weights_with_input_weights():
    # input weights on: Γ_f = σ(U_f x + b_f) per unit, still constant; c path = c_direct exactly
    n, K = 4, 30
    cell = make_cell("lstm", input_size=2, hidden=n, recurrent_init="zeros", forget_bias=1.0)
    params = cell.init(np.random.default_rng(1))
    x = np.array([0.4, -0.2])
    res = probe(cell, params, np.broadcast_to(x, (K, 2, 2)))
    gf = expit(params["U"][n:2 * n] @ x + params["b"][n:2 * n])
    np.testing.assert_allclose(res.log10[("c_direct", "spectral")][0, 0], res.lags * np.log10(gf.max()), atol=1e-12)
    for norm in ("spectral", "frobenius"):
        np.testing.assert_allclose(res.log10[("c", norm)], res.log10[("c_direct", norm)], rtol=0, atol=1e-12)


def test_lstm_1997_direct_path_is_identity():
    cell = make_cell("lstm", input_size=2, hidden=6, forget_gate=False)
    params = cell.init(np.random.default_rng(0))
    res = probe(cell, params, np.random.default_rng(1).normal(size=(50, 3, 2)), paths=["c_direct"])
    assert (res.log10[("c_direct", "spectral")] == 0).all()
    np.testing.assert_allclose(res.log10[("c_direct", "frobenius")], 0.5 * np.log10(6), rtol=0, atol=1e-15)


@pytest.mark.parametrize("activation", ["tanh", "relu", "linear"])
@pytest.mark.parametrize("gain", [0.5, 1.0, 2.0])
def test_rnn_never_exceeds_pascanu_bound(activation, gain):
    cell = make_cell("rnn", input_size=3, hidden=12, activation=activation,
                     recurrent_init={"kind": "gaussian", "gain": gain}, bias=0.1)
    for seed in range(3):
        params = cell.init(np.random.default_rng(seed))
        xs = np.random.default_rng(10 + seed).normal(size=(60, 5, 3))
        res = probe(cell, params, xs, norms=("spectral",))
        bound = pascanu_bound(cell, params, res.lags)
        assert (res.log10[("a", "spectral")] <= bound + 1e-12).all()


def test_deterministic_bit_for_bit():
    cell = make_cell("lstm", input_size=2, hidden=9)
    params = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(40, 4, 2))
    r1 = probe(cell, params, xs, anchors=[20, 40], lags=20)
    r2 = probe(cell, params, xs, anchors=[20, 40], lags=20)
    for key in r1.log10:
        assert r1.log10[key].tobytes() == r2.log10[key].tobytes()


def test_summary_quantiles_match_numpy_on_finite_values():
    cell = make_cell("gru", input_size=1, hidden=5)
    params = cell.init(np.random.default_rng(0))
    res = probe(cell, params, np.random.default_rng(1).normal(size=(15, 9, 1)))
    v = res.log10[("a", "frobenius")][0]
    s = res.summary("a", "frobenius")
    for name, q in (("median", 0.5), ("q25", 0.25), ("q75", 0.75)):
        np.testing.assert_allclose(s[name], np.quantile(v, q, axis=0), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(s["min"], v.min(axis=0))
    np.testing.assert_array_equal(s["max"], v.max(axis=0))


@pytest.mark.parametrize("kwargs,needle", [
    ({"lags": 0}, "lags"), ({"lags": 11}, "lags"), ({"lags": 2.5}, "lags"),
    ({"anchors": [0]}, "anchors"), ({"anchors": [11]}, "anchors"),
    ({"paths": ["c"]}, "paths"), ({"norms": ["nuclear"]}, "norms"),
    ({"h0": np.zeros((3, 3))}, "h0"),
])
def test_bad_arguments_name_the_key(kwargs, needle):
    cell = make_cell("rnn", input_size=1, hidden=4)
    params = cell.init(np.random.default_rng(0))
    with pytest.raises(ValueError, match=needle):
        probe(cell, params, np.zeros((10, 2, 1)), **kwargs)
    with pytest.raises(ValueError, match="xs"):
        probe(cell, params, np.zeros((10, 2, 3)))


def test_non_finite_cell_output_gives_nan_not_an_exception():
    cell = make_cell("rnn", input_size=1, hidden=4)
    params = cell.init(np.random.default_rng(0))
    W = np.array(params["W_a"])
    W[0, 0] = np.nan
    res = probe(cell, dict(params, W_a=W), np.zeros((6, 2, 1)))
    assert np.isnan(res.log10[("a", "spectral")]).all()
    assert np.isnan(res.summary("a", "frobenius")["median"]).all()


def test_spectral_tracker_handles_crossings_and_null_spaces():
    from diagnostics.probing.matnorms import SpectralTracker
    rng = np.random.default_rng(0)
    r, c, B = 9, 7, 3
    Q1, _ = np.linalg.qr(rng.normal(size=(r, r)))
    Q2, _ = np.linalg.qr(rng.normal(size=(c, c)))
    tr = SpectralTracker(B, r, c)
    for k in range(40):
        s = np.linspace(1.0, 0.2, c)
        s[0], s[1] = 1.0 - 0.01 * k, 0.8 + 0.01 * k          # the top pair crosses at k = 10
        m = np.stack([(Q1[:, :c] * s) @ Q2.T] * B)
        if k in (20, 21):   # rank one, in directions far from the warm start
            m = np.zeros((B, r, c))
            m[:, r - 1 - (k - 20), 0] = 3.0
        np.testing.assert_allclose(tr(m), np.linalg.norm(m, 2, axis=(1, 2)), rtol=1e-12)
    assert (tr(np.zeros((B, r, c))) == 0).all()


def test_spectral_tracker_on_slowly_rotating_blocks_takes_plain_steps_and_stays_exact():
    """Long-lag regime: the top singular vectors turn by ~1e-3 per call, so the warm start
    never passes the test at once and each call opens with a plain power step."""
    from diagnostics.probing.matnorms import SpectralTracker
    rng = np.random.default_rng(3)
    r, B, K = 40, 4, 60
    s = np.geomspace(1.0, 1e-3, r)
    Q0 = np.stack([np.linalg.qr(rng.normal(size=(r, r)))[0] for _ in range(B)])
    V, _ = np.linalg.qr(rng.normal(size=(r, r)))
    gen = rng.normal(size=(r, r))
    turn = 1e-3 * (gen - gen.T)                       # a small rotation per call
    step = np.linalg.qr(np.eye(r) + turn)[0]
    tr = SpectralTracker(B, r, r)
    U = Q0
    for k in range(K):
        m = (U * s) @ V.T
        got = tr(m)
        np.testing.assert_allclose(got, np.linalg.norm(m, 2, axis=(1, 2)), rtol=1e-12)
        U = step @ U
    assert tr.plain_steps >= K // 2 and tr.fallbacks == 0, (tr.plain_steps, tr.fallbacks)


def test_spectral_tracker_reads_equally_spaced_blocks_as_one_view():
    """The probe hands the LSTM's a- and c-blocks over as views into M (stored column-major);
    the tracker reads them as one strided (2, B, n, n) view and must give what it gives on
    a stacked copy."""
    from diagnostics.probing.matnorms import SpectralTracker, _joint_view, _Stacks
    rng = np.random.default_rng(4)
    B, n = 3, 6
    m = np.ascontiguousarray(rng.normal(size=(B, 2 * n, 2 * n)).transpose(0, 2, 1)).transpose(0, 2, 1)
    a, c = m[:, :n, :n], m[:, n:, n:]
    joint = _joint_view((a, c))
    assert joint is not None and joint.shape == (2, B, n, n)
    np.testing.assert_array_equal(joint[0], a)
    np.testing.assert_array_equal(joint[1], c)
    assert _joint_view((a, m[:, :n, n:n + n - 1])) is None            # shapes differ
    assert _joint_view((a, np.ascontiguousarray(c))) is None          # another buffer
    x = rng.normal(size=(2 * B, n, 2))
    st = _Stacks((a, c))
    np.testing.assert_allclose(st.t_times(x), np.concatenate([a.transpose(0, 2, 1) @ x[:B], c.transpose(0, 2, 1) @ x[B:]]), rtol=1e-14)
    np.testing.assert_allclose(st.times(x), np.concatenate([a @ x[:B], c @ x[B:]]), rtol=1e-14)
    t1, t2 = SpectralTracker(2 * B, n, n), SpectralTracker(2 * B, n, n)
    for k in range(5):
        stacked = np.concatenate([a, c])
        np.testing.assert_allclose(t1((a, c)), t2(stacked), rtol=1e-13)
        np.testing.assert_allclose(t2(stacked), np.linalg.norm(stacked, 2, axis=(1, 2)), rtol=1e-12)
        m *= rng.uniform(0.5, 1.5, size=(B, 1, 2 * n))                 # the next "lag"


@pytest.mark.parametrize("shape", [(3, 20, 30), (3, 64, 64), (3, 130, 100)])
def test_gram_top_is_sigma_max_squared(shape, monkeypatch):
    """Both branches of the eigensolver fallback (all eigenvalues below 64, the top one alone
    by LAPACK's dsyevx from 64 on) against SVDs, a zero block included."""
    import scipy.linalg

    from diagnostics.probing.matnorms import TOP_ONLY_MIN, gram_top
    calls = []
    real = scipy.linalg.eigh
    monkeypatch.setattr(scipy.linalg, "eigh", lambda *a, **k: calls.append(k.get("driver")) or real(*a, **k))
    m = np.random.default_rng(5).normal(size=shape)
    m[1] = 0.0
    ref = np.linalg.norm(m, 2, axis=(1, 2)) ** 2
    got = gram_top(m)
    assert got[1] == 0.0
    np.testing.assert_allclose(got, ref, rtol=1e-13)
    # the branch taken: the Gram matrix is min(r, c) square
    assert calls == (["evx"] * shape[0] if min(shape[1:]) >= TOP_ONLY_MIN else [])


@pytest.mark.parametrize("shape", [(3, 20, 1), (3, 1, 20), (3, 20, 2)])
def test_spectral_tracker_on_thin_blocks_needs_no_eigensolver(shape):
    """One or two columns: M M^T has rank <= 2 and the block holds its whole range, so the
    iteration settles every call (a filter that took θ_min = θ_1 with one vector would stall)."""
    from diagnostics.probing.matnorms import SpectralTracker
    rng = np.random.default_rng(6)
    tr = SpectralTracker(*shape)
    for _ in range(10):
        m = rng.normal(size=shape)
        np.testing.assert_allclose(tr(m), np.linalg.norm(m, 2, axis=(1, 2)), rtol=1e-12)
    assert tr.fallbacks == 0, tr.fallbacks


def test_quantiles_leave_out_nan_instead_of_sorting_it_last():
    """-1, -2, -3, NaN gave median -1.5 and q75 NaN; a diverged sequence must not bias them."""
    from diagnostics.probing.matnorms import log_quantile, not_a_value
    v = np.array([[-1.0], [-2.0], [-3.0], [np.nan]])
    assert log_quantile(v, 0.5)[0] == -2.0 and log_quantile(v, 0.75)[0] == -1.5
    assert not_a_value(v)[0] == 1
    z = np.array([[-np.inf], [-np.inf], [-2.0], [np.nan]])        # exact zeros are values
    assert log_quantile(z, 0.5)[0] == -np.inf and not_a_value(z)[0] == 1
    assert np.isnan(log_quantile(np.full((3, 1), np.nan), 0.5)[0])
