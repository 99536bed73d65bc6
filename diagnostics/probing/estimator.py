"""Estimated norms from a few rows: the probe's sketch, for models too wide for the exact chain.

    est = estimator("sketch", rows=32, seed=0)      # or "exact", "auto"
    est.sketches(width)                              # is a path block this wide estimated?

The exact chain carries every row of a path's block back through the Jacobians: n rows, O(n^3)
per lag. The sketch carries q = p + r rows per path instead, O(q n^2) per lag:

    Z = [Z_f, Z_r]  (w, p + r), orthonormal, from the QR of [X, Ω^T]
        X   (w, p)  the block's rows of F = d state<t>/d state<t-K> G, a forward pass (cell.jvp)
                    of p = REFINE Gaussian vectors G from the earliest lag to the anchor, kept
                    orthonormal step by step: it spans the product's top left singular vectors,
                    to which every long lag's top singular vector converges
        Ω^T (w, r)  Gaussian, independent of everything else: Ω (I - Z_f Z_f^T) = L Z_r^T,
                    L = R_rr^T lower triangular (the QR's own factor, kept)

and the chain's rows for the block are Z^T M_k for every lag k (M_k the block of the product).
Per lag, with Y = Z^T M_k (q, c) and its Gram matrix Y Y^T:

  Frobenius (Hutch++, Meyer et al. 2021): ||M||_F^2 = ||Z_f^T M||_F^2 + ||(I - Z_f Z_f^T) M||_F^2;
    the first term is read exactly, the second by Hutchinson's estimate over the r rows
    s_i = ||(L Z_r^T M)_i||^2 = ||ω_i^T (I - Z_f Z_f^T) M||^2, whose mean is unbiased because Ω
    is Gaussian and drawn independently of Z_f. So the estimate of the squared norm is
    unbiased whatever Z_f is; a good Z_f (long lags, where M is nearly rank one) only takes
    variance away. Its standard error is from the per-row variance (`variance` below: from all
    pairs of rows). The interval is that of resid χ²_r / r, the distribution of the residual's
    estimate when the residual has rank one; a residual of higher rank spreads less (a weighted
    sum of independent χ²_r with the same mean), so the interval is conservative: RNN, GRU, LSTM
    at n = 128, 199 lags, 5 seeds, r = 16 and 32: the exact value inside at 0.96-1.00 of pairs,
    where fitting a scaled chi-square to the estimated variance (Satterthwaite) gave 0.88-0.96.
    LEVEL (95 %) two-sided, per pair and lag, in log10 of the norm, widened by FLOOR decades
    on each side for rounding: once the product is nearly rank one, Z_f reads all of it, the
    residual is rounding alone and the interval shrinks to the estimate, while the exact chain's
    own rounding puts the exact value 1e-13..3e-11 decades away (RNN n = 96, LSTM n = 64,
    T = 500); without the floor the exact value was inside at only 0.61-0.81 of a
    sequence's lags (0.59 at worst for RNN n = 64, T = 320, r = 32).
  Spectral: σ_max(Z^T M) = sqrt(λ_max(Y Y^T)) <= σ_max(M), a lower bound for any orthonormal Z
    (up to rounding), whatever the forward pass gave: a cell whose jvp is wrong loses
    tightness, never the bound. Z_r alone gives the plain bound σ_max(Ω M) / σ_max(Ω) or better;
    Z_f makes it tight from a few lags on (docs/explanation/estimated-norms.md has the figures).

A path whose block is no wider than q rows is measured exactly: its identity costs no more.
The random numbers come from `seed` and the sequence's index in the whole batch (not in a
worker's chunk), so every worker count draws the same rows, bit for bit; the estimates then
agree to rounding, as the exact probe's do.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import chdtri

from .matnorms import top_eigenvalue
from .parallel import single_threaded_blas

KINDS = ("exact", "sketch", "auto")
ROWS = 32          # r, the default
REFINE = 8         # p: vectors of the forward pass (one pass serves every path)
LEVEL = 0.95       # of the Frobenius interval, two-sided
# auto: a path block at least this wide is sketched. Below it the exact chain is affordable
# (LSTM n = 512, 8 sequences: ~1.1 s per lag on a loaded 2-core machine, benchmarks/bench_estimator.py)
# and exact numbers are worth more than the sketch's ~n/40 speed-up
AUTO_WIDTH = 512
# decades added to each end of the Frobenius interval for rounding (see the module docstring):
# ~30x the largest rounding gap measured over 500 lags
FLOOR = 1e-9
FORWARD_STREAM = 0   # random streams per (seed, sequence): 0 the forward pass's G, 1 + i path i's Ω


@dataclass(frozen=True)
class Estimator:
    """How the probe measures its dense paths: `kind` exact, sketch or auto (the sketch for a
    block at least AUTO_WIDTH wide), with r = `rows` random rows per path drawn from `seed`."""
    kind: str = "exact"
    rows: int = ROWS
    seed: int = 0

    def sketches(self, width: int) -> bool:
        """Is a path block `width` rows wide estimated? Never when the sketch's q = p + r rows
        would be as many as the identity's."""
        if self.kind == "exact" or width <= self.rows + REFINE:
            return False
        return self.kind == "sketch" or width >= AUTO_WIDTH

    def document(self) -> dict:
        """What curves.json records of an estimated series (the kind is the resolved one)."""
        return {"kind": "sketch", "rows": self.rows, "seed": self.seed}


