"""Matrix norms for a batch of Jacobian blocks, and quantiles of log values.

The probe needs the spectral norm of a (B, r, c) stack at every lag. A full SVD per lag
would cost more than the Jacobian chain itself, so `SpectralTracker` runs a batched subspace
(block power) iteration on M M^T, warm-started from the previous lag's left singular vectors:
they live in the anchor's state space, which does not change with the lag, and they converge
as the lag grows (the backward Lyapunov vectors): a few iterations per lag at long lags, more
at the first lags where the singular values are still clustered.

Some sequences never leave that regime: a chrono-initialised LSTM's c-block is close to
Π diag(Γ_f) with forget gates near 1, so σ_7/σ_1 stays ~0.98 for hundreds of lags and block
power iteration needs tens of iterations at every lag. For those the exact answer is cheaper: λ_max of the Gram matrix
by a batched symmetric eigensolver. A sequence that does not converge within `max_iter`
products with M M^T is solved that way, and then skips the iteration (straight to the
eigensolver) for a number of lags that doubles at each further failure and resets on success.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

# relative accuracy of σ² at which the iteration stops (so σ to ~5e-14), far below the
# 1e-10 the tests demand
TOL = 1e-13
# products with A = M M^T per lag after which a sequence goes to the eigensolver: warm-started
# sequences with a usable gap converge in a few; more means clustered singular values (see
# the docstring), where the eigensolver is cheaper
MAX_ITER = 16
MAX_SKIP = 32   # longest run of lags a hard sequence goes straight to the eigensolver
DEGREE = 2      # of the Chebyshev filter between Rayleigh-Ritz steps (see the class docstring)
TOP_ONLY_MIN = 64   # Gram size from which one eigenvalue costs less than all (measured ~56)


def gram_top(m: np.ndarray) -> np.ndarray:
    """σ_max² of each m[b] as λ_max of the smaller Gram matrix, batched. λ_max is a
    well-conditioned eigenvalue: its error is a few ulps of σ_max², like an SVD's."""
    g = np.matmul(m, m.transpose(0, 2, 1)) if m.shape[1] <= m.shape[2] else \
        np.matmul(m.transpose(0, 2, 1), m)
    return top_eigenvalue(g)


def top_eigenvalue(g: np.ndarray) -> np.ndarray:
    """λ_max of each symmetric g[b] (B, k, k), batched."""
    k = g.shape[-1]
    if k < TOP_ONLY_MIN:
        return np.linalg.eigvalsh(g)[:, -1]
    # large blocks: LAPACK's dsyevx for the top eigenvalue alone (bisection after the
    # reduction), 27% cheaper than all eigenvalues at k = 128 and agreeing to ~2e-15
    return np.array([_top_alone(gi) for gi in g])


def _top_alone(g: np.ndarray) -> float:
    """λ_max of one symmetric g by dsyevx; all eigenvalues (dsyevd) where dsyevx fails, as it
    does on a top eigenvalue repeated dozens of times (Gated DeltaNet's I_{d_v} ⊗ A: α is
    d_v (d_k - 1)-fold)."""
    k = g.shape[-1]
    try:
        return scipy.linalg.eigh(g, eigvals_only=True, subset_by_index=[k - 1, k - 1], driver="evx",
                                 check_finite=False)[0]
    except np.linalg.LinAlgError:
        return np.linalg.eigvalsh(g)[-1]


