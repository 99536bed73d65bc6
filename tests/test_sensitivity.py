"""The state's sensitivity d a<t>/dθ by lag (diagnostics/sensitivity/chain.py): every cell's
total against complex-step derivatives of the unrolled cell (central differences for relu),
the lags summing to the total, the linear recurrence's sums, and log space."""
from __future__ import annotations

import numpy as np
import pytest
from cell_cases import CONFIGS, H_CENTRAL, case_id, rel_err, setup

from diagnostics.cells import Cell, make_cell
from diagnostics.cells.unroll import unroll
from diagnostics.sensitivity import state_sensitivity
from diagnostics.sensitivity.chain import walk

SMALL = [(k, o) for k, o in CONFIGS if o.get("heads", 1) in (1, 3)]


def _linear(lam: float):
    cell = make_cell("rnn", input_size=1, hidden=1, activation="linear", bias=0.0,
                     recurrent_init={"kind": "identity", "gain": lam}, input_init={"kind": "identity", "gain": 1.0})
    return cell, cell.init(np.random.default_rng(0))


def stepwise_total(cell, params, xs, t, name):
    """d a<t>/dθ (B, R, *shape) from `step` alone: complex step (differences for relu)."""
    a = cell.blocks[cell.output_block]
    dt = np.complex128 if cell.analytic else np.float64
    B = xs.shape[1]
    out = np.empty((B, len(range(cell.state_size)[a])) + params[name].shape)
    for idx in np.ndindex(params[name].shape):
        def run(h):
            p = {k: v.astype(dt) for k, v in params.items()}
            p[name][idx] += h
            return unroll(cell, p, xs[:t].astype(dt)).states[t - 1][:, a]
        if cell.analytic:
            out[(slice(None), slice(None)) + idx] = run(1e-30j).imag / 1e-30
        else:   # over several steps the state is a polynomial in θ: a fourth-order stencil
            h = H_CENTRAL
            out[(slice(None), slice(None)) + idx] = (run(-2 * h) - 8 * run(-h) + 8 * run(h) - run(2 * h)) / (12 * h)
    return out


@pytest.mark.parametrize("kind,opts", SMALL, ids=[case_id(c + (3, 2, 0)) for c in SMALL])
def test_param_vjp_is_backward_kept_apart(kind, opts):
    """The batched param_vjp of rnn, indrnn and lru equals the generic one (one backward per
    sequence and row), which every other cell uses."""
    cell, params, state, x, rng = setup(kind, opts, 3, 2, 0)
    _, cache = cell.step(params, state, x)
    m = rng.normal(size=(3, 4, cell.state_size))
    names = sorted(params)
    fast, slow = cell.param_vjp(params, cache, m, names), Cell.param_vjp(cell, params, cache, m, names)
    for k in names:
        assert fast[k].shape == (3, 4) + params[k].shape
        assert rel_err(fast[k], slow[k]) <= 1e-13, k
    # summed over sequences and rows, it is backward's gradient of those rows
    for i in range(4):
        grads = cell.backward(params, cache, m[:, i])[1]
        for k in names:
            assert rel_err(fast[k][:, i].sum(axis=0), grads[k]) <= 1e-12, k