def estimator(kind="exact", rows=ROWS, seed=0) -> Estimator:
    """The estimator probe() was asked for, checked (a ValueError naming the argument)."""
    if isinstance(kind, Estimator):
        return kind
    if kind not in KINDS:
        raise ValueError(f"estimator: must be one of {', '.join(KINDS)}, got {kind!r}")
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 2:
        raise ValueError(f"rows: must be an integer >= 2 (a standard error needs two rows), got {rows!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: must be a non-negative integer, got {seed!r}")
    return Estimator(kind, int(rows), int(seed))


def normal(seed: int, sequences, stream: int, shape: tuple) -> np.ndarray:
    """(len(sequences), *shape) standard normals, each sequence's from (seed, its index in the
    whole batch, stream) alone."""
    return np.stack([np.random.default_rng([seed, int(b), stream]).standard_normal(shape) for b in sequences])


def forward_range(cell, params, caches, t: int, K: int, seed: int, sequences) -> np.ndarray:
    """(B, S, REFINE) orthonormal: the range of d state<t>/d state<t-K> applied to Gaussian
    vectors, by K products with cell.jvp (caches[t-K] .. caches[t-1], the steps that lead to
    the anchor), re-orthonormalised after each so the lesser directions are not lost to
    rounding. A sequence whose vectors stop being finite (a diverged forward pass) restarts
    from zeros: its pairs are left out anyway, and QR of zeros is still orthonormal."""
    x, _ = np.linalg.qr(normal(seed, sequences, FORWARD_STREAM, (cell.state_size, REFINE)))
    # one BLAS thread: threaded QR of tall (S, REFINE) blocks stalls on a busy machine (as in
    # lyapunov.py, which has the figures)
    with single_threaded_blas():
        for j in range(t - K, t):
            x = cell.jvp(params, caches[j], x)
            bad = ~np.isfinite(x).all(axis=(1, 2))
            if bad.any():
                x[bad] = 0.0
            x, _ = np.linalg.qr(x)
    return x


def bases(x_block: np.ndarray, omega_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Z (B, w, p + r) orthonormal and L (B, r, r) from the QR of [X, Ω^T] (see the module
    docstring)."""
    z, R = np.linalg.qr(np.concatenate([x_block, omega_t], axis=2))
    p = x_block.shape[2]
    return z, np.ascontiguousarray(R[:, p:, p:].transpose(0, 2, 1))


@dataclass
class SketchNorms:
    """One lag's estimates for a batch of blocks, squared norms in the chain's scale."""
    frobenius_sq: np.ndarray     # (B,) unbiased estimate of ||M||_F^2
    stderr_sq: np.ndarray        # (B,) its standard error
    lo_sq: np.ndarray            # (B,) the LEVEL interval of ||M||_F^2, FLOOR decades wider
    hi_sq: np.ndarray
    spectral_sq: np.ndarray      # (B,) σ_max(Z^T M)^2 <= σ_max(M)^2


def sketch_norms(y: np.ndarray, L: np.ndarray) -> SketchNorms:
    """The estimates from Y = Z^T M (B, p + r, c) and L (B, r, r)."""
    r = L.shape[1]
    p = y.shape[1] - r
    g = np.matmul(y, y.transpose(0, 2, 1))                  # Y Y^T (B, q, q)
    exact = np.trace(g[:, :p, :p], axis1=1, axis2=2)        # ||Z_f^T M||_F^2
    h = np.matmul(np.matmul(L, g[:, p:, p:]), L.transpose(0, 2, 1))   # rows ω_i^T (I - Z_f Z_f^T) M
    resid = np.diagonal(h, axis1=1, axis2=2).mean(axis=1)   # the mean of their squared norms s_i
    # the residual over the r rows is Σ_j λ_j χ²_r, λ_j the eigenvalues of A = (I - P) M M^T (I - P):
    # resid χ²_r / r is the most spread of these (A of rank one), so its interval is the
    # conservative one (see the module docstring)
    tail = (1.0 - LEVEL) / 2.0
    # FLOOR decades of the norm are 2 FLOOR of its square
    lo = (exact + r * resid / chdtri(r, tail)) * 10.0 ** (-2 * FLOOR)
    hi = (exact + r * resid / chdtri(r, 1.0 - tail)) * 10.0 ** (2 * FLOOR)
    return SketchNorms(exact + resid, np.sqrt(variance(h) / r), lo, hi, top_eigenvalue(g))


def variance(h: np.ndarray) -> np.ndarray:
    """Var(s_i) per block from H = (ω_i^T A ω_j) (B, r, r), A = (I - P) M M^T (I - P). For
    Gaussian rows Var s_i = 2 tr(A^2) and E (ω_i^T A ω_j)^2 = tr(A^2) for i != j, so twice the
    mean square of the r (r - 1) off-diagonal entries is an unbiased estimate from all pairs of
    rows: steadier than the sample variance of the r diagonal ones."""
    s = np.diagonal(h, axis1=1, axis2=2)
    r = h.shape[1]
    return 2.0 * ((h * h).sum(axis=(1, 2)) - (s * s).sum(axis=1)) / (r * (r - 1))
