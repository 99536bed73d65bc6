"""Decay fits, the Pascanu bound and Lyapunov exponents against closed forms (REFERENCES 2, 5-7, 9),
and a probe stream stuck at a fixed point said as such."""
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.special import roots_hermitenorm

from diagnostics.cells import make_cell
from diagnostics.cli.main import main
from diagnostics.probing.core import probe
from diagnostics.probing.lyapunov import lyapunov_run, lyapunov_spectrum
from diagnostics.probing.metrics import fit_decay, pascanu_bound


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])

# ---------------------------------------------------------------- fit_decay


def test_fit_decay_recovers_an_exact_line():
    k = np.arange(1, 101)
    y = 0.5 - 0.25 * k                       # exact in binary: y(1) - 3 = -2.75 = y(13)
    f = fit_decay(k, y)
    assert f["slope"] == pytest.approx(-0.25, abs=1e-14)
    assert f["factor"] == pytest.approx(10 ** -0.25, rel=1e-13)
    assert f["tau"] == pytest.approx(1.0 / (0.25 * math.log(10)), rel=1e-13)
    assert f["horizon"] == 13


def test_fit_decay_is_robust_to_outliers_and_long_curves():
    k = np.arange(1, 10_001)
    y = -0.01 * k
    y[::97] += 50.0                          # spikes on 1% of the lags
    f = fit_decay(k, y)
    assert f["slope"] == pytest.approx(-0.01, rel=1e-12)


def test_fit_decay_growth_and_minus_inf():
    k = np.arange(1, 21)
    up = fit_decay(k, 0.1 * k)
    assert up["factor"] > 1 and up["tau"] == math.inf and up["horizon"] is None
    y = -0.5 * k
    y[10:] = -np.inf                          # exactly zero from lag 11: fit the finite part
    f = fit_decay(k, y)
    assert f["slope"] == pytest.approx(-0.5) and f["horizon"] == 7
    dead = fit_decay(k, np.full(20, -np.inf))
    assert dead["slope"] == -math.inf and dead["factor"] == 0.0 and dead["tau"] == 0.0
    assert dead["horizon"] == 1


# ---------------------------------------------------------------- Pascanu bound


def test_pascanu_bound_values():
    cell = make_cell("rnn", input_size=1, hidden=8, recurrent_init={"kind": "gaussian", "gain": 1.3})
    params = cell.init(np.random.default_rng(0))
    s = np.linalg.svd(params["W_a"], compute_uv=False)[0]
    np.testing.assert_allclose(pascanu_bound(cell, params, np.arange(1, 11)), np.arange(1, 11) * np.log10(s), rtol=1e-13)
    np.testing.assert_allclose(pascanu_bound(cell, params, 5), np.arange(1, 6) * np.log10(s), rtol=1e-13)
    lstm = make_cell("lstm", input_size=1, hidden=4)
    assert pascanu_bound(lstm, lstm.init(np.random.default_rng(0)), 5) is None


# ---------------------------------------------------------------- Lyapunov exponents


@pytest.mark.parametrize("rho", [1.0, 0.6, 1.7])
def test_lyapunov_of_scaled_orthogonal_linear_rnn(rho):
    # J = ρQ at every step: all exponents are ln ρ exactly (REFERENCES item 5)
    cell = make_cell("rnn", input_size=1, hidden=10, activation="linear",
                     recurrent_init={"kind": "orthogonal", "gain": rho})
    params = cell.init(np.random.default_rng(0))
    run = lyapunov_run(cell, params, np.random.default_rng(1).normal(size=(200, 2, 1)), m=4)
    np.testing.assert_allclose(run.exponents, math.log(rho), rtol=0, atol=1e-12)
    assert run.resolved.all()


