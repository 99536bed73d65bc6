"""The probe's fast path for Kronecker-structured Jacobians: small factors chained in log space.

A path a cell declares in `Cell.kron_factors` (Gated DeltaNet's state) has, on its block, the
step factor blockdiag_h(I_r ⊗ F_h(t)) with H groups of r copies of one m x m factor (see that
docstring for the coordinate order). The k-step product at anchor t is then
blockdiag_h(I_r ⊗ P_h), P_h = F_h(t) F_h(t-1) ... F_h(t-k+1), so

    spectral norm  = max_h σ_max(P_h)
    Frobenius norm = sqrt(r Σ_h ||P_h||_F²)

exactly, from the H m x m products alone: O(B H m^3) work and O(B H m^2) memory per lag, where
the dense chain would carry (H r m)^2 numbers per sequence (Gated DeltaNet with 4 heads of
d_k = d_v = 64: a 16,384 x 16,384 block, 2.1 GB per sequence). Each P_h is kept as a mantissa
divided by its largest |entry| after every lag, with log10 of that scale accumulated per
sequence and group, so 10,000 lags at factor 0.5 read -3010 and an exactly zero product stays
-inf; a group whose product is not finite is NaN from that lag on (as the dense chain, core.py).
σ_max comes from the dense chain's tracker (matnorms.SpectralTracker: a warm-started subspace
iteration, its answer to ~1e-13 relative on σ², the eigensolver where it does not converge),
run over the B H factors at once.

The factors come from the probe's cached forward pass, or replayed from checkpoints when no
dense path needs the caches (diagonal.Replay reads them with the logs).
"""
from __future__ import annotations

import numpy as np

from .matnorms import SpectralTracker


def kron_paths(cell, params, x0, h0=None) -> frozenset:
    """Paths `cell` declares Kronecker, read from one step on the first input (B, d)."""
    state = cell.initial_state(x0.shape[0]) if h0 is None else h0
    _, cache = cell.step(params, state, x0)
    return frozenset(cell.kron_factors(params, cache) or ())


class Chain:
    """The products P_h over lags k = 1, 2, ... (one dict {path: F (B, H, m, m)} per lag, lag 1
    first, fed by `add`) and their log10 norms, written into out[(path, norm)][a_i, :, k - 1].
    The path's width (H r m) gives r. A dict may hold other paths (the diagonal fast path's)."""

    def __init__(self, cell, paths, norms, out, a_i):
        self.paths, self.norms, self.out, self.a_i = tuple(paths), norms, out, a_i
        self.width = {p: len(range(cell.state_size)[cell.path_block(p)]) for p in self.paths}
        self.P, self.scale, self.trackers = {}, {}, {}

    def add(self, k: int, lg: dict) -> None:
        for p in self.paths:
            F = np.asarray(lg[p], dtype=float)
            B, H, m, _ = F.shape
            if k == 1:
                self.P[p], self.scale[p] = F.copy(), np.zeros((B, H))
                if "spectral" in self.norms:
                    self.trackers[p] = SpectralTracker(B * H, m, m)
            else:
                self.P[p] = np.matmul(self.P[p], F)
            P, scale = self.P[p], self.scale[p]
            _renormalise(P, scale)
            self._write(p, k, P, scale, self.width[p] // (H * m))

    def _write(self, p: str, k: int, P: np.ndarray, scale: np.ndarray, r: int) -> None:
        B, H, m, _ = P.shape
        with np.errstate(divide="ignore", invalid="ignore"):   # an exactly zero product: -inf
            if "spectral" in self.norms:
                sig = self.trackers[p](P.reshape(B * H, m, m)).reshape(B, H)
                self.out[(p, "spectral")][self.a_i, :, k - 1] = _max_over_groups(np.log10(sig) + scale)
            if "frobenius" in self.norms:
                fro = 0.5 * np.log10(np.einsum("bhij,bhij->bh", P, P)) + scale        # log10 ||P_h||_F
                self.out[(p, "frobenius")][self.a_i, :, k - 1] = _log10_root_sum_squares(fro) + 0.5 * np.log10(r)


def _renormalise(P: np.ndarray, scale: np.ndarray) -> None:
    """Divide each group's P by its largest |entry| and add log10 of it to its scale, in
    place; an exact zero stays zero with scale -inf, a non-finite product becomes scale NaN
    (and zeros, so the other groups' algebra stays sane)."""
    big = np.abs(P).max(axis=(2, 3))
    bad = ~np.isfinite(big)
    if bad.any():
        scale[bad], big[bad] = np.nan, 1.0
        P[bad] = 0.0
    zero = big == 0.0
    with np.errstate(divide="ignore"):
        scale += np.log10(np.where(zero, 0.0, big))
    P /= np.where(zero, 1.0, big)[:, :, None, None]


def _max_over_groups(v: np.ndarray) -> np.ndarray:
    """max over groups per sequence; NaN in any group (a product that was not finite) is NaN."""
    out = v.max(axis=1)
    out[np.isnan(v).any(axis=1)] = np.nan
    return out


def _log10_root_sum_squares(v: np.ndarray) -> np.ndarray:
    """log10 sqrt(Σ_h 10^(2 v_h)) per sequence, shifted by the largest v_h so nothing under- or
    overflows; -inf where every group is -inf, NaN where any is NaN."""
    top = _max_over_groups(v)
    finite = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(invalid="ignore"):
        out = finite + 0.5 * np.log10(np.sum(10.0 ** (2.0 * (v - finite[:, None])), axis=1))
    out[np.isneginf(top)] = -np.inf
    out[np.isnan(top)] = np.nan
    return out
