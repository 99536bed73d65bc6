"""Numbers read off a Jacobian-norm curve: decay rate, time constant, horizon; the Pascanu bound.

    fit_decay(lags, log10_curve) -> {"slope", "factor", "tau", "horizon"}
        slope   log10 norm per step, a robust (Theil-Sen) fit over the lags where the curve is finite
        factor  ρ = 10**slope, the per-step gain
        tau     -1/ln ρ steps (inf when ρ >= 1: nothing decays; 0 when the curve is all -inf)
        horizon first lag whose value is <= value at k = 1 minus 3 decades (None if never)
    pascanu_bound(cell, params, lags) -> k log10(γ σ_max(W_a)) (K,), or None for gated cells
"""
from __future__ import annotations

import math

import numpy as np
from scipy.stats import theilslopes

DECADES = 3.0
# Theil-Sen looks at all pairs, O(N^2) memory; beyond this many points an evenly spaced,
# deterministic subset is fitted (the median of pairwise slopes barely moves)
MAX_FIT_POINTS = 1500


def _as_lags(lags) -> np.ndarray:
    if isinstance(lags, (int, np.integer)) and not isinstance(lags, bool):
        return np.arange(1, int(lags) + 1)
    return np.asarray(lags)


def fit_decay(lags, log10_curve) -> dict:
    """Robust decay fit of one log10 curve; see the module docstring for the fields."""
    k = np.asarray(lags, dtype=float).ravel()
    y = np.asarray(log10_curve, dtype=float).ravel()
    if k.shape != y.shape or k.size == 0:
        raise ValueError(f"fit_decay: lags and curve must be non-empty and of equal length, got {k.shape} and {y.shape}")
    fin = np.isfinite(y)
    if fin.sum() >= 2:
        kk, yy = k[fin], y[fin]
        if kk.size > MAX_FIT_POINTS:
            pick = np.unique(np.linspace(0, kk.size - 1, MAX_FIT_POINTS).round().astype(int))
            kk, yy = kk[pick], yy[pick]
        slope = float(theilslopes(yy, kk)[0])
    elif not fin.any() and np.isneginf(y).all():
        slope = -math.inf        # exactly zero at every lag: infinitely fast decay
    else:
        slope = math.nan         # one finite point (or NaN): no rate can be read
    factor = 10.0 ** slope if not math.isnan(slope) else math.nan
    if math.isnan(slope):
        tau = None
    elif factor >= 1.0:
        tau = math.inf
    elif factor == 0.0:
        tau = 0.0
    else:
        tau = -1.0 / (slope * math.log(10.0))
    return {"slope": slope, "factor": factor, "tau": tau, "horizon": horizon(k, y)}


def horizon(lags, log10_curve, decades: float = DECADES):
    """First lag at which the curve is `decades` below its value at k = 1 (None if never)."""
    k = np.asarray(lags).ravel()
    y = np.asarray(log10_curve, dtype=float).ravel()
    first = np.flatnonzero(k == 1)
    ref = y[first[0]] if first.size else y[np.argmin(k)]
    if np.isnan(ref):
        return None
    with np.errstate(invalid="ignore"):
        hit = np.flatnonzero(y <= ref - decades)   # NaN compares False; -inf <= -inf counts
    return int(k[hit[0]]) if hit.size else None


def pascanu_bound(cell, params, lags):
    """log10 of (γ σ_max(W_a))^k for each lag k (Pascanu et al. 2013, §2.1); None if no W_a.

    The bound needs the largest singular value, not the spectral radius (REFERENCES item 2).
    """
    W = cell.recurrent_weight(params)
    gamma = cell.activation_gamma()
    if W is None or gamma is None:
        return None
    k = _as_lags(lags).astype(float)
    s = float(gamma) * float(np.linalg.norm(np.asarray(W, dtype=float), 2))
    with np.errstate(divide="ignore"):
        return k * np.log10(s)