class SpectralTracker:
    """Largest singular value of successive (B, r, c) matrices, one call per lag.

    Subspace iteration on A = M M^T with p vectors and a Rayleigh-Ritz step. A block rather
    than one vector because when the top two singular values cross between lags the old top
    vector is nearly orthogonal to the new one, and a single vector could stall on σ2; the
    block keeps the runners-up in view, and costs about what one vector costs (both passes
    over M are memory-bound).

    Stopping rule: the top j Ritz pairs (θ_1..θ_j, Z_j) of A have residual R_j = A Z_j - Z_j Θ_j,
    and the error of θ_1 is at most about ||R_j||² / (θ_j - θ_{j+1}) (the quadratic residual
    bound for a cluster of Ritz values, the next Ritz value standing in for the rest of the
    spectrum; j = 1 is Kato-Temple). We stop when the smallest of these over j < p is
    <= tol θ_1, i.e. σ² to a relative ~1e-13: a cluster at the top that the block holds whole
    needs no separation inside it. The tests check the result against SVDs.
    Converged sequences leave the batch once they are a quarter of it (before that, iterating
    them on, their results already recorded, costs less than copying the rest of M); those
    not converged within `max_iter` go to `gram_top`, all in one batched call (see the module
    docstring); `max_iter` counts products with A.
    Between two Rayleigh-Ritz steps the subspace goes through a Chebyshev filter of degree
    `DEGREE` rather than one power step: T_d((A - c)/c) with c = θ_min / 2 (θ_min the block's
    smallest Ritz value) keeps [0, θ_min] within [-1, 1] and grows fastest at λ_1. With
    σ_7/σ_1 = 0.7 and θ_min at λ_7, two power steps gain 1/0.49² ~ 4 on the unwanted part,
    a filter of degree 2 (also two products with A) T_2(3.08) ~ 18. Its first term, A Z, is
    the residual's own product, so it costs no extra pass. On the a- and c-blocks of an LSTM
    (n = 128, 300 lags) it took the eigensolver fallbacks from 341 to 53 sequence-lags.
    A block that holds A's whole range (p >= min(r, c)), or a single vector, keeps the power
    step (see __init__).
    When the previous lag needed more than one pass, a lag starts with a plain power step
    (U <- qr(A U), no Rayleigh-Ritz and no test): the warm start is then too far off to pass,
    and the skipped small eigenproblem and residual cost about as much as the passes over M
    (LSTM n = 128, lags 500-1000: 1.15 ms per lag for 16 blocks before, 0.8 ms after, still
    two passes per lag).
    Counters: `iterations` (products with A, batched), `fallbacks` (sequence-lags solved by
    the eigensolver), `plain_steps`.
    """

    def __init__(self, batch: int, rows: int, cols: int, p: int = 6,
                 tol: float = TOL, max_iter: int = MAX_ITER):
        self.p = max(1, min(p, rows, cols))
        # no filter when the block holds all of A's range (a thin M: a power step lands in it
        # exactly, while the filter keeps a share of the null space) or is one vector (θ_min
        # would be θ_1 itself and the filter would stall)
        self.filter = 1 < self.p < min(rows, cols)
        # deterministic start: a fixed-seed random orthonormal block (a constant vector can be
        # orthogonal to the top singular vector of a structured matrix)
        q, _ = np.linalg.qr(np.random.default_rng(12345).standard_normal((rows, self.p)))
        self.start = q
        # fresh directions, one mixed into the warm start per lag (see __call__)
        self.fresh = np.random.default_rng(54321).standard_normal((rows, 8))
        self.calls = 0
        self.u = np.broadcast_to(q, (batch, rows, self.p)).copy()
        self.tol, self.max_iter = tol, max_iter
        self.skip = np.zeros(batch, dtype=int)      # lags left to go straight to the eigensolver
        self.backoff = np.ones(batch, dtype=int)    # next skip length after a failure
        self.last = 0        # products with A the last call made
        self.plain_steps = 0  # lags opened with a plain power step
        self.iterations = 0  # totals, reported by the benchmark
        self.fallbacks = 0

    def _converged(self, v, ua, theta):
        """Per sequence: is θ_1 within tol (relative, on σ²)? See the class docstring."""
        th = theta[:, ::-1]                                        # descending
        t1 = np.maximum(th[:, 0], 0.0)
        res = v - ua * theta[:, None, :]                           # A z_i - θ_i z_i
        r2 = np.cumsum(np.einsum("bij,bij->bj", res, res)[:, ::-1], axis=1)   # ||R_j||_F²
        if self.p == 1:   # no runner-up in view: Kato-Temple with θ_2 = 0
            return r2[:, 0] <= self.tol * t1 * t1
        gap = np.maximum(th[:, :-1] - th[:, 1:], 0.0)              # θ_j - θ_{j+1}
        return (r2[:, :-1] <= self.tol * t1[:, None] * gap).any(axis=1)

    def __call__(self, m, row_sq_max: np.ndarray | None = None) -> np.ndarray:
        """σ_max of each m[b]; m is (B, r, c), or a tuple of (B_i, r, c) stacks (views into
        the probe's M, say) that stand for their concatenation without being copied into it.
        `row_sq_max` (B,), each matrix's largest squared row norm, if the caller has it (the
        probe gets it with the Frobenius norm); else it is computed. Returns (B,) float64.
        Steps: hard sequences skip the iteration; the others open from their warm start and
        iterate until they converge or reach the cap; what is not settled then (capped, skipped,
        or refuted by the row norms) goes to one batched eigensolve."""
        m = _Stacks(m)
        lam = np.zeros(m.size)
        direct = self.skip > 0                    # hard sequences: no iteration this lag
        self.skip[direct] -= 1
        act = np.flatnonzero(~direct)             # sequences still iterating: only these are touched
        ma = _Stacks(m.take(act)) if direct.any() else m
        passes = self.iterations
        ua, plain = self._open(ma, self.u[act])
        capped = self._iterate(ma, ua, act, self.max_iter - plain, lam)
        self.last = self.iterations - passes
        # not converged within the cap: skip the iteration for a while, doubling each time
        self.skip[capped] = self.backoff[capped]
        self.backoff[capped] = np.minimum(2 * self.backoff[capped], MAX_SKIP)
        hard = self._refuted(m, lam, np.union1d(capped, np.flatnonzero(direct)), row_sq_max)
        if hard.size:     # one batched eigensolve for every sequence not settled above
            self.fallbacks += hard.size
            lam[hard] = gram_top(m.take(hard))
        return np.sqrt(np.maximum(lam, 0.0))

    def _open(self, ma: _Stacks, ua: np.ndarray) -> tuple[np.ndarray, bool]:
        """The lag's starting block from the warm start ua (a copy): orthonormal, with one
        fresh direction in it; and whether a plain power step was spent on it."""
        # a plain power step first (no Rayleigh-Ritz, no test) when the last lag needed more
        # than one pass: then the warm start is too far off to pass the test (at long lags
        # of an LSTM its angle to the new top vector is ~1e-3, so one pass never suffices)
        plain = self.last > 1 and ua.shape[0] > 0
        if plain:
            self.iterations += 1
            self.plain_steps += 1
            ua = ma.times(ma.t_times(ua))
        if self.p > 1 and ua.shape[0]:
            # the weakest (Ritz) vector gives way to a fresh fixed direction: a warm start that
            # is an exact invariant subspace (e.g. coordinate vectors of a diagonal chain) has
            # zero residual and would never notice a new top singular vector outside it
            ua[:, :, 0] = self.fresh[:, self.calls % self.fresh.shape[1]]
        if ua.shape[0] and (plain or self.p > 1):
            ua, _ = np.linalg.qr(ua)
        self.calls += 1
        return ua, plain

    def _iterate(self, ma: _Stacks, ua: np.ndarray, act: np.ndarray, budget: int, lam: np.ndarray) -> np.ndarray:
        """Rayleigh-Ritz steps, filtered subspaces between them, on the sequences `act` (the
        rows of ma, starting block ua) until each converges or `budget` products with A are
        spent. A converged sequence's θ_1 goes into lam and its Ritz vectors become its warm
        start; those left at the cap keep theirs as warm start. Returns those left."""
        live = np.ones(act.size, dtype=bool)      # of the rows of ma: not yet converged
        first = True
        while act.size and budget > 0:
            budget -= 1
            self.iterations += 1
            w, theta, y = self._ritz(ma, ua, first)
            first = False
            v = ma.times(np.matmul(w, y))                          # A U Y: A times Ritz vectors
            ua = np.matmul(ua, y)                                  # Ritz vectors, orthonormal
            ok = self._converged(v, ua, theta) & live
            fin = act[ok]
            lam[fin] = theta[ok, -1]
            self.u[fin] = ua[ok]
            self.backoff[fin] = 1
            live &= ~ok
            if not live.any():
                return act[:0]
            if budget <= 0:   # at the cap: keep their Ritz vectors as warm start
                act, ua = act[live], ua[live]
                self.u[act] = ua
                return act
            # sequences that converged drop out (copying the rest of M) only once they are a
            # quarter of the batch: until then iterating them on costs less than the copy.
            # Each sequence's arithmetic is its own, so which others share its batch does not
            # change its numbers
            if 4 * np.count_nonzero(live) <= 3 * live.size:
                act, ma, v = act[live], _Stacks(ma.take(np.flatnonzero(live))), v[live]
                ua, theta = ua[live], theta[live]
                live = np.ones(act.size, dtype=bool)
            ua, budget = self._next_block(ma, ua, v, theta, budget)
        return act

    def _ritz(self, ma: _Stacks, ua: np.ndarray, first: bool):
        """W = M^T U and the eigenpairs (θ ascending, Y) of U^T A U = W^T W. On a lag's first
        step, a sequence with θ_1 <= 0 whose block is not zero restarts from the fixed start
        (its warm start lay in the left null space of M): ua is changed in place."""
        w = ma.t_times(ua)                                      # M^T U      (b, c, p)
        theta, y = np.linalg.eigh(np.matmul(w.transpose(0, 2, 1), w))   # U^T A U
        if not first:
            return w, theta, y
        stuck = theta[:, -1] <= 0.0
        if stuck.any():   # only then look at the blocks themselves (a pass over M)
            stuck[stuck] = frobenius(ma.take(np.flatnonzero(stuck))) > 0.0
        if stuck.any():   # warm start in the left null space of a nonzero block
            ua[stuck] = self.start
            w = ma.t_times(ua)
            theta, y = np.linalg.eigh(np.matmul(w.transpose(0, 2, 1), w))
        return w, theta, y

    def _next_block(self, ma: _Stacks, ua, v, theta, budget: int) -> tuple[np.ndarray, int]:
        """The subspace for the next Rayleigh-Ritz step and the budget left: a Chebyshev
        filter of degree d on the Ritz vectors ua, damping [0, θ_min] (θ_min the block's
        smallest Ritz value); A Z = v is its first term. One product is kept for the
        Rayleigh-Ritz step after it. θ_min is floored at 1e-10 θ_max (rounding can make it
        <= 0; the filter then grows like A^d). Without the filter, a power step."""
        if not self.filter:
            ua, _ = np.linalg.qr(v)                                # a power step: A U
            return ua, budget
        d = min(DEGREE, budget)
        half = np.maximum(theta[:, 0], 1e-10 * theta[:, -1])[:, None, None] / 2.0
        half = np.where(half > 0.0, half, 1.0)
        y0, y1 = ua, (v - half * ua) / half
        for _ in range(d - 1):
            budget -= 1
            self.iterations += 1
            y0, y1 = y1, 2.0 * (ma.times(ma.t_times(y1)) - half * y1) / half - y0
        ua, _ = np.linalg.qr(y1)
        return ua, budget

    def _refuted(self, m: _Stacks, lam: np.ndarray, hard: np.ndarray, row_sq_max) -> np.ndarray:
        """`hard` (the sequences not settled by the iteration) and the settled ones whose λ the
        row norms refute. A certificate the residual test cannot give: σ_max >= the largest
        row norm of M. On a chain whose product is diagonal (or nearly) the warm start is an
        exactly invariant subspace, its top Ritz pair has zero residual and passes the test,
        yet a unit outside the block may have taken the lead: the Ritz value is then below
        that unit's row norm. Such sequences go to the eigensolver (counted with the others in
        `fallbacks`). A dense M never trips it (its row norms are below σ_max); costs one pass
        over M per lag unless the caller has the row norms."""
        settled = np.setdiff1d(np.arange(m.size), hard)
        if settled.size:
            rows = m.row_sq_max() if row_sq_max is None else row_sq_max
            missed = settled[rows[settled] > lam[settled] * (1.0 + 1e-10)]
            if missed.size:
                hard = np.union1d(hard, missed)
        return hard


