"""Saturated gates and activations: the dense chain (probe(..., diagonal=False)) and every step
Jacobian stay exact for gate biases up to |b| = 700, where 1 - σ(b), σ(b)(1 - σ(b)) or 1 - tanh²
by subtraction round to 0 (the dense probe read -inf at b = 40 where the exact value is finite).

References: closed forms (zero weights: the step Jacobian is a constant diagonal), the
diagonal fast path (logs formed from the pre-activations), and complex-step derivatives of
`step` (exact to rounding in complex arithmetic), block by block."""
import numpy as np
import pytest
from scipy.special import log_expit

from diagnostics.cells import make_cell, reference_jacobian
from diagnostics.cells.unroll import unroll
from diagnostics.probing.core import probe

BIASES = [-700.0, -40.0, -36.0, -30.0, 0.0, 30.0, 36.0, 40.0, 700.0]
K, N = 10, 3
LN10 = np.log(10.0)


def _curves(cell, p, xs, paths, diagonal):
    res = probe(cell, p, xs, paths=paths, diagonal=diagonal, workers=1)
    return {key: v[0] for key, v in res.log10.items()}


def _assert_closed_form(curves, path, per_step, n, first=0.0):
    """log10 norms of diag(d)^k with all n entries equal: k log10 d (spectral), + log10 √n
    (Frobenius); `first` is added at lag K, the one that reaches the first step. To 1e-12
    decades, or 4 ulps of values beyond 2048 (-3040 at b = 700, lag 10: ulp 4.5e-13), where a
    sum of K float64 logs cannot do better."""
    want = np.arange(1, K + 1) * per_step
    want[-1] += first
    for norm, off in (("spectral", 0.0), ("frobenius", 0.5 * np.log10(n))):
        got, w = curves[(path, norm)], want + off
        err = np.abs(got - w)
        assert np.isfinite(got).all() and (err <= np.maximum(1e-12, 4 * np.spacing(np.abs(w)))).all(), \
            (path, norm, err.max())


UPDATE = [("mingru", {"input_init": "zeros"}, "update_bias"),
          ("gru", {"recurrent_init": "zeros", "input_init": "zeros"}, "bias"),
          ("gru", {"reset_gate": False, "recurrent_init": "zeros", "input_init": "zeros"}, "bias"),
          ("gru", {"reset_after": True, "recurrent_init": "zeros", "input_init": "zeros"}, "bias")]


@pytest.mark.parametrize("b", BIASES)
@pytest.mark.parametrize("kind,opts,key", UPDATE, ids=["mingru", "gru", "gru-no-reset", "gru-reset-after"])
def test_dense_chain_is_exact_at_saturated_update_gates(kind, opts, key, b):
    """No weights: d c<t>/d c<t-1> = diag(1 - σ(b)) = diag(σ(-b)), so the k-lag norms are
    k log10 σ(-b) (+ log10 √n). 1 - σ(b) by subtraction was 0 from b ~ 37 (-inf) and off by
    0.0044 decades at b = 30, lag 10."""
    cell = make_cell(kind, input_size=2, hidden=N, **opts, **{key: b})
    p = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(K, 2, 2))
    per_step = log_expit(-b) / LN10
    _assert_closed_form(_curves(cell, p, xs, ["a"], False), "a", per_step, N)
    if kind == "mingru":   # and the diagonal fast path
        _assert_closed_form(_curves(cell, p, xs, ["a"], True), "a", per_step, N)


@pytest.mark.parametrize("b", BIASES)
def test_lstm_memory_path_is_exact_at_saturated_forget_gates(b):
    """No weights: the c-block of the full-state product is Π diag(σ(b_f)), dense and c_direct.
    The LSTM's vjp renormalises M one lag late, and the probe formed the norms from that M,
    one step's factor off 1: from b_f ~ -355 (σ(-400) = 1.9e-174) its squares underflowed and
    the dense c path read -inf."""
    cell = make_cell("lstm", input_size=2, hidden=N, forget_bias=b, recurrent_init="zeros", input_init="zeros")
    p = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(K, 2, 2))
    curves = _curves(cell, p, xs, ["c", "c_direct"], True)
    for path in ("c", "c_direct"):
        _assert_closed_form(curves, path, log_expit(b) / LN10, N)


@pytest.mark.parametrize("b_f", BIASES)
@pytest.mark.parametrize("b_i", [-700.0, 0.0, 40.0, 700.0])
def test_minlstm_keep_factor_is_exact_at_saturated_gates(b_f, b_i):
    """f' = f/(f + i) = σ(ln σ(b_f) - ln σ(b_i)) per step, dense chain and fast path."""
    cell = make_cell("minlstm", input_size=2, hidden=N, forget_bias=b_f, bias=b_i, input_init="zeros")
    p = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(K, 2, 2))
    per_step = log_expit(log_expit(b_f) - log_expit(b_i)) / LN10
    for diagonal in (False, True):
        _assert_closed_form(_curves(cell, p, xs, ["a"], diagonal), "a", per_step, N)