def test_a_dead_relu_units_exponent_is_flagged_as_rounding():
    """IndRNN, J = diag(relu'(z) u): units 0 and 1 always alive (u = 0.9, 0.5), unit 2 dead
    whenever its input is negative. Exponents 1 and 2 are ln 0.9 and ln 0.5 exactly and
    resolved; the third direction is zeroed on dead steps, so its R_t[i, i] is rounding there
    and the exponent is flagged (its value moved by 6 nats between BLAS kernels)."""
    cell = make_cell("indrnn", input_size=1, hidden=3, activation="relu")
    params = {"W_a": np.array([0.9, 0.5, 0.3]), "U_a": np.array([[0.0], [0.0], [1.0]]),
              "b_a": np.array([5.0, 5.0, 0.0])}
    xs = np.random.default_rng(0).normal(size=(300, 4, 1))
    run = lyapunov_run(cell, params, xs, m=3, warmup=100)   # the frame aligns: (0.3/0.5)^100
    np.testing.assert_allclose(run.exponents[:2], np.log([0.9, 0.5]), rtol=0, atol=1e-12)
    assert run.resolved.tolist() == [True, True, False]
    # every unit alive (inputs >= 0): all three resolved, the third ln 0.3
    run = lyapunov_run(cell, params, np.abs(xs) + 0.1, m=3, warmup=100)
    assert run.resolved.tolist() == [True, True, True]
    np.testing.assert_allclose(run.exponents, np.log([0.9, 0.5, 0.3]), rtol=0, atol=1e-12)


def test_lyapunov_top_matches_probe_rate():
    # λ₁ is the asymptotic log-rate of the per-lag curve (REFERENCES item 9)
    cell = make_cell("rnn", input_size=1, hidden=30, recurrent_init={"kind": "gaussian", "gain": 0.9})
    params = cell.init(np.random.default_rng(0))
    xs = 0.3 * np.random.default_rng(1).normal(size=(1500, 1, 1))
    lam = lyapunov_spectrum(cell, params, xs, m=1)[0]
    res = probe(cell, params, xs, norms=("spectral",))
    rate = res.log10[("a", "spectral")][0, 0, -1] * math.log(10) / 1500   # (1/K) ln ||J(T, 0)||
    assert abs(rate - lam) < 5e-3   # same product, the difference is ln(prefactor)/K


def _mean_field(g, nodes=200, iters=2000):
    """q* = g² E tanh²(√q* z) by fixed-point iteration; λ = ½ ln(g² E sech⁴(√q* z)).

    Expectations over z ~ N(0, 1) by Gauss-Hermite quadrature (probabilists' weights).
    """
    z, w = roots_hermitenorm(nodes)
    w = w / w.sum()
    q = 1.0
    for _ in range(iters):
        q = g * g * np.sum(w * np.tanh(np.sqrt(q) * z) ** 2)
    return q, 0.5 * math.log(g * g * np.sum(w / np.cosh(np.sqrt(q) * z) ** 4))


def test_mean_field_values_agree_with_the_published_ones():
    # REFERENCES item 7 quotes q* ≈ 2.1215, λ ≈ 0.155 (g = 2) and q* ≈ 6.305, λ ≈ 0.310 (g = 3)
    q2, l2 = _mean_field(2.0)
    q3, l3 = _mean_field(3.0)
    assert abs(q2 - 2.1215) < 5e-5 and abs(l2 - 0.155) < 5e-4
    assert abs(q3 - 6.305) < 5e-4 and abs(l3 - 0.310) < 5e-4


def _gaussian_tanh_rnn(n, g, seed=0):
    cell = make_cell("rnn", input_size=1, hidden=n, recurrent_init={"kind": "gaussian", "gain": g},
                     input_init="zeros")
    return cell, cell.init(np.random.default_rng(seed))