class _Stacks:
    """Several (B_i, r, c) stacks read as their concatenation along the batch axis. The LSTM's
    a- and c-blocks are strided views into the probe's M: the first power iteration of a lag
    reads them in place, and only the sequences still iterating after it are copied out."""

    def __init__(self, m):
        self.parts = tuple(m) if isinstance(m, (tuple, list)) else (m,)
        self.edges = np.cumsum([0] + [p.shape[0] for p in self.parts])
        self.size = int(self.edges[-1])
        self.joint = _joint_view(self.parts)

    def take(self, idx: np.ndarray) -> np.ndarray:
        if len(self.parts) == 1:
            return self.parts[0][idx]
        return np.concatenate([p[idx[(idx >= lo) & (idx < hi)] - lo]
                               for p, lo, hi in zip(self.parts, self.edges[:-1], self.edges[1:])])

    def _apply(self, fn, x: np.ndarray) -> np.ndarray:
        """fn(part, rows of x for that part), joined: one batched product per part."""
        if len(self.parts) == 1:
            return fn(self.parts[0], x)
        if self.joint is not None:   # one batched product over (k, B), no join
            k, b = self.joint.shape[:2]
            y = fn(self.joint, x.reshape((k, b) + x.shape[1:]))
            return y.reshape((k * b,) + y.shape[2:])
        return np.concatenate([fn(p, x[lo:hi]) for p, lo, hi in zip(self.parts, self.edges[:-1], self.edges[1:])])

    def t_times(self, x: np.ndarray) -> np.ndarray:   # M^T x, batched
        return self._apply(lambda p, xs: np.matmul(np.swapaxes(p, -1, -2), xs), x)

    def times(self, x: np.ndarray) -> np.ndarray:     # M x, batched
        return self._apply(np.matmul, x)

    def row_sq_max(self) -> np.ndarray:
        """Per stacked matrix, the largest squared row norm (a lower bound of σ_max²)."""
        return np.concatenate([np.einsum("bij,bij->bi", p, p).max(axis=1) for p in self.parts])