@pytest.mark.parametrize("b_f", BIASES)
def test_slstm_memory_path_is_exact_at_saturated_forget_gates(b_f):
    """No weights, constant pre-activations s_i = 0.5: m stays ln i = 0.5 and f' = σ(b_f) from
    the second step on; at the first (n<0> = 0, m<0> = 0) m<1> = ln i gives
    f'<1> = σ(b_f) e^-0.5. No route leads from c into m or n and back, so the c-block of the
    product is Π diag(f')."""
    cell = make_cell("slstm", input_size=2, hidden=N, forget_bias=b_f, bias=0.5, recurrent_init="zeros",
                     input_init="zeros")
    p = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(K, 2, 2))
    curves = _curves(cell, p, xs, ["c", "c_direct"], True)
    for path in ("c", "c_direct"):
        _assert_closed_form(curves, path, log_expit(b_f) / LN10, N, first=-0.5 / LN10)


@pytest.mark.parametrize("b", [-300.0, -40.0, 0.0, 20.0, 40.0, 300.0])
def test_indrnn_dense_chain_equals_its_fast_path_at_saturated_tanh(b):
    """d a<t>/d a<t-1> = diag(u tanh'(z)): the fast path's ln sech² z is exact, and the dense
    chain now multiplies the same factor (1 - tanh² was 0 from |z| ~ 19: -inf). Beyond
    |z| ~ 354, tanh' = 4 e^-2|z| is below float64's range: a dense Jacobian holds 0 there,
    and only the fast path's logs stay finite."""
    cell = make_cell("indrnn", input_size=2, hidden=N, activation="tanh", recurrent_min=0.5, recurrent_max=0.9,
                     bias=b)
    p = cell.init(np.random.default_rng(0))
    xs = 0.5 * np.random.default_rng(1).normal(size=(K, 2, 2))
    fast, dense = _curves(cell, p, xs, ["a"], True), _curves(cell, p, xs, ["a"], False)
    for key, v in fast.items():
        assert np.isfinite(v).all()
        np.testing.assert_allclose(dense[key], v, rtol=0, atol=1e-12, err_msg=str(key))


# --- every step Jacobian against complex step, entry by entry ---------------------------
SATURABLE = [
    ("gru", {}), ("gru", {"reset_gate": False}), ("gru", {"reset_after": True}),
    ("lstm", {}), ("lstm", {"forget_gate": False}), ("lstm", {"output_tanh": False}),
    ("mingru", {}), ("minlstm", {}), ("slstm", {}), ("slstm", {"forget": "exp"}),
    ("rnn", {"activation": "tanh"}), ("indrnn", {"activation": "tanh"}), ("cornn", {}),
]
GATE_BIASES = {"lstm": ("forget_bias",), "mingru": ("update_bias",), "minlstm": ("forget_bias",),
               "slstm": ("forget_bias",)}


@pytest.mark.parametrize("b", [-40.0, 40.0])
@pytest.mark.parametrize("kind,opts", SATURABLE, ids=[f"{k}-{o}" for k, o in SATURABLE])
def test_step_jacobian_matches_complex_step_block_by_block_when_saturated(kind, opts, b):
    """Every bias at b: gates at σ(±40) and tanh at ±1, so whole blocks of the Jacobian (the
    LSTM's d a<t>/d a<t-1>, a GRU's d c<t>/d c<t-1> at b_u = 40) are made of σ' ~ 4e-18 and
    tanh' ~ 7e-35 terms. Each block (a-rows x c-columns, ...) must match the complex-step
    derivative of `step` to 1e-10 of its own largest entry, not of the matrix's: products of
    these blocks are what the probe's paths are, however small. (Entry by entry would ask too
    much of the reference itself: its 1e-35 entries come out of cancelling 4e-18 terms.)"""
    extra = {k: b for k in GATE_BIASES.get(kind, ())}
    if kind == "slstm" and opts.get("forget") == "exp":
        extra["forget_bias"] = -abs(b)        # ln f = s_f: a positive one would grow n without bound
    cell = make_cell(kind, input_size=2, hidden=N, bias=b, **opts, **extra)
    p = cell.init(np.random.default_rng(0))
    if kind == "slstm":
        # not z as well: with z and c/n both rounding to ±1, d h/d s_i ∝ z - c/n is rounding
        # noise in any float64 reference, saturated gates or not
        p = dict(p, b=np.concatenate([p["b"][:2 * N], np.zeros(N), p["b"][3 * N:]]))
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(4, 3, 2))
    state = unroll(cell, p, xs[:3]).final                      # a state the cell reaches
    _, cache = cell.step(p, state, xs[3])
    J = cell.jacobian(p, cache)
    R, method = reference_jacobian(cell, p, state, xs[3])
    assert method == "complex"
    for rows, i in cell.blocks.items():
        for cols, j in cell.blocks.items():
            ref, got = R[:, i, j], J[:, i, j]
            scale = np.abs(ref).max(axis=(1, 2))
            err = np.abs(got - ref).max(axis=(1, 2))
            assert (err <= 1e-10 * scale).all(), (rows, cols, scale, err)
