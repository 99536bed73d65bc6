"""Lyapunov exponents of a cell along a trajectory, by the QR method (REFERENCES item 9).

    lyapunov_spectrum(cell, params, xs, m=8, warmup=0, h0=None) -> (m,) natural log per step
    lyapunov_run(...) -> (the same, did the trajectory stop moving?, sequences that diverged)

Q_0 is a fixed-seed random orthonormal (S, m) frame. At each step t the frame is pushed
through the step Jacobian and re-orthonormalised, Q_t R_t = J_t Q_{t-1}, and after `warmup`
steps (which let the frame align with the dominant directions) ln |R_t[i, i]| is summed:
λ_i = (1 / (T - warmup)) Σ_t ln |R_t[i, i]|. The state is the one the cell carries ([a; c] for
the LSTM). Each sequence of the batch gives its own estimate; the result is their mean,
sorted largest first. Only one step Jacobian (B, S, S) exists at a time.

A sequence whose trajectory held an inf or NaN in a state or cache (cells/unroll.py; the
overflow of an exploding cell) has no exponents: its rates would be read off non-finite
states (a relu's mask of NaN gives ln 0 = -inf, an "exactly singular" step that never was).
It is left out of the mean and counted; when every sequence diverged the exponents are NaN.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .cells.unroll import NonfiniteScan


class LyapunovRun(NamedTuple):
    exponents: np.ndarray   # (m,) natural log per step, largest first; NaN if every sequence diverged
    fixed_point: bool       # the trajectory stopped moving after the warm-up
    diverged: int           # sequences whose states or caches held an inf or NaN (left out of the mean)


def state_path(cell) -> str:
    """The path of the state the QR method follows: a<t>, or the whole state ([a<t>; c<t>])
    when the cell carries more than a."""
    return "a" if cell.state_size == cell.hidden else "state"


def lyapunov_spectrum(cell, params, xs, m: int = 8, *, warmup: int = 0, h0=None) -> np.ndarray:
    """Top-m Lyapunov exponents (ln per step), largest first, averaged over the batch."""
    return lyapunov_run(cell, params, xs, m, warmup=warmup, h0=h0).exponents


def lyapunov_run(cell, params, xs, m: int = 8, *, warmup: int = 0, h0=None,
                 rtol: float = 1e-12) -> LyapunovRun:
    """lyapunov_spectrum's exponents, whether the trajectory stopped moving, and how many
    sequences diverged (see the module docstring). `fixed_point` is True when, after
    `warmup`, no step changes any sequence's state by more than rtol (relative to the state's
    size): there the exponents are the log moduli of one Jacobian's eigenvalues (ln ρ(W) at 0
    for a tanh RNN), not the rates along a moving trajectory, and a report must say so. All
    three come from the one walk along the trajectory."""
    xs = np.asarray(xs, dtype=float)
    if xs.ndim != 3 or xs.shape[2] != cell.input_size:
        raise ValueError(f"xs: must have shape (T, B, {cell.input_size}), got {xs.shape}")
    T, B, _ = xs.shape
    S = cell.state_size
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 1 <= m <= S:
        raise ValueError(f"m: must be an integer in 1..{S} (the state size), got {m!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or not 0 <= warmup < T:
        raise ValueError(f"warmup: must be an integer in 0..{T - 1} (fewer than the {T} steps), got {warmup!r}")
    state = cell.initial_state(B) if h0 is None else np.asarray(h0, dtype=float)
    if state.shape != (B, S):
        raise ValueError(f"h0: must have shape ({B}, {S}), got {state.shape}")
    q0, _ = np.linalg.qr(np.random.default_rng(2024).standard_normal((S, m)))
    q = np.broadcast_to(q0, (B, S, m)).copy()
    total = np.zeros((B, m))
    moved, size = 0.0, 0.0   # after warmup: the largest change of a state in one step; the largest state
    scan = NonfiniteScan(B, T)
    # a diverging trajectory overflows: detected by the scan, not reported again by numpy
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(T):
            prev = state
            state, cache = cell.step(params, state, xs[t])
            scan.see(t + 1, (state, cache))
            q, r = np.linalg.qr(np.matmul(cell.jacobian(params, cache), q))
            if t >= warmup:
                with np.errstate(divide="ignore"):   # an exactly singular step gives -inf honestly
                    total += np.log(np.abs(np.diagonal(r, axis1=1, axis2=2)))
                size = max(size, float(np.abs(state).max()))
                if t > warmup:   # NaN or inf anywhere means it did not settle: kept as NaN
                    d = float(np.abs(state - prev).max())
                    if not np.isnan(moved):
                        moved = d if not np.isfinite(d) else max(moved, d)
    lam = total / (T - warmup)
    lam = -np.sort(-lam, axis=1)   # QR order is already largest first once converged
    fixed = T - warmup >= 2 and bool(np.isfinite(moved) and moved <= rtol * max(1.0, size))
    ok = scan.first > T
    mean = lam.mean(axis=0) if ok.all() else (lam[ok].mean(axis=0) if ok.any() else np.full(m, np.nan))
    return LyapunovRun(mean, fixed, int((~ok).sum()))
