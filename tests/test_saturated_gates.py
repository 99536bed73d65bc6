"""Saturated gates and activations: the dense chain (probe(..., diagonal=False)) and every step
Jacobian stay exact for gate biases up to |b| = 700, where 1 - σ(b), σ(b)(1 - σ(b)) or 1 - tanh²
by subtraction round to 0 (the dense probe read -inf at b = 40 where the exact value is finite).

References: closed forms (zero weights: the step Jacobian is a constant diagonal), the
diagonal fast path (logs formed from the pre-activations), and complex-step derivatives of
`step` (exact to rounding in complex arithmetic), entry by entry."""
import numpy as np
import pytest
from scipy.special import log_expit

from diagnostics.cells import make_cell
from diagnostics.probing import probe

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
