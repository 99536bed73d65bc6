"""Lyapunov exponents of a cell along a trajectory, by the QR method (REFERENCES item 9).

    lyapunov_spectrum(cell, params, xs, m=8, warmup=0, h0=None) -> (m,) natural log per step
    lyapunov_run(...) -> LyapunovRun(exponents, fixed_point, resolved, diverged)

Q_0 is a fixed-seed random orthonormal (S, m) frame. At each step t the frame is pushed
through the step Jacobian and re-orthonormalised, Q_t R_t = J_t Q_{t-1}, and after `warmup`
steps (which let the frame align with the dominant directions) ln |R_t[i, i]| is summed:
λ_i = (1 / (T - warmup)) Σ_t ln |R_t[i, i]|. The state is the one the cell carries ([a; c] for
the LSTM). Each sequence of the batch gives its own estimate; the result is their mean,
sorted largest first. Only one step Jacobian (B, S, S) exists at a time.

Resolved exponents. A QR step computes R to an absolute error of about S eps ‖J Q‖_F, so a
direction whose R_t[i, i] falls to that level in some step (a dead relu unit: a zero row of J,
so J Q has rank below m) is rounding from then on: its exponent is an average of the logs of
rounding errors, which move by several nats per step between BLAS kernels (the IndRNN of
cases/modern_cells.yaml: -22.74 against -23.95, and -13.94 against -8.00, for the same
weights). Such an exponent, and every one after it (their frames are built on it), is
reported as not resolved; the regression compares resolved exponents only.

A sequence whose trajectory held an inf or NaN in a state or cache (cells/unroll.py; the
overflow of an exploding cell) has no exponents: its rates would be read off non-finite
states (a relu's mask of NaN gives ln 0 = -inf, an "exactly singular" step that never was).
It is left out of the mean and counted; when every sequence diverged the exponents are NaN.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..cells.unroll import TICK_STEPS, NonfiniteScan
from .parallel import single_threaded_blas

# R_t[i, i] at or below this many S eps ‖J Q‖_F is rounding; no exponent of these cells comes
# near it otherwise (one step would have to shrink a direction by ~1e-12)
ROUNDING = 16.0


class LyapunovRun(NamedTuple):
    exponents: np.ndarray    # (m,) natural log per step, largest first; NaN if every sequence diverged
    fixed_point: bool        # the trajectory stopped moving after the warm-up
    resolved: np.ndarray     # (m,) bool: False where the exponent is rounding (module docstring)
    diverged: int            # sequences whose states or caches held an inf or NaN (left out of the mean)


def state_path(cell) -> str:
    """The path of the state the QR method follows: a<t>, or the whole state ([a<t>; c<t>])
    when the cell carries more than a."""
    return "a" if cell.state_size == cell.hidden else "state"


def lyapunov_spectrum(cell, params, xs, m: int = 8, *, warmup: int = 0, h0=None) -> np.ndarray:
    """Top-m Lyapunov exponents (ln per step), largest first, averaged over the batch."""
    return lyapunov_run(cell, params, xs, m, warmup=warmup, h0=h0).exponents


def lyapunov_run(cell, params, xs, m: int = 8, *, warmup: int = 0, h0=None,
                 rtol: float = 1e-12, progress=None) -> LyapunovRun:
    """lyapunov_spectrum's exponents, whether the trajectory stopped moving, which exponents
    are resolved and how many sequences diverged (see the module docstring). `fixed_point` is
    True when, after `warmup`, no step changes any sequence's state by more than rtol (relative
    to the state's size): there the exponents are the log moduli of one Jacobian's eigenvalues
    (ln ρ(W) at 0 for a tanh RNN), not the rates along a moving trajectory, and a report must
    say so. All four come from the one walk along the trajectory. `progress(done, total)`, if
    given, is told of the steps every TICK_STEPS and at the end (for a progress bar)."""
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
    lost = np.zeros((B, m), dtype=bool)
    eps = ROUNDING * S * np.finfo(float).eps
    moved, size = 0.0, 0.0   # after warmup: the largest change of a state in one step; the largest state
    scan = NonfiniteScan(B, T)
    # a diverging trajectory overflows: detected by the scan, not reported again by numpy. One
    # BLAS thread: threaded QR of a tall (S, m) frame stalls on a busy machine (LSTM n = 1,024,
    # m = 8, 8 sequences, load ~6 on 2 cores: 456 ms per step threaded, 36 ms on one thread)
    with np.errstate(over="ignore", invalid="ignore"), single_threaded_blas():
        for t in range(T):
            prev = state
            state, cache = cell.step(params, state, xs[t])
            scan.see(t + 1, (state, cache))
            jq = cell.jvp(params, cache, q)   # J Q: a dense Jacobian only where the cell has no jvp of its own
            q, r = np.linalg.qr(jq)
            if t >= warmup:
                diag = np.abs(np.diagonal(r, axis1=1, axis2=2))
                with np.errstate(divide="ignore"):   # an exactly singular step gives -inf honestly
                    total += np.log(diag)
                lost |= diag <= eps * np.linalg.norm(jq, axis=(1, 2))[:, None]
                size = max(size, float(np.abs(state).max()))
                if t > warmup:   # NaN or inf anywhere means it did not settle: kept as NaN
                    d = float(np.abs(state - prev).max())
                    if not np.isnan(moved):
                        moved = d if not np.isfinite(d) else max(moved, d)
            if progress is not None and (t % TICK_STEPS == TICK_STEPS - 1 or t == T - 1):
                progress(t + 1, T)
    lam = total / (T - warmup)
    # a lost direction spoils the frames built on it: every exponent from the first lost one on
    good = np.cumsum(lost, axis=1) == 0
    order = np.argsort(-lam, axis=1, kind="stable")   # QR order is already largest first once converged
    lam, good = np.take_along_axis(lam, order, 1), np.take_along_axis(good, order, 1)
    fixed = T - warmup >= 2 and bool(np.isfinite(moved) and moved <= rtol * max(1.0, size))
    ok = scan.first > T
    if ok.all():
        mean, resolved = lam.mean(axis=0), good.all(axis=0)
    elif ok.any():
        mean, resolved = lam[ok].mean(axis=0), good[ok].all(axis=0)
    else:
        mean, resolved = np.full(m, np.nan), np.zeros(m, dtype=bool)
    return LyapunovRun(mean, fixed, resolved, int((~ok).sum()))