def _joint_view(parts):
    """The parts as one (k, B, r, c) view when they are equally spaced in one buffer with
    equal shapes and strides (the LSTM's a- and c-blocks of M are), else None. Element
    [i, ...] of the view is the same byte as parts[i][...], so it reads nothing else."""
    if len(parts) < 2:
        return None
    first = parts[0]
    if any(p.shape != first.shape or p.strides != first.strides or p.dtype != first.dtype
           or p.base is None or p.base is not first.base for p in parts):
        return None
    starts = [p.__array_interface__["data"][0] for p in parts]
    step = starts[1] - starts[0]
    if step == 0 or any(b - a != step for a, b in zip(starts[:-1], starts[1:])):
        return None
    return np.lib.stride_tricks.as_strided(first, shape=(len(parts),) + first.shape,
                                           strides=(step,) + first.strides, writeable=False)


def frobenius(m: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("bij,bij->b", m, m))


def log_quantile(values: np.ndarray, q: float, axis: int = 0) -> np.ndarray:
    """Linear-interpolation quantile of log values, over the values that are numbers.

    -inf (log10 of an exact zero) is a value, the smallest there is: a quantile whose lower
    neighbour is -inf is -inf (np.quantile would give NaN there). NaN and +inf (a diverged
    sequence, an overflow) are not values: they are left out, each lag over its own count
    (count them with `not_a_value`); a lag with no value at all gives NaN.
    """
    v = np.moveaxis(np.asarray(values, dtype=float), axis, 0)
    bad = ~(np.isfinite(v) | np.isneginf(v))
    n = (~bad).sum(axis=0)                                  # values per column
    v = np.sort(np.where(bad, np.inf, v), axis=0)           # the excluded sort last
    pos = q * np.maximum(n - 1, 0)
    lo = np.floor(pos).astype(int)
    hi = np.ceil(pos).astype(int)
    g = pos - lo
    a = np.take_along_axis(v, lo[None], axis=0)[0]
    b = np.take_along_axis(v, hi[None], axis=0)[0]
    with np.errstate(invalid="ignore"):
        out = np.where(g > 0, a + g * (b - a), a)
    out = np.where(np.isneginf(a), -np.inf, out)
    return np.where(n > 0, out, np.nan)


def not_a_value(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """How many entries along `axis` are NaN or +inf (not a norm: the sequence diverged)."""
    v = np.asarray(values, dtype=float)
    return (~(np.isfinite(v) | np.isneginf(v))).sum(axis=axis)


def value_extremes(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """min and max over the values that are numbers (-inf included), NaN where there is none."""
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v) | np.isneginf(v)
    with np.errstate(invalid="ignore"):
        lo = np.where(ok, v, np.inf).min(axis=axis)
        hi = np.where(ok, v, -np.inf).max(axis=axis)
    none = ~ok.any(axis=axis)
    return np.where(none, np.nan, lo), np.where(none, np.nan, hi)


def log_summary(values: np.ndarray) -> dict[str, np.ndarray]:
    """median, q25, q75, min and max over axis 0 of log values (B, K), NaN left out."""
    v = np.asarray(values, dtype=float)
    out = {"median": log_quantile(v, 0.5), "q25": log_quantile(v, 0.25), "q75": log_quantile(v, 0.75)}
    out["min"], out["max"] = value_extremes(v)
    return out