@pytest.mark.slow
def test_chaotic_tanh_rnn_top_lyapunov_matches_mean_field():
    # g = 2, n = 400, no input: a<t> = 0 is an unstable fixed point, so start from random h0
    # and discard 500 steps of transient. Finite-n estimates sit ~0.005 below the mean field.
    n, B, T = 400, 4, 3000
    cell, params = _gaussian_tanh_rnn(n, 2.0)
    h0 = np.random.default_rng(1).normal(size=(B, n))
    lam = lyapunov_spectrum(cell, params, np.zeros((T, B, 1)), m=2, warmup=500, h0=h0)
    _, mf = _mean_field(2.0)
    assert abs(lam[0] - mf) < 0.02
    assert abs(lam[0] - 0.155) < 0.02


@pytest.mark.slow
@pytest.mark.parametrize("g", [0.5, 0.8])
def test_contracting_tanh_rnn_decays_at_spectral_radius(g):
    # g < 1, no input: from a random h0 the state falls into the fixed point a = 0 within a few
    # dozen steps, after which every step Jacobian is W itself, so J(t, t-k) -> W^k and
    # ||W^k||^(1/k) -> ρ(W) (REFERENCES items 6-7). The robust slope over 600 lags differs
    # from ln ρ only through ln(prefactor)/K-type terms: for seeds 0-2 we measured |Δ| <= 2.2e-4
    # nats (5.9e-5 at K = 1000, 5.9e-4 at K = 400, i.e. ~1/K). Tolerance 2e-3 nats/step: ~9x
    # that, and far below the gap to the Pascanu rate ln ||W||₂ ≈ ln(2g) (0.69 nats away), so
    # the test does tell ρ from σ_max.
    n, B, T = 200, 2, 600
    cell, params = _gaussian_tanh_rnn(n, g)
    rho = np.abs(np.linalg.eigvals(params["W_a"])).max()
    h0 = np.random.default_rng(1).normal(size=(B, n))
    res = probe(cell, params, np.zeros((T, B, 1)), h0=h0, norms=("spectral",))
    fit = fit_decay(res.lags, res.summary("a", "spectral")["median"])
    assert abs(fit["slope"] * math.log(10) - math.log(rho)) < 2e-3
    assert fit["tau"] == pytest.approx(-1 / math.log(rho), rel=0.02)


def test_fixed_point_is_detected_and_reported(tmp_path, write_case):
    """Zero inputs and a zero start keep a bias-free tanh RNN at 0: the top exponent is then
    ln ρ(W) (0.73 for gain 2), not the chaotic rate; the page and the command say so."""
    case = {"name": "fp", "task": {"kind": "none", "length": 40, "input_size": 1, "inputs": "zeros"},
            "cells": [{"kind": "rnn", "hidden": 16, "recurrent_init": {"kind": "gaussian", "gain": 2.0}},
                      {"kind": "rnn", "label": "moving", "hidden": 16}],
            "probe": {"lags": 10, "sequences": 2, "lyapunov": 2, "lyapunov_steps": 40, "tk_map": {"anchors": 0}}}
    res = invoke("run", write_case(tmp_path, case), "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert "warning: rnn (step 0): the probe stream left the state at a fixed point" in res.output
    curves = json.loads((tmp_path / "o" / "fp" / "curves.json").read_text())
    assert [x["fixed_point"] for x in curves["lyapunov"]] == [True, True]   # zeros move neither
    case["task"]["inputs"] = "gaussian"
    res = invoke("run", write_case(tmp_path, case), "--out", tmp_path / "o2", "--no-report")
    assert "fixed point" not in res.output
    page = (tmp_path / "o" / "fp" / "index.html").read_text()
    assert "Warning:" in page and "fixed point" in page


def test_lyapunov_bad_arguments():
    cell = make_cell("rnn", input_size=1, hidden=3)
    params = cell.init(np.random.default_rng(0))
    with pytest.raises(ValueError, match="m:"):
        lyapunov_spectrum(cell, params, np.zeros((5, 1, 1)), m=4)
    with pytest.raises(ValueError, match="warmup"):
        lyapunov_spectrum(cell, params, np.zeros((5, 1, 1)), m=2, warmup=5)