@pytest.mark.parametrize("kind,opts", SMALL, ids=[case_id(c + (3, 2, 0)) for c in SMALL])
def test_total_is_the_derivative_of_the_unrolled_state(kind, opts):
    cell, params, _, _, rng = setup(kind, opts, 3, 2, 0)
    xs = rng.normal(size=(7, 2, 2))
    res = state_sensitivity(cell, params, xs, lags=4, anchors=[5, 7])
    assert res.names == tuple(cell.recurrent_names(params))
    for name in res.names:
        for ai, t in enumerate((5, 7)):
            ref = stepwise_total(cell, params, xs, t, name)
            if cell.analytic:
                assert rel_err(res.total[name][ai], ref) <= 1e-10, name
            else:   # the stencil's rounding (~1e-13 of the state) where the derivative is exactly 0
                assert np.abs(res.total[name][ai] - ref).max() <= 1e-10 * max(1.0, np.abs(ref).max()), name
            norms = np.sqrt((ref.reshape(2, -1) ** 2).sum(axis=1))
            big = norms > 1e-8
            np.testing.assert_allclose(res.log10_total[name][ai][big], np.log10(norms[big]), rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind,opts", [("lstm", {}), ("lru", {}), ("gru", {}), ("rnn", {"activation": "tanh"})])
def test_lags_sum_to_the_total(kind, opts):
    cell, params, _, _, rng = setup(kind, opts, 3, 2, 1)
    xs = rng.normal(size=(9, 2, 2))
    trace = unroll(cell, params, xs)
    names = cell.recurrent_names(params)
    parts = {n: [] for n in names}
    for k, comps, log_scale in walk(cell, params, trace.caches, 9, names, 2):
        for n in names:
            parts[n].append(comps[n] * np.exp(log_scale).reshape((-1,) + (1,) * (comps[n].ndim - 1)))
    res = state_sensitivity(cell, params, xs, lags=9)
    for n in names:
        assert len(parts[n]) == 9                     # lags 0..t-1, back to the first step
        assert rel_err(np.sum(parts[n], axis=0), res.total[n][0]) <= 1e-12
        norms = np.sqrt((np.stack(parts[n]).reshape(9, 2, -1) ** 2).sum(axis=2)).T
        # the lag t-1 part is exactly zero (its immediate part holds a<0> = 0) for W_a and W
        with np.errstate(divide="ignore"):
            np.testing.assert_allclose(res.log10_lag[n][0], np.log10(norms), rtol=0, atol=1e-12)


def test_linear_recurrence_sums_on_one_sequence():
    """h<t> = λ h<t-1> + x<t> from h = 0: dh/dλ = Σ_i i λ^(i-1) x<t-i>, and the lag-k part is
    λ^k h<t-k-1> (the immediate ∂h<s>/∂λ is h<s-1>); the state norm is |h<t>|."""
    lam, T = 0.9, 300
    cell, params = _linear(lam)
    xs = np.random.default_rng(3).normal(size=(T, 1, 1))
    res = state_sensitivity(cell, params, xs, lags=100)
    x = xs[:, 0, 0]                                   # xs[s] is x<s+1>
    i = np.arange(1, T)
    ref = np.sum(i * lam ** (i - 1) * x[T - 1 - i])
    got = res.total["W_a"][0, 0, 0, 0, 0]
    assert abs(got - ref) <= 1e-12 * abs(ref), (got, ref)
    h = unroll(cell, params, xs).states[:, 0, 0]     # h[s] is h<s+1>
    k = np.arange(100)
    np.testing.assert_allclose(res.log10_lag["W_a"][0, 0], np.log10(np.abs(lam ** k * h[T - k - 2])), rtol=0, atol=1e-12)
    assert res.log10_state[0, 0] == pytest.approx(np.log10(abs(h[-1])), abs=1e-14)


def test_log_space_neither_underflows_nor_overflows():
    """λ = 0.5 over 2,000 lags reaches 1e-600 (0 in float64 without the scaling). A chaotic
    tanh RNN (n = 16, gain 5) has bounded states but products of Jacobians that grow ~e^0.25
    per step: after 3,500 steps d a<t>/dW is beyond float64 (inf without the scaling); the
    reference is the other algorithm, forward mode (RTRL: dA<t> = J<t> dA<t-1> + ∂⁺a<t>/∂W),
    rescaled each step."""
    T = 2000
    xs = np.random.default_rng(4).normal(size=(T, 2, 1))
    cell, params = _linear(0.5)
    res = state_sensitivity(cell, params, xs, lags=T - 1)
    h = unroll(cell, params, xs).states[:, :, 0]
    k = np.arange(T - 1)
    ref = k[None] * np.log10(0.5) + np.log10(np.abs(h[T - k - 2])).T
    assert ref.min() < -600
    np.testing.assert_allclose(res.log10_lag["W_a"][0], ref, rtol=0, atol=1e-9)

    T, n = 3500, 16
    cell = make_cell("rnn", input_size=1, hidden=n, activation="tanh", recurrent_init={"kind": "gaussian", "gain": 5.0})
    params = cell.init(np.random.default_rng(1))
    xs = np.random.default_rng(5).normal(size=(T, 2, 1))
    res = state_sensitivity(cell, params, xs, lags=1)
    a = unroll(cell, params, xs).states
    W = params["W_a"]
    dA = np.zeros((2, n, n * n))        # d a<t>_i / d W_jl per sequence, times exp(-ln_s)
    ln_s, prev = np.zeros(2), np.zeros((2, n))
    for t in range(T):
        carried = np.matmul(W, dA).reshape(2, n, n, n)
        carried[:, np.arange(n), np.arange(n), :] += prev[:, None, :] * np.exp(-ln_s)[:, None, None]
        dA = ((1 - a[t] ** 2)[:, :, None, None] * carried).reshape(2, n, n * n)
        big = np.abs(dA).max(axis=(1, 2))
        big[big == 0] = 1.0                 # the first step: a<0> = 0 does not depend on W
        dA, ln_s, prev = dA / big[:, None, None], ln_s + np.log(big), a[t]
    ref = (ln_s + np.log(np.sqrt((dA.reshape(2, -1) ** 2).sum(axis=1)))) / np.log(10.0)
    assert ref.min() > 308 and not np.isfinite(res.total["W_a"]).all()
    np.testing.assert_allclose(res.log10_total["W_a"][0], ref, rtol=0, atol=1e-9)


def test_a_dead_cell_is_an_exact_zero():
    cell = make_cell("rnn", input_size=1, hidden=2, activation="relu", recurrent_init="zeros", input_init="zeros")
    xs = np.random.default_rng(0).normal(size=(10, 3, 1))
    res = state_sensitivity(cell, cell.init(np.random.default_rng(0)), xs, lags=5)
    assert np.isneginf(res.log10_lag["W_a"]).all() and np.isneginf(res.log10_total["W_a"]).all()
    assert np.isneginf(res.log10_state).all()


@pytest.mark.parametrize("kw,msg", [
    ({"lags": 0}, r"lags: must be an integer in 1\.\.10 \(the smallest anchor\), got 0"),
    ({"lags": 5, "anchors": [11]}, r"anchors: must be steps in 1\.\.10, got \[11\]"),
    ({"lags": 6, "anchors": [4, 10]}, r"lags: must be an integer in 1\.\.4 \(the smallest anchor\), got 6"),
    ({"lags": 2, "names": ["W_x"]}, r"names: must be parameters of this rnn cell \(U_a, W_a, b_a\), got \['W_x'\]"),
])
def test_bad_arguments_are_one_line(kw, msg):
    cell, params = _linear(0.5)
    with pytest.raises(ValueError, match=msg):
        state_sensitivity(cell, params, np.zeros((10, 2, 1)), **kw)
